"""The server's web UI in headless Chromium (Debian's chromium + chromium-driver via selenium):
search, play, review with the keyboard, a reload and a second browser see the stored verdicts,
and hostile file names stay text.

Skipped where no chromium is installed, except under CI (env CI set), where that is a failure.
Set PROTO_INDEX_SERVE_SCREENSHOT=FILE.png to save a screenshot of the review page.
"""
from __future__ import annotations

import os
import shutil
import time

import pytest
from browser import CHROMEDRIVER, require_browser
from conftest import write
from report_store import HOSTILE_NAME
from serve_server import small_store, start_server

from proto_index.filenames import as_text

WAIT_S = 30.0
require_browser("fastapi")

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

pytestmark = pytest.mark.browser  # a server, a store and two Chromium sessions: half a minute or more
NON_UTF8_NAME = os.fsdecode(b"m\xe9lange-\xff.wav")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve-ui")
    store = small_store(tmp)
    odd = tmp / "odd"
    write(odd / HOSTILE_NAME, [(700.0, 0.5)], seconds=3.0, seed=41)
    os.rename(write(odd / "plain.wav", [(6500.0, 0.5)], seconds=3.0, seed=42), odd / NON_UTF8_NAME)
    from cli_store import cli

    cli("ingest", odd, "--store", store, "-q")
    server = start_server(store, tmp / "server.log")
    yield server, odd
    server.stop()


def new_browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--mute-audio", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    return driver


@pytest.fixture(scope="module")
def browser():
    driver = new_browser()
    yield driver
    driver.quit()


def wait_for(check, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def open_ui(driver, server):
    driver.get(server.url + "/")
    wait_for(lambda: driver.execute_script("return document.body.dataset.ready === '1'"), "the page to load")


def severe(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def no_alert(driver) -> None:
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018  (a hostile name that ran as HTML would alert)


def paths(driver, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, f"{css} .path")]


def show_review(driver, reviewer: str | None = None):
    driver.find_element(By.ID, "tab-review").click()
    if reviewer is not None:
        box = driver.find_element(By.ID, "reviewer")
        box.clear()
        box.send_keys(reviewer, Keys.TAB)  # stored on change
    driver.find_element(By.ID, "review-load").click()
    wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, "#windows li.win"), "the windows")


def verdict_of(driver, window_id: int) -> str:
    return driver.find_element(By.CSS_SELECTOR, f'#windows li[data-window-id="{window_id}"] .verdict-state').text


def test_search_shows_the_apis_hits_with_players(served, browser):
    server, _ = served
    open_ui(browser, server)
    box = browser.find_element(By.ID, "search-text")
    box.send_keys("a siren wailing")
    browser.find_element(By.ID, "search-go").click()
    expected = [h["path"] for h in server.post("/api/search/text", {"text": "a siren wailing", "k": 10}).json()["hits"]]
    wait_for(lambda: len(paths(browser, "#results")) == len(expected), "the results")
    assert paths(browser, "#results") == expected
    durations = browser.execute_async_script("""
        var done = arguments[arguments.length - 1];
        var a = document.querySelector('#results audio');
        a.addEventListener('loadedmetadata', function () { done([a.duration, a.error && a.error.code]); }, {once: true});
        a.addEventListener('error', function () { done([null, a.error && a.error.code]); }, {once: true});
        a.load();""")
    first = server.post("/api/search/text", {"text": "a siren wailing", "k": 1}).json()["hits"][0]
    assert durations[1] is None and durations[0] == pytest.approx(first["end_s"] - first["start_s"], abs=0.01)
    assert severe(browser) == []


def test_hostile_names_stay_text(served, browser):
    server, odd = served
    open_ui(browser, server)
    show_review(browser)
    shown = paths(browser, "#windows")
    assert str(odd / HOSTILE_NAME) in shown
    assert as_text(odd / NON_UTF8_NAME) in shown  # a name that is not UTF-8: its file: URI
    images = browser.find_elements(By.CSS_SELECTOR, "#windows img")  # only the spectrograms
    assert images and all(i.get_attribute("src").startswith(server.url + "/api/spectrogram/window/") for i in images)
    no_alert(browser)
    assert severe(browser) == []


def test_review_is_stored_seen_after_reload_and_by_a_second_browser(served, browser):
    server, _ = served
    open_ui(browser, server)
    show_review(browser, reviewer="alice")
    rows = browser.find_elements(By.CSS_SELECTOR, "#windows li.win")
    first, second = (int(r.get_attribute("data-window-id")) for r in rows[:2])
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("r")  # the first window is selected: right, then the selection moves on
    wait_for(lambda: verdict_of(browser, first) == "right by alice", "the first verdict")
    body.send_keys("l")  # relabel the second to the first other label
    wait_for(lambda: verdict_of(browser, second).startswith("relabel"), "the relabel")
    stored = {a["window_id"]: a for a in server.get("/api/annotations?reviewer=alice").json()["annotations"]}
    assert stored[first]["verdict"] == "right" and stored[first]["source"] == "web"
    assert stored[second]["verdict"] == "relabel" and stored[second]["corrected_label"]
    browser.refresh()
    open_ui(browser, server)
    show_review(browser)
    assert verdict_of(browser, first) == "right by alice"
    other = new_browser()
    try:
        open_ui(other, server)
        show_review(other, reviewer="bob")
        assert verdict_of(other, first) == "right by alice"
        assert verdict_of(other, second) == f"relabel → {stored[second]['corrected_label']} by alice"
        other.find_element(By.CSS_SELECTOR, f'#windows li[data-window-id="{first}"] .verdict-wrong').click()
        wait_for(lambda: verdict_of(other, first) == "wrong by bob", "bob's verdict")
        if os.environ.get("PROTO_INDEX_SERVE_SCREENSHOT"):
            other.save_screenshot(os.environ["PROTO_INDEX_SERVE_SCREENSHOT"])
    finally:
        other.quit()
    show_review(browser)
    assert verdict_of(browser, first) == "wrong by bob"
    assert severe(browser) == []
