"""`proto-index serve`, the real server in a subprocess, driven over HTTP (see serve_server.py)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import uuid

import pytest
from cli_store import cli
from serve_server import child_env, small_store, start_server

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    return tmp, small_store(tmp)


@pytest.fixture(scope="module")
def server(built):
    tmp, store = built
    s = start_server(store, tmp / "server.log")
    yield s
    s.stop()


def multipart(field: str, filename: str, data: bytes) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}"}


def test_text_search_gives_the_cli_search_hits(server, built):
    _, store = built
    r = server.post("/api/search/text", {"text": "a siren wailing", "k": 5})
    assert r.status == 200
    cli_hits = json.loads(cli("search", "a siren wailing", "-k", "5", "--json", "--store", store).stdout)
    got = r.json()["hits"]
    assert [h["window_id"] for h in got] == [h["window_id"] for h in cli_hits]
    assert [h["score"] for h in got] == pytest.approx([h["score"] for h in cli_hits], abs=1e-6)
    assert [h["path"] for h in got] == [h["path"] for h in cli_hits]


def test_audio_search_finds_the_uploaded_clip_itself(server, built):
    tmp, _ = built
    clip = tmp / "corpus" / "clip_0001.wav"  # 7.8 s: one window
    for body, headers in ((clip.read_bytes(), {"content-type": "audio/wav"}),
                          multipart("file", "../../etc/passwd", clip.read_bytes())):
        r = server.post("/api/search/audio?k=3", body, headers=headers)
        assert r.status == 200, r.body
        top = r.json()["hits"][0]
        assert top["path"] == str(clip) and top["score"] == pytest.approx(1.0, abs=1e-5)


def test_search_by_window_leaves_the_window_out(server):
    r = server.get("/api/search/window/3?k=4")
    assert r.status == 200
    hits = r.json()["hits"]
    assert len(hits) == 4 and 3 not in [h["window_id"] for h in hits]
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert server.get("/api/search/window/99999").status == 404


def test_bad_input_gets_a_4xx_with_one_line(server):
    bad_json = server.post("/api/search/text", b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status == 422 and "\n" not in bad_json.json()["detail"]
    empty = server.post("/api/search/text", {"text": "", "k": 3})
    assert empty.status == 422
    not_audio = server.post("/api/search/audio", b"this is not audio" * 10, headers={"content-type": "audio/wav"})
    assert not_audio.status == 415 and "not an audio file" in not_audio.json()["detail"]
    unknown = server.get("/api/classify/windows?prototypes=nope&environment=park")
    assert unknown.status == 404 and "nope" in unknown.json()["detail"]
    unknown_env = server.get("/api/classify/windows?prototypes=urban-tgap4&environment=moon")
    assert unknown_env.status == 404 and "moon" in unknown_env.json()["detail"]


def test_classify_upload_agrees_with_the_cli(server, built):
    tmp, store = built
    clip = tmp / "corpus" / "clip_0003.wav"
    r = server.post("/api/classify/audio?prototypes=urban-tgap4&environment=park", clip.read_bytes(),
                    headers={"content-type": "audio/wav"})
    assert r.status == 200, r.body
    out = tmp / "cli-classify.csv"
    cli("classify", clip, "-p", "urban-tgap4", "--env", "park", "--out", out, "--store", store, "-q")
    header, row = [line.split(",") for line in out.read_text().splitlines()[:2]]
    got = r.json()["results"][0]
    assert got["label"] == row[header.index("label")]
    assert got["score"] == pytest.approx(float(row[header.index("score")]), abs=1e-4)


def test_classification_browser_orders_least_certain_first(server):
    r = server.get("/api/classify/windows?prototypes=urban-tgap4&environment=park&limit=100")
    assert r.status == 200
    data = r.json()
    margins = [w["margin"] for w in data["windows"]]
    assert margins == sorted(margins) and data["total"] == len(margins) == sum(data["counts"].values())
    info = server.get("/api/info").json()
    assert data["total"] == info["counts"]["windows"]
    label = data["windows"][0]["label"]
    only = server.get(f"/api/classify/windows?prototypes=urban-tgap4&environment=park&label={label.replace(' ', '%20')}").json()
    assert {w["label"] for w in only["windows"]} == {label} and only["total"] == data["counts"][label]


def test_annotate_then_list_change_and_replace(server):
    v = {"window_id": 2, "label": "siren", "verdict": "right", "reviewer": "alice", "environment": "park"}
    r = server.post("/api/annotations", v)
    assert r.status == 201, r.body
    first = r.json()
    assert first["replaced"] is False and first["annotation"]["reviewer"] == "alice"
    listed = server.get("/api/annotations?window_id=2").json()["annotations"]
    assert [(a["verdict"], a["reviewer"], a["source"]) for a in listed] == [("right", "alice", "web")]
    again = server.post("/api/annotations", {**v, "verdict": "relabel", "corrected_label": "drilling", "reviewer": "bob"})
    assert again.status == 201 and again.json()["replaced"] is True
    listed = server.get("/api/annotations?window_id=2").json()["annotations"]
    assert [(a["verdict"], a["corrected_label"], a["reviewer"]) for a in listed] == [("relabel", "drilling", "bob")]
    changed = server.request("PUT", f"/api/annotations/{listed[0]['id']}", {"verdict": "wrong", "reviewer": "carol"})
    assert changed.status == 200, changed.body
    listed = server.get("/api/annotations?window_id=2").json()["annotations"]
    assert [(a["verdict"], a["corrected_label"], a["reviewer"]) for a in listed] == [("wrong", None, "carol")]
    seen = server.get("/api/classify/windows?prototypes=urban-tgap4&environment=park&limit=100").json()["windows"]
    assert [w["verdict"]["verdict"] for w in seen if w["window_id"] == 2] == ["wrong"]
    by_reviewer = server.get("/api/annotations?reviewer=carol").json()["annotations"]
    assert [a["window_id"] for a in by_reviewer] == [2]


def test_bad_verdicts_store_nothing(server):
    before = server.get("/api/annotations?window_id=4").json()["annotations"]
    for body, status, words in (
        ({"window_id": 4, "label": "unicorn", "verdict": "right", "reviewer": "a"}, 400, "unicorn"),
        ({"window_id": 4, "label": "siren", "verdict": "relabel", "reviewer": "a"}, 400, "corrected_label"),
        ({"window_id": 4, "label": "siren", "verdict": "maybe", "reviewer": "a"}, 422, "verdict"),
        ({"window_id": 99999, "label": "siren", "verdict": "right", "reviewer": "a"}, 404, "99999"),
        ({"window_id": 4, "label": "siren", "verdict": "right", "reviewer": "a", "environment": "moon"}, 400, "moon"),
    ):
        r = server.post("/api/annotations", body)
        assert r.status == status and words in r.json()["detail"], (body, r.status, r.body)
    assert server.get("/api/annotations?window_id=4").json()["annotations"] == before


def test_audio_range_requests(server):
    full = server.get("/api/audio/window/1")
    assert full.status == 200 and full.headers["content-type"] == "audio/wav" and full.body[:4] == b"RIFF"
    assert full.headers["accept-ranges"] == "bytes"
    part = server.get("/api/audio/window/1", headers={"range": "bytes=100-199"})
    assert part.status == 206 and part.body == full.body[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(full.body)}"
    tail = server.get("/api/audio/window/1", headers={"range": "bytes=-50"})
    assert tail.status == 206 and tail.body == full.body[-50:]
    beyond = server.get("/api/audio/window/1", headers={"range": f"bytes={len(full.body)}-"})
    assert beyond.status == 416 and beyond.headers["content-range"] == f"bytes */{len(full.body)}"
    span = server.get("/api/audio/1?start_s=0&end_s=1")
    assert span.status == 200 and len(span.body) < len(full.body)


def test_spectrogram_thumbnails(server):
    r = server.get("/api/spectrogram/window/1")
    assert r.status == 200 and r.headers["content-type"] == "image/png" and r.body[:8] == b"\x89PNG\r\n\x1a\n"
    assert server.get("/api/spectrogram/window/99999").status == 404


def test_no_path_from_a_request_reaches_the_disk(server):
    passwd = open("/etc/passwd", "rb").read()
    for path in ("/api/audio/..%2F..%2F..%2Fetc%2Fpasswd", "/api/audio/1%2F..%2F..%2Fetc%2Fpasswd",
                 "/static/..%2F..%2F..%2F..%2Fetc%2Fpasswd", "/static/../../../../etc/passwd",
                 "/api/audio/window/-1", "/api/audio/99999"):
        r = server.get(path)
        assert r.status in (404, 422) and passwd not in r.body, (path, r.status)
    ignored = server.get("/api/audio/1?path=/etc/passwd&file=/etc/passwd")
    assert ignored.status == 200 and ignored.body[:4] == b"RIFF"


def test_prototype_sets_list_show_and_build(server):
    names = [p["name"] for p in server.get("/api/prototypes").json()["prototype_sets"]]
    assert names == ["urban-tgap4"]
    shown = server.get("/api/prototypes/urban-tgap4?top=2").json()
    assert [c["label"] for c in shown["classes"]] == ["siren", "dog bark", "drilling", "bird song"]
    assert all(len(c["neighbours"]) == 2 and c["neighbours_total"] == 4 for c in shown["classes"])
    built = server.post("/api/prototypes", {"class_set": "urban", "method": "zero-shot"})
    assert built.status == 201 and built.json()["name"] == "urban-zero-shot"
    again = server.post("/api/prototypes", {"class_set": "urban", "method": "zero-shot"})
    assert again.status == 409 and "urban-zero-shot" in again.json()["detail"]
    assert server.get("/api/prototypes/nope").status == 404


def test_a_cli_ingest_beside_the_server_becomes_visible(server, built):
    tmp, store = built
    before = server.get("/api/info").json()["counts"]["windows"]
    extra = tmp / "extra"
    extra.mkdir()
    shutil.copyfile(tmp / "bg" / sorted(os.listdir(tmp / "bg"))[0], extra / "late.wav")
    cli("ingest", extra, "--store", store, "-q", "--wait", "30")
    after = server.get("/api/info").json()["counts"]["windows"]
    assert after == before + 1
    r = server.post("/api/search/audio?k=1", (extra / "late.wav").read_bytes(), headers={"content-type": "audio/wav"})
    assert r.json()["hits"][0]["path"] == str(extra / "late.wav")


def test_writes_need_the_token_and_a_body_limit_holds(built, tmp_path):
    tmp, store = built
    s = start_server(store, tmp_path / "token.log", "--max-upload-mb", "0.05", env=child_env(PROTO_INDEX_TOKEN="s3cret"))
    try:
        v = {"window_id": 5, "label": "siren", "verdict": "right", "reviewer": "dave"}
        assert s.post("/api/annotations", v).status == 401
        assert s.post("/api/annotations", v, token="wrong").status == 401
        assert s.post("/api/prototypes", {"class_set": "urban", "method": "tgap", "n": 2}).status == 401
        assert s.post("/api/annotations", v, token="s3cret").status == 201
        assert s.post("/api/annotations", v, headers={"x-proto-index-token": "s3cret"}).status == 201
        assert s.post("/api/search/text", {"text": "siren"}).status == 200  # reading needs none
        big = s.post("/api/search/audio", b"\0" * 60_000, headers={"content-type": "audio/wav"})
        assert big.status == 413 and "limit" in big.json()["detail"]
    finally:
        s.stop()


def test_read_only_serves_reads_and_refuses_writes(built, tmp_path):
    tmp, store = built
    s = start_server(store, tmp_path / "ro.log", "--read-only")
    try:
        v = {"window_id": 5, "label": "siren", "verdict": "right", "reviewer": "erin"}
        r = s.post("/api/annotations", v)
        assert r.status == 403 and "read-only" in r.json()["detail"]
        assert s.post("/api/prototypes", {"class_set": "urban", "method": "zero-shot", "name": "x"}).status == 403
        assert s.post("/api/search/text", {"text": "siren"}).status == 200
        assert s.get("/api/info").json()["server"]["read_only"] is True
    finally:
        s.stop()


def test_another_interface_needs_a_token(built):
    _, store = built
    r = cli("serve", "--store", store, "--host", "0.0.0.0", code=1)
    assert "without a token" in r.stderr and "Traceback" not in r.stderr


def test_cors_only_when_asked(server):
    r = server.get("/api/health", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.slow
def test_a_clap_tiny_demo_store_serves_the_cli_answers(tmp_path):
    """The real CLAP towers behind the batcher: concurrent text searches each get the CLI's hits."""
    from concurrent.futures import ThreadPoolExecutor

    store = small_store(tmp_path, model="clap-tiny-demo")
    s = start_server(store, tmp_path / "demo.log")
    try:
        queries = ["a siren wailing", "a dog barking", "a drill", "birds singing"]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda q: s.post("/api/search/text", {"text": q, "k": 3}), queries * 2))
        assert all(a.status == 200 for a in answers)
        expected_of = {q: json.loads(cli("search", q, "-k", "3", "--json", "--store", store).stdout) for q in queries[:2]}
        for q, a in zip(queries * 2, answers):
            if q not in expected_of:  # each CLI search loads the model again: two are enough
                continue
            expected = expected_of[q]
            assert [h["window_id"] for h in a.json()["hits"]] == [h["window_id"] for h in expected]
            assert [h["score"] for h in a.json()["hits"]] == pytest.approx([h["score"] for h in expected], abs=1e-4)
        batch = s.get("/api/info").json()["server"]["batch"]
        assert batch["calls"] >= 8 and batch["items"] >= 8
        clip = tmp_path / "corpus" / "clip_0001.wav"
        r = s.post("/api/classify/audio?prototypes=urban-tgap4&environment=park", clip.read_bytes(),
                   headers={"content-type": "audio/wav"})
        assert r.status == 200 and r.json()["results"][0]["label"] in ("siren", "dog bark", "drilling", "bird song")
    finally:
        s.stop()


def test_two_reviewers_at_once_leave_one_verdict(server):
    from concurrent.futures import ThreadPoolExecutor

    def post(i):
        who, verdict = ("ann", "right") if i % 2 else ("ben", "wrong")
        return server.post("/api/annotations", {"window_id": 6, "label": "drilling", "verdict": verdict, "reviewer": who})

    with ThreadPoolExecutor(8) as pool:
        statuses = [r.status for r in pool.map(post, range(16))]
    assert statuses == [201] * 16
    (only,) = server.get("/api/annotations?window_id=6").json()["annotations"]
    assert (only["reviewer"], only["verdict"]) in {("ann", "right"), ("ben", "wrong")}


def test_kill_9_in_the_middle_of_writes_loses_nothing_committed(built, tmp_path):
    import signal
    import threading

    from proto_index import Store
    from proto_index.usecases.verdicts import list_verdicts

    store = tmp_path / "store"
    shutil.copytree(built[1], store)  # its own copy: the verdicts written here stay out of the other tests
    s = start_server(store, tmp_path / "kill.log")
    windows = [x["id"] for r in s.get("/api/recordings").json()["recordings"]
               for x in s.get(f"/api/recordings/{r['id']}").json()["windows"]]
    acknowledged: list[int] = []
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            try:
                r = s.post("/api/annotations", {"window_id": windows[i % len(windows)], "label": "bird song",
                                                "verdict": "right", "reviewer": f"k{i}", "source": "killtest"}, timeout=5)
            except OSError:
                return
            if r.status == 201:
                acknowledged.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    for _ in range(400):
        if len(acknowledged) >= 2 * len(windows):
            break
        threading.Event().wait(0.05)
    s.process.send_signal(signal.SIGKILL)
    s.process.wait(timeout=20)
    stop.set()
    t.join(20)
    assert len(acknowledged) >= 2 * len(windows)
    cli("verify", "--store", store)
    with Store.open(store) as st:
        stored = {v.window_id: v.reviewer for v in list_verdicts(st._storage, limit=100_000) if v.source == "killtest"}
    in_flight = max(acknowledged) + 1  # sent as the server died: stored or not, never half
    for w_index, w in enumerate(windows):
        latest = max(i for i in acknowledged if i % len(windows) == w_index)
        allowed = {f"k{latest}"} | ({f"k{in_flight}"} if in_flight % len(windows) == w_index else set())
        assert stored[w] in allowed, (w, stored[w], allowed)


def test_review_next_puts_disagreements_between_sets_first(server):
    if server.get("/api/prototypes/urban-zero-shot").status == 404:
        assert server.post("/api/prototypes", {"class_set": "urban", "method": "zero-shot"}).status == 201
    base = "/api/classify/windows?prototypes=urban-tgap4&environment=airport&limit=500"
    r = server.get(base + "&compare=urban-zero-shot&order=teach")
    assert r.status == 200
    rows = r.json()["windows"]
    agree = [w["other_label"] == w["label"] for w in rows]
    assert agree == sorted(agree)  # every disagreement before every agreement
    other = {w["window_id"]: w["label"] for w in server.get(base.replace("urban-tgap4", "urban-zero-shot")).json()["windows"]}
    assert {w["window_id"]: w["other_label"] for w in rows} == other
    for group in (False, True):
        margins = [w["margin"] for w, a in zip(rows, agree) if a == group]
        assert margins == sorted(margins)


def test_a_verdict_on_a_stale_view_is_refused_whole(server):
    v = {"window_id": 7, "label": "siren", "verdict": "right", "reviewer": "fay", "expected_id": None}
    first = server.post("/api/annotations", v)
    assert first.status == 201
    seen = first.json()["annotation"]["id"]
    # gus loaded the page before fay's verdict: he expects none
    late = server.post("/api/annotations", {**v, "verdict": "wrong", "reviewer": "gus"})
    assert late.status == 409
    assert late.json()["detail"] == "window 7's verdict was changed to right by fay since you loaded it; load it again"
    (only,) = server.get("/api/annotations?window_id=7").json()["annotations"]
    assert (only["id"], only["reviewer"], only["verdict"]) == (seen, "fay", "right")
    ok = server.post("/api/annotations", {**v, "verdict": "wrong", "reviewer": "gus", "expected_id": seen})
    assert ok.status == 201 and ok.json()["replaced"] is True
    stale_put = server.request("PUT", f"/api/annotations/{seen}", {"verdict": "right", "reviewer": "fay"})
    assert stale_put.status == 404 and "replaced" in stale_put.json()["detail"]


def test_classify_upload_with_drift_agrees_with_the_cli(server, built):
    tmp, store = built
    clip = tmp / "corpus" / "clip_0003.wav"
    url = "/api/classify/audio?prototypes=urban-tgap4&environment=airport&drift=true&drift_weight=0.5"
    r = server.post(url, clip.read_bytes(), headers={"content-type": "audio/wav"})
    assert r.status == 200, r.body
    out = tmp / "cli-classify-drift.csv"
    cli("classify", clip, "-p", "urban-tgap4", "--env", "airport", "--drift", "--drift-weight", "0.5", "--all-scores",
        "--out", out, "--store", store, "-q")
    row = next(csv.DictReader(out.open(newline="")))
    got = r.json()["results"][0]
    assert got["label"] == row["label"]
    assert got["scores"] == pytest.approx([float(row[x]) for x in r.json()["labels"]], abs=1e-4)
    plain = server.post(url.replace("&drift=true&drift_weight=0.5", ""), clip.read_bytes(),
                        headers={"content-type": "audio/wav"}).json()["results"][0]
    assert max(abs(a - b) for a, b in zip(plain["scores"], got["scores"])) > 1e-3  # drift moved the scores
    bad = server.post(url.replace("0.5", "-1"), clip.read_bytes(), headers={"content-type": "audio/wav"})
    assert bad.status == 400 and "drift weight" in bad.json()["detail"] and "\n" not in bad.json()["detail"]
