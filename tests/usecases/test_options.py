"""EmbedOptions, ScoringOptions and IngestOptions: checked when made, the same defaults as before, and
carried unchanged to the code that uses them."""
import dataclasses
from dataclasses import replace
import inspect
import pickle
import threading

import numpy as np
import pytest
from conftest import write
from fakes import RecordingEncoder
from cli_store import cli as run, read_csv

from proto_index import EmbedOptions, IngestOptions, ScoringOptions, Store
from proto_index.cli import hints
from proto_index.embed.encoder import ModelIdentity
from proto_index.errors import InvalidInput, StoreLocked
from proto_index.engine import embedding
from proto_index.usecases import ingest as ingest_mod
from proto_index.store.storage import Storage
from proto_index.options import EnvironmentOptions

SR = 48_000


@pytest.fixture
def batches():
    RecordingEncoder.batches.clear()
    yield RecordingEncoder.batches
    RecordingEncoder.batches.clear()


@pytest.fixture
def readers(monkeypatch):
    """(workers, prefetch) of each thread pool embed_files starts."""
    started = []
    real = embedding.Readers

    def spy(paths, read, workers, prefetch):
        started.append((workers, prefetch))
        return real(paths, read, workers, prefetch)

    monkeypatch.setattr(embedding, "Readers", spy)
    return started


def windows_of(batches) -> list[np.ndarray]:
    return [w for batch in batches for w in batch]


def test_defaults_are_the_ones_the_loose_arguments_had():
    # workers None: 1 on a CPU as before (test below), more on CUDA
    assert EmbedOptions() == EmbedOptions(hop_s=None, batch_windows=None, workers=None, prefetch=8)
    clap = ModelIdentity("m", "a", False, "w", 4)
    assert EmbedOptions().cutting(clap).hop == 480_000  # the hop follows the model's window
    assert EmbedOptions().cutting(replace(clap, window_s=3.0)).hop == 144_000
    assert inspect.signature(Store.ingest).parameters["options"].default == EmbedOptions()
    assert inspect.signature(Store.classify).parameters["options"].default == EmbedOptions()


@pytest.mark.parametrize("field, value, message", [
    ("hop_s", 0, "the hop between windows must be a positive number of seconds, got 0"),
    ("hop_s", -5.0, "got -5.0"),
    ("hop_s", float("nan"), "got nan"),
    ("hop_s", float("inf"), "got inf"),
    ("hop_s", 1e-6, "got 1e-06"),  # rounds to no sample at 48 kHz
    ("hop_s", "5", "got '5'"),
    ("hop_s", True, "got True"),
    ("batch_windows", 0, "windows per model batch must be a whole number of at least 1, got 0"),
    ("batch_windows", 2.5, "got 2.5"),
    ("batch_windows", True, "got True"),
    ("workers", -1, "reader workers must be a whole number of at least 0, got -1"),
    ("workers", "2", "got '2'"),
    ("prefetch", 0, "files read ahead must be a whole number of at least 1, got 0"),
])
def test_bad_values_are_refused_without_naming_a_flag(field, value, message):
    with pytest.raises(InvalidInput) as e:
        EmbedOptions(**{field: value})
    assert message in str(e.value)
    assert "--" not in str(e.value)


def test_values_become_plain_numbers_and_stay_fixed():
    options = EmbedOptions(hop_s=np.float32(2.5), batch_windows=np.int64(3), workers=np.int8(0))
    assert (options.hop_s, options.batch_windows, options.workers) == (2.5, 3, 0)
    assert type(options.hop_s) is float and type(options.batch_windows) is int and type(options.workers) is int
    assert options.cutting(ModelIdentity("m", "a", False, "w", 4)).hop == 120_000
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.hop_s = 1.0
    assert pickle.loads(pickle.dumps(options)) == options  # it travels to Ray workers


def test_store_ingest_with_defaults_embeds_as_before(tmp_path, batches, readers):
    for i in range(5):
        write(tmp_path / "in" / f"c{i}.wav", [(500.0 + 100 * i, 0.5)], seconds=12.0, seed=i)
    with Store.init(tmp_path / "s", model="fake-recording", encoder=RecordingEncoder()) as s:
        report = s.ingest([tmp_path / "in"])
    assert (report.added, report.windows) == (5, 10)
    assert [len(b) for b in batches] == [4, 4, 2]  # the CPU default batch, across files
    assert [len(w) for w in windows_of(batches)] == [480_000, 96_000] * 5  # 10 s windows, no overlap
    assert readers == [(1, 8)]


@pytest.mark.parametrize("device, cpus, workers", [
    ("cpu", 2, 1), ("cpu", 64, 1), ("cuda", 16, 15), ("cuda:1", 64, 16), ("cuda", 1, 1), ("cuda", None, 1),
])
def test_default_workers_follow_the_device(device, cpus, workers):
    from proto_index.options import default_workers

    assert default_workers(device, cpus) == workers


def test_a_cuda_model_gets_reader_threads_for_all_cores_but_one(tmp_path, batches, readers, monkeypatch):
    """The default reaches embed_files as the encoder's device decides (one thread cannot feed a GPU)."""
    monkeypatch.setattr(embedding.os, "cpu_count", lambda: 8)
    clip = write(tmp_path / "a.wav", [(700.0, 0.5)], seconds=12.0)
    encoder = RecordingEncoder()
    encoder.device = "cuda"  # only the name: the fake runs on the CPU
    list(embedding.embed_files([clip], encoder))
    assert readers == [(7, 8)]
    assert [len(b) for b in batches] == [2]  # the CUDA batch default (32) holds both windows
    list(embedding.embed_files([clip], encoder, options=EmbedOptions(workers=2)))
    assert readers[-1] == (2, 8)  # an explicit count wins


def test_store_options_reach_the_model(tmp_path, batches, readers):
    clip = write(tmp_path / "in" / "a.wav", [(700.0, 0.5)], seconds=25.0)
    with Store.init(tmp_path / "s", model="fake-recording", encoder=RecordingEncoder()) as s:
        s.ingest([clip], options=EmbedOptions(hop_s=5.0, batch_windows=3, workers=2, prefetch=3))
    windows = windows_of(batches)
    assert [len(b) for b in batches] == [3, 1]
    assert len(windows) == 4  # windows at 0, 5, 10 and 15 s (the last one reaches the end)
    assert np.array_equal(windows[1][: 5 * SR], windows[0][5 * SR:])  # 5 s of overlap: a 5 s hop
    assert readers == [(2, 3)]


def test_cli_ingest_options_reach_the_model(tmp_path, batches, readers):
    store = tmp_path / "store"
    run("init", "--store", store, "--model", "fake-recording")
    write(tmp_path / "in" / "a.wav", [(700.0, 0.5)], seconds=25.0)
    write(tmp_path / "in" / "b.wav", [(900.0, 0.5)], seconds=25.0)
    run("ingest", tmp_path / "in", "--store", store, "--hop", "5", "--batch-size", "3", "--workers", "0", "-q")
    windows = windows_of(batches)
    assert [len(b) for b in batches] == [3, 3, 2]  # 8 windows in batches of 3, across the two files
    assert np.array_equal(windows[1][: 5 * SR], windows[0][5 * SR:])
    assert readers == []  # --workers 0: read in the model's thread, no reader threads


def test_cli_classify_options_reach_the_model(tmp_path, batches, readers):
    store = tmp_path / "store"
    run("init", "--store", store, "--model", "fake-recording")
    run("classes", "add", "urban", "-l", "siren", "-l", "dog bark", "--store", store)
    run("prototypes", "build", "urban", "--store", store)
    run("env", "add", "park", "--store", store)
    clip = write(tmp_path / "a.wav", [(700.0, 0.5)], seconds=25.0)
    out = tmp_path / "out.csv"
    batches.clear()
    run("classify", clip, "-p", "urban-zero-shot", "--env", "park", "--per-window", "--hop", "5",
        "--batch-size", "2", "--workers", "3", "--out", out, "--store", store, "-q")
    assert [(r["start_s"], r["end_s"]) for r in read_csv(out)] == [("0", "10"), ("5", "15"), ("10", "20"), ("15", "25")]
    assert [len(b) for b in batches] == [2, 2]
    assert readers == [(3, 8)]


def test_classify_takes_a_manifest_path_and_typed_parameters(tmp_path, batches):
    clip = write(tmp_path / "a.wav", [(700.0, 0.5)], seconds=25.0)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,environment\n{clip},park\n")
    with Store.init(tmp_path / "s", model="fake-recording", encoder=RecordingEncoder()) as s:
        s.add_classes("urban", ["siren", "dog bark"])
        s.build_prototypes("urban")
        s.add_environment("park", EnvironmentOptions(text="park"))
        windows = [(0.0, 10.0), (5.0, 15.0), (10.0, 20.0), (15.0, 25.0)]
        for items in (manifest, str(manifest), [(clip, "park")]):
            result = s.classify(items, "urban-zero-shot", scoring=ScoringOptions(per_window=True), options=EmbedOptions(hop_s=5.0))
            assert [(f.path, f.environment, f.start_s, f.end_s) for f in result.files] == [(clip, "park", *w) for w in windows]
        assert Store.classify_manifest is Store.classify  # the name earlier versions had for a manifest
        old_call = s.classify_manifest(manifest, "urban-zero-shot", scoring=ScoringOptions(tau=0.0))
        assert [(f.path, f.tau) for f in old_call.files] == [(clip, 0.0)]
        with pytest.raises(TypeError):
            s.classify(manifest, "urban-zero-shot", hop_s=5.0)  # no loose embedding arguments any more
        with pytest.raises(TypeError):
            s.classify([(clip, "park")], "urban-zero-shot", "none")  # scoring options are keywords


def test_ray_task_embeds_with_the_options_it_is_given(tmp_path, batches, monkeypatch):
    """embed_batch, the Ray task, hands its EmbedOptions to embed_files (run here, without a cluster)."""
    pytest.importorskip("pyarrow")
    from proto_index.distributed import ray_executor
    from proto_index.engine.executors import ModelSpec

    monkeypatch.setattr(ray_executor, "_known", lambda ref: frozenset())
    clip = write(tmp_path / "a.wav", [(700.0, 0.5)], seconds=25.0)
    spec = ModelSpec({"model": "fake-recording"}, "cpu", "fp32", RecordingEncoder().identity.to_json())
    table = ray_executor.embed_batch({"path": np.array([str(clip)])}, spec=spec,
                                     options=EmbedOptions(hop_s=5.0, batch_windows=3), known_ref=None)
    [row] = table.to_pylist()
    assert row["kind"] == "embedded" and row["starts_s"] == [0.0, 5.0, 10.0, 15.0]
    assert [len(b) for b in batches] == [3, 1]


def test_scoring_options_defaults_are_the_old_keyword_defaults():
    assert dataclasses.astuple(ScoringOptions()) == ("auto", None, "l2", False, False, False, 0.1)  # transductive, drift off
    for fn in (Store.classify, Store.classify_dataset):
        params = inspect.signature(fn).parameters
        assert params["scoring"].default == ScoringOptions()
        assert not {"adapt", "tau", "prototype_norm", "per_window", "transductive"} & set(params)
        assert all(p.kind is not p.VAR_KEYWORD for p in params.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        ScoringOptions().tau = 0.5
    assert pickle.loads(pickle.dumps(ScoringOptions(tau="auto-clip"))) == ScoringOptions(tau="auto-clip")


@pytest.mark.parametrize("tau, parsed", [(None, None), (0.3, 0.3), (" 0.25 ", 0.25), ("AUTO", "projection-batch"),
                                         ("auto-clip", "projection")])
def test_scoring_options_keep_the_parsed_tau(tau, parsed):
    """Parsed once, on creation, and kept (through pickling and replace) for classify to use as it is."""
    options = ScoringOptions(tau=tau)
    assert options.parsed_tau == parsed and options.tau == tau
    assert pickle.loads(pickle.dumps(options)).parsed_tau == parsed
    assert dataclasses.replace(options, tau=0.5).parsed_tau == 0.5


@pytest.mark.parametrize("kwargs, message", [
    ({"adapt": "both"}, "unknown adaptation 'both'; choose one of auto, audio, text, none"),
    ({"tau": "often"}, "tau must be a number or one of auto, auto-clip, not 'often'"),
    ({"prototype_norm": "l1"}, "unknown prototype norm 'l1'; choose one of l2, none"),
    ({"per_window": 1}, "per_window must be True or False, got 1"),
])
def test_scoring_options_are_checked_when_made(kwargs, message):
    with pytest.raises(InvalidInput) as info:
        ScoringOptions(**kwargs)
    assert str(info.value) == message
    assert "--" not in str(info.value)  # a library message names no CLI flag


def test_classify_scores_per_window_with_scoring_options(tmp_path, batches):
    clip = write(tmp_path / "a.wav", [(700.0, 0.5)], seconds=25.0)
    with Store.init(tmp_path / "s", model="fake-recording", encoder=RecordingEncoder()) as s:
        s.add_classes("urban", ["siren", "dog bark"])
        s.build_prototypes("urban")
        s.add_environment("park", EnvironmentOptions(text="park"))
        whole = s.classify([(clip, "park")], "urban-zero-shot")
        assert [(f.start_s, f.end_s) for f in whole.files] == [(None, None)]
        windows = s.classify([(clip, "park")], "urban-zero-shot", scoring=ScoringOptions(per_window=True, tau=0.0))
        assert windows.per_window
        assert [(f.start_s, f.end_s) for f in windows.files] == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
        assert {f.tau for f in windows.files} == {0.0}


# -- IngestOptions ---------------------------------------------------------------------------------


@pytest.fixture
def ingest_spy(monkeypatch):
    """What an ingest did with its IngestOptions: the writer-lock waits asked for, the windows of
    each catalog commit, the index publications and the files handed to a reader."""
    seen = {"waits": [], "commits": [], "publications": 0, "reads": []}
    real_writer, real_commit = Storage.writer, ingest_mod._commit
    real_publish, real_read = Storage.publish_index, embedding.read_file

    def writer(self, wait_s=0.0, recover=True):
        seen["waits"].append(wait_s)
        return real_writer(self, wait_s, recover)

    def commit(storage, index, batch, report):
        if batch:
            seen["commits"].append(sum(len(f.starts_s) for f in batch))
        return real_commit(storage, index, batch, report)

    def publish(self, index):
        seen["publications"] += 1
        return real_publish(self, index)

    def read(path, *args, **kwargs):
        seen["reads"].append(path)
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(Storage, "writer", writer)
    monkeypatch.setattr(ingest_mod, "_commit", commit)
    monkeypatch.setattr(Storage, "publish_index", publish)
    monkeypatch.setattr(embedding, "read_file", read)

    def reset():
        seen.update(waits=[], commits=[], publications=0, reads=[])

    seen["reset"] = reset
    return seen


def five_clips(folder):
    """5 files of 12 s: 2 windows each, 10 in all."""
    for i in range(5):
        write(folder / f"c{i}.wav", [(500.0 + 100 * i, 0.5)], seconds=12.0, seed=i)
    return folder


def test_ingest_options_defaults_are_the_old_keyword_defaults():
    assert dataclasses.astuple(IngestOptions()) == (0.0, False, 256, 50_000)
    for fn in (Store.ingest, ingest_mod.ingest):
        params = inspect.signature(fn).parameters
        assert params["run"].default == IngestOptions() and params["run"].kind is params["run"].KEYWORD_ONLY
        assert not {"wait_s", "rehash", "commit_windows", "publish_windows"} & set(params)
        assert all(p.kind is not p.VAR_KEYWORD for p in params.values())
    with pytest.raises(dataclasses.FrozenInstanceError):
        IngestOptions().rehash = True
    assert pickle.loads(pickle.dumps(IngestOptions(wait_s=2.0, rehash=True))) == IngestOptions(wait_s=2.0, rehash=True)


@pytest.mark.parametrize("kwargs, message, option", [
    ({"wait_s": -1}, "the wait for another writer must be zero or more seconds, got -1", "wait_s"),
    ({"wait_s": float("nan")}, "the wait for another writer must be zero or more seconds, got nan", "wait_s"),
    ({"wait_s": "5"}, "the wait for another writer must be zero or more seconds, got '5'", "wait_s"),
    ({"wait_s": True}, "the wait for another writer must be zero or more seconds, got True", "wait_s"),
    ({"rehash": 1}, "rehash must be True or False, got 1", "rehash"),
    ({"rehash": "yes"}, "rehash must be True or False, got 'yes'", "rehash"),
    ({"commit_windows": 0}, "windows per catalog transaction must be a whole number of at least 1, got 0", "commit_windows"),
    ({"commit_windows": 2.5}, "windows per catalog transaction must be a whole number of at least 1, got 2.5", "commit_windows"),
    ({"commit_windows": True}, "windows per catalog transaction must be a whole number of at least 1, got True", "commit_windows"),
    ({"publish_windows": -3}, "new windows between index publications must be a whole number of at least 1, got -3",
     "publish_windows"),
])
def test_ingest_options_are_checked_when_made(kwargs, message, option):
    with pytest.raises(InvalidInput) as info:
        IngestOptions(**kwargs)
    assert str(info.value) == message
    assert "--" not in str(info.value)  # a library message names no CLI flag ...
    assert hints.message(info.value) == f"{message} ({hints.FLAGS[option]})"  # the CLI names its flag


def test_ingest_options_become_plain_numbers_and_may_wait_for_ever():
    options = IngestOptions(wait_s=np.float32(2.5), commit_windows=np.int64(3), publish_windows=np.int8(7))
    assert (options.wait_s, options.commit_windows, options.publish_windows) == (2.5, 3, 7)
    assert type(options.wait_s) is float and type(options.commit_windows) is int and type(options.publish_windows) is int
    assert IngestOptions(wait_s=float("inf")).wait_s == float("inf")  # as Store.remove's wait_s


def test_store_ingest_options_reach_the_pipeline(tmp_path, ingest_spy):
    folder = five_clips(tmp_path / "in")
    with Store.init(tmp_path / "s", model="fake-recording", encoder=RecordingEncoder()) as s:
        ingest_spy["reset"]()
        report = s.ingest([folder], run=IngestOptions(wait_s=7.5, commit_windows=3, publish_windows=4))
        assert (report.added, report.windows) == (5, 10)
        assert ingest_spy["waits"][0] == 7.5
        assert ingest_spy["commits"] == [4, 4, 2]  # a commit once a batch holds 3 windows or more (2 a file)
        assert ingest_spy["publications"] == 3  # after 4 and 8 new windows, and at the end
        assert len(ingest_spy["reads"]) == 5

        ingest_spy["reset"]()
        assert s.ingest([folder]).skipped == 5
        assert ingest_spy["reads"] == []  # unchanged files: skipped unread
        assert s.ingest([folder], run=IngestOptions(rehash=True)).skipped == 5
        assert sorted(ingest_spy["reads"]) == sorted(folder.iterdir())  # rehash: every file read again


def test_store_ingest_defaults_commit_once_and_publish_once(tmp_path, ingest_spy):
    folder = five_clips(tmp_path / "in")
    with Store.init(tmp_path / "s", model="fake-recording", encoder=RecordingEncoder()) as s:
        ingest_spy["reset"]()
        s.ingest([folder])
    assert (ingest_spy["waits"][0], ingest_spy["commits"], ingest_spy["publications"]) == (0.0, [10], 1)


def test_store_ingest_waits_as_long_as_it_is_told(tmp_path):
    folder = five_clips(tmp_path / "in")
    with Store.init(tmp_path / "s", model="fake-recording", encoder=RecordingEncoder()) as s:
        other = Storage.open(tmp_path / "s")
        with other.writer():
            with pytest.raises(StoreLocked):
                s.ingest([folder])  # no wait by default
            threading.Timer(0.3, other._lock.release).start()
            assert s.ingest([folder], run=IngestOptions(wait_s=60)).added == 5
        other.close()


def test_cli_ingest_options_reach_the_pipeline(tmp_path, ingest_spy):
    store = tmp_path / "store"
    run("init", "--store", store, "--model", "fake-recording")
    folder = five_clips(tmp_path / "in")
    ingest_spy["reset"]()
    run("ingest", folder, "--store", store, "--wait", "2.5", "--commit-windows", "3", "--publish-windows", "4", "-q")
    assert ingest_spy["waits"][0] == 2.5
    assert (ingest_spy["commits"], ingest_spy["publications"]) == ([4, 4, 2], 3)
    ingest_spy["reset"]()
    assert "skipped 5 already stored" in run("ingest", folder, "--store", store, "-q").stdout
    assert ingest_spy["reads"] == []
    assert "skipped 5 already stored" in run("ingest", folder, "--store", store, "--rehash", "-q").stdout
    assert sorted(ingest_spy["reads"]) == sorted(folder.iterdir())

