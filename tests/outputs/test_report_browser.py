"""The review report in a real browser: headless Chromium (Debian's chromium + chromium-driver) via selenium.

Skipped where no chromium is installed, except under CI (env CI set), where that is a failure: CI installs
it (scripts/setup.sh), so these tests must really run there.
Set PROTO_INDEX_REPORT_SCREENSHOT=FILE.png to save a screenshot of the report (docs/report.png).
"""
from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from pathlib import Path

import pytest
from browser import CHROMEDRIVER, require_browser
from conftest import write
from report_store import HOSTILE_LABEL, HOSTILE_NAME, classified, cli, read_rows, with_hostile_row

require_browser()
pytestmark = pytest.mark.browser

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    c = classified(tmp, n_files=6)
    hostile_csv = with_hostile_row(c, tmp)
    report = tmp / "review"
    cli("report", hostile_csv, "--out", report, "--store", c.store, "-p", "urban-tgap4", "--neighbours", "3")
    header, rows = read_rows(hostile_csv)
    return {"classified": c, "csv": hostile_csv, "report": report, "header": header, "rows": rows, "tmp": tmp}


@pytest.fixture(scope="module")
def downloads(tmp_path_factory):
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--mute-audio"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
    })
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield driver
    driver.quit()


def open_page(driver, path: Path, keep_saved: bool = False):
    """Load ``path``; unless ``keep_saved``, first forget the decisions earlier tests left in the browser."""
    driver.get(path.as_uri())
    if not keep_saved:
        driver.execute_script("window.localStorage.clear()")
    driver.get_log("browser")  # start each check from an empty console log
    driver.refresh()
    return driver


def severe(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def visible_rows(driver) -> list[dict]:
    out = []
    for tr in driver.find_elements(By.CSS_SELECTOR, "#rows tbody tr"):
        cells = tr.find_elements(By.TAG_NAME, "td")
        out.append({"i": int(tr.get_attribute("data-row")), "env": cells[1].text, "label": cells[2].text,
                    "margin": float(cells[4].text), "source": cells[7].text})
    return out


def audio_states(driver) -> list:
    return driver.execute_async_script("""
        var done = arguments[arguments.length - 1];
        var els = Array.prototype.slice.call(document.querySelectorAll('audio'));
        Promise.all(els.map(function (a) {
          if (a.readyState >= 1 || a.error) return Promise.resolve();
          return new Promise(function (res) {
            a.addEventListener('loadedmetadata', res, {once: true});
            a.addEventListener('error', res, {once: true});
          });
        })).then(function () {
          done(els.map(function (a) { return [a.getAttribute('src'), a.duration, a.error ? a.error.code : null]; }));
        });""")


def test_pages_load_without_console_errors_and_escape_hostile_input(built, browser):
    for page in ("index.html", "prototypes.html"):
        open_page(browser, built["report"] / page)
        assert browser.find_element(By.TAG_NAME, "h1").text
        assert severe(browser) == [], page
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert  # noqa: B018  (a hostile label or file name that ran would alert)
    open_page(browser, built["report"] / "index.html")
    Select(browser.find_element(By.ID, "f-label")).select_by_value(HOSTILE_LABEL)
    (row,) = visible_rows(browser)
    assert row["label"] == HOSTILE_LABEL and HOSTILE_NAME in row["source"]
    assert HOSTILE_LABEL in browser.find_element(By.ID, "counts").text
    assert severe(browser) == []


def test_every_audio_element_loads_with_the_rows_duration(built, browser):
    open_page(browser, built["report"] / "index.html")
    states = audio_states(browser)
    header, rows = built["header"], built["rows"]
    assert len(states) == len(rows) <= 50  # one page holds them all
    shown = visible_rows(browser)
    for (src, duration, err), row in zip(states, shown):
        assert err is None and math.isfinite(duration), src
        start, end = (float(rows[row["i"]][header.index(c)]) for c in ("start_s", "end_s"))
        assert duration == pytest.approx(end - start, abs=0.01), src
    open_page(browser, built["report"] / "prototypes.html")
    states = audio_states(browser)
    assert len(states) == 4 * 3  # 4 classes x --neighbours 3
    assert all(err is None and math.isfinite(d) and 0 < d <= 10.0 for _, d, err in states)
    assert severe(browser) == []


def test_filtering_and_sorting_change_the_visible_rows(built, browser):
    header, rows = built["header"], built["rows"]
    col = {c: header.index(c) for c in ("environment", "label", "margin")}
    open_page(browser, built["report"] / "index.html")
    assert len(visible_rows(browser)) == len(rows)

    Select(browser.find_element(By.ID, "f-env")).select_by_value("park")
    park = visible_rows(browser)
    assert {r["env"] for r in park} == {"park"}
    assert len(park) == sum(r[col["environment"]] == "park" for r in rows) < len(rows)

    Select(browser.find_element(By.ID, "sort")).select_by_value("margin-asc")
    margins = [r["margin"] for r in visible_rows(browser)]
    assert margins == sorted(margins)
    assert margins[0] == pytest.approx(min(float(r[col["margin"]]) for r in rows if r[col["environment"]] == "park"), abs=1e-4)
    Select(browser.find_element(By.ID, "sort")).select_by_value("margin-desc")
    assert [r["margin"] for r in visible_rows(browser)] == sorted(margins, reverse=True)

    Select(browser.find_element(By.ID, "f-env")).select_by_value("")
    box = browser.find_element(By.ID, "f-text")
    box.send_keys("rec_0001")
    matching = visible_rows(browser)
    assert matching and all("rec_0001" in r["source"] for r in matching)
    assert len(matching) == sum("rec_0001" in r[0] for r in rows)
    box.clear()
    box.send_keys("no such path")
    assert visible_rows(browser) == []
    assert browser.find_element(By.ID, "page-info").text == "no rows match"
    assert severe(browser) == []


def _mark(browser, row_index: int, verdict: str, corrected: str | None = None) -> None:
    tr = browser.find_element(By.CSS_SELECTOR, f'#rows tbody tr[data-row="{row_index}"]')
    tr.find_element(By.CSS_SELECTOR, f'input[value="{verdict}"]').click()
    if corrected is not None:
        Select(tr.find_element(By.CSS_SELECTOR, "select.corrected")).select_by_value(corrected)


def download(browser, downloads: Path) -> Path:
    for old in downloads.glob("*"):
        old.unlink()
    browser.find_element(By.ID, "download").click()
    target = downloads / "review.csv"
    for _ in range(100):
        if target.exists() and not list(downloads.glob("*.crdownload")):
            break
        time.sleep(0.1)
    return target


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def expected_row(built):
    """The review CSV's line for row ``i`` of the report's CSV with ``verdict``."""
    header, rows = built["header"], built["rows"]
    col = {c: header.index(c) for c in header}

    def expected(i, verdict, corrected=""):
        r = rows[i]
        return [str(Path(r[0]).absolute()), r[col["start_s"]], r[col["end_s"]], r[col["environment"]],
                r[col["label"]], verdict, corrected]
    return expected


def shown_decisions(browser) -> dict[int, tuple[str, str]]:
    """Row index -> (checked verdict, corrected label if relabel) for the rows on the page that have one."""
    out = {}
    for tr in browser.find_elements(By.CSS_SELECTOR, "#rows tbody tr"):
        checked = [i.get_attribute("value") for i in tr.find_elements(By.CSS_SELECTOR, "input[type=radio]") if i.is_selected()]
        if checked:
            select = tr.find_element(By.CSS_SELECTOR, "select.corrected")
            out[int(tr.get_attribute("data-row"))] = (checked[0], select.get_attribute("value") if checked[0] == "relabel" else "")
    return out


def test_review_download_is_the_expected_csv(built, browser, downloads):
    header, rows = built["header"], built["rows"]
    open_page(browser, built["report"] / "index.html")
    hostile = len(rows) - 1
    other = next(lab for lab in ("siren", "dog bark") if lab != rows[2][header.index("label")])
    _mark(browser, 0, "right")
    _mark(browser, 1, "wrong")
    _mark(browser, 2, "relabel", other)
    _mark(browser, hostile, "relabel", "drilling")
    _mark(browser, 1, "right")  # a changed mind: the last verdict counts
    assert browser.find_element(By.ID, "decided").text == "4 decisions"
    if os.environ.get("PROTO_INDEX_REPORT_SCREENSHOT"):
        browser.set_window_size(1400, 1500)
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(os.environ["PROTO_INDEX_REPORT_SCREENSHOT"])
        browser.set_window_size(1400, 1000)
    target = download(browser, downloads)
    got = read_csv(target)
    expected = expected_row(built)

    assert got[0] == ["path", "start_s", "end_s", "environment", "label", "verdict", "corrected_label"]
    assert got[1:] == [expected(0, "right"), expected(1, "right"), expected(2, "relabel", other),
                       expected(hostile, "relabel", "drilling")]
    assert got[4][0].endswith(HOSTILE_NAME) and got[4][4] == HOSTILE_LABEL
    raw = target.read_text(encoding="utf-8")
    assert '"q"' not in raw.replace('""q""', "")  # the quote in the file name is doubled inside a quoted cell
    assert severe(browser) == []


def test_the_report_classify_wrote_loads_too(built, browser):
    c = built["classified"]
    for page in ("index.html", "prototypes.html"):
        open_page(browser, c.report / page)
        states = audio_states(browser)
        assert states and all(err is None and math.isfinite(d) and d > 0 for _, d, err in states), page
        assert severe(browser) == [], page
    open_page(browser, c.report / "index.html")
    assert len(visible_rows(browser)) == len(read_rows(c.csv)[1])


def test_decisions_survive_a_reload_and_stay_with_their_report(built, browser, downloads):
    header, rows = built["header"], built["rows"]
    report, other_report = built["report"] / "index.html", built["classified"].report / "index.html"
    hostile = len(rows) - 1
    other = next(lab for lab in ("siren", "dog bark") if lab != rows[2][header.index("label")])
    open_page(browser, report)
    _mark(browser, 0, "right")
    _mark(browser, 2, "relabel", other)
    _mark(browser, 3, "wrong")
    _mark(browser, hostile, "relabel", "drilling")
    _mark(browser, 3, "right")  # a changed mind is what is kept
    _mark(browser, 2, "relabel", "bird song")  # so is a changed label
    key = browser.execute_script("return JSON.parse(document.getElementById('report-meta').textContent).storageKey")
    assert key.startswith("proto-index-review:")
    assert "not downloaded yet" in browser.find_element(By.ID, "saved").text

    browser.refresh()  # a reload, as a closed and reopened tab
    want = {0: ("right", ""), 2: ("relabel", "bird song"), 3: ("right", ""), hostile: ("relabel", "drilling")}
    assert shown_decisions(browser) == want
    assert browser.find_element(By.ID, "decided").text == "4 decisions"
    Select(browser.find_element(By.ID, "f-verdict")).select_by_value("any")
    assert sorted(r["i"] for r in visible_rows(browser)) == sorted(want)
    expected = expected_row(built)
    got = read_csv(download(browser, downloads))
    assert got[1:] == [expected(0, "right"), expected(2, "relabel", "bird song"), expected(3, "right"),
                       expected(hostile, "relabel", "drilling")]
    assert "last downloaded" in browser.find_element(By.ID, "saved").text

    open_page(browser, other_report, keep_saved=True)  # another report in the same browser: none of them
    assert browser.find_element(By.ID, "decided").text == "0 decisions"
    assert shown_decisions(browser) == {}
    assert browser.execute_script("return JSON.parse(document.getElementById('report-meta').textContent).storageKey") != key
    _mark(browser, 1, "wrong")

    open_page(browser, report, keep_saved=True)  # and it did not touch the first one's
    assert shown_decisions(browser) == want
    assert "last downloaded" in browser.find_element(By.ID, "saved").text  # the download survives a reload too
    open_page(browser, other_report, keep_saved=True)
    assert shown_decisions(browser) == {1: ("wrong", "")}
    assert severe(browser) == []


def test_clearing_forgets_only_after_confirmation(built, browser):
    report = built["report"] / "index.html"
    open_page(browser, report)
    _mark(browser, 0, "wrong")
    _mark(browser, 1, "right")
    browser.find_element(By.ID, "forget").click()
    browser.switch_to.alert.dismiss()  # changed one's mind: nothing forgotten
    browser.refresh()
    assert shown_decisions(browser) == {0: ("wrong", ""), 1: ("right", "")}
    browser.find_element(By.ID, "forget").click()
    alert = browser.switch_to.alert
    assert "2 decisions" in alert.text
    alert.accept()
    assert browser.find_element(By.ID, "decided").text == "0 decisions" and shown_decisions(browser) == {}
    browser.refresh()
    assert shown_decisions(browser) == {} and browser.find_element(By.ID, "decided").text == "0 decisions"
    key = browser.execute_script("return JSON.parse(document.getElementById('report-meta').textContent).storageKey")
    assert browser.execute_script("return window.localStorage.getItem(arguments[0])", key) is None
    # a per-row "clear" is kept too
    _mark(browser, 0, "right")
    _mark(browser, 1, "right")
    browser.find_element(By.CSS_SELECTOR, '#rows tbody tr[data-row="0"] button.clear').click()
    browser.refresh()
    assert shown_decisions(browser) == {1: ("right", "")}
    assert severe(browser) == []


def test_hostile_saved_decisions_are_ignored_and_stay_text(built, browser, downloads):
    rows = built["rows"]
    report = built["report"] / "index.html"
    open_page(browser, report)
    key = browser.execute_script("return JSON.parse(document.getElementById('report-meta').textContent).storageKey")
    saved = {"decisions": [
        [0, "relabel", HOSTILE_LABEL],  # not one of the report's labels
        [1, "<img src=x onerror=alert(1)>", ""],  # not a verdict
        ["__proto__", "right", ""], [10 ** 9, "right", ""], [2.5, "right", ""], [3, "right", "drilling"],
        [4, "wrong", ""], {"i": 5}, None,
        [len(rows) - 1, "relabel", "siren"],  # the hostile row itself, with a real label
    ], "downloaded": "<script>alert(2)</script>"}
    browser.execute_script("window.localStorage.setItem(arguments[0], arguments[1])", key, json.dumps(saved))
    browser.refresh()
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018
    assert shown_decisions(browser) == {4: ("wrong", ""), len(rows) - 1: ("relabel", "siren")}
    assert browser.find_element(By.ID, "saved").text == "kept in this browser; not downloaded yet"  # not a time
    got = read_csv(download(browser, downloads))
    assert [line[5:] for line in got[1:]] == [["wrong", ""], ["relabel", "siren"]]
    assert got[2][4] == HOSTILE_LABEL
    browser.execute_script("window.localStorage.setItem(arguments[0], '{not json')", key)
    browser.refresh()
    assert shown_decisions(browser) == {} and browser.find_element(By.ID, "decided").text == "0 decisions"
    assert severe(browser) == []


# --- environments and labels named like Object.prototype's keys; formula-like cells ----------------

COLUMNS = ["path", "environment", "adaptation", "tau", "label", "score", "margin", "error"]
JS_NAMES = ["__proto__", "constructor", "toString"]


def test_report_filters_environments_and_labels_named_like_object_prototype_keys(tmp_path, browser):
    clips = [write(tmp_path / f"c{i}.wav", [(440.0 + 100 * i, 0.5)], seconds=1.0) for i in range(4)]
    envs, labels = JS_NAMES + ["park"], ["siren", "__proto__", "constructor", "hasOwnProperty"]
    table = tmp_path / "c.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for p, env, label in zip(clips, envs, labels):
            w.writerow([str(p), env, "none", "0", label, "0.5", "0.1", ""])
    cli("report", table, "--out", tmp_path / "r")
    open_page(browser, tmp_path / "r" / "index.html")

    def shown():
        return [(tr.find_elements(By.TAG_NAME, "td")[1].text, tr.find_elements(By.TAG_NAME, "td")[2].text)
                for tr in browser.find_elements(By.CSS_SELECTOR, "#rows tbody tr")]

    env_select, label_select = Select(browser.find_element(By.ID, "f-env")), Select(browser.find_element(By.ID, "f-label"))
    assert [o.get_attribute("value") for o in env_select.options] == ["", *sorted(envs)]
    assert [o.get_attribute("value") for o in label_select.options] == ["", *sorted(labels)]
    for env, label in zip(envs, labels):
        env_select.select_by_value(env)
        assert shown() == [(env, label)]
    env_select.select_by_value("")
    for env, label in zip(envs, labels):
        label_select.select_by_value(label)
        assert shown() == [(env, label)]
    assert severe(browser) == []


def test_report_decisions_csv_neutralises_formulas_reversibly(tmp_path, browser):
    """The page's decisions CSV is a table a spreadsheet opens too: text cells starting like a
    formula get a leading ', which annotate (read_text_cell) strips exactly once."""
    clip = write(tmp_path / "=1+1.wav", [(440.0, 0.5)], seconds=1.0)
    table = tmp_path / "c.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerow([str(clip), "@park", "none", "0", "-siren", "0.5", "0.1", ""])
    cli("report", table, "--out", tmp_path / "r")
    open_page(browser, tmp_path / "r" / "index.html")
    browser.find_element(By.CSS_SELECTOR, "#rows tbody tr input[value='right']").click()
    text = browser.execute_script("return window.protoIndexReport.decisionsCsv();")
    header, row = text.strip().split("\r\n")
    assert row == f"{clip},,,'@park,'-siren,right,"
    row_cells = next(csv.reader([row]))
    from proto_index.cells import read_text_cell

    assert [read_text_cell(c) for c in row_cells[3:5]] == ["@park", "-siren"]
