"""Decoding in worker processes (decoder="processes"): the threads' results in the same order, per-file
failures (a crashed process included), long files streamed, and no process left behind."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from audio_factory import corrupt_header, write_wav

from proto_index.audio.windows import Cutting
from proto_index.engine import decoding, embedding, reading
from proto_index.errors import InvalidInput
from proto_index.options import EmbedOptions
from proto_index.engine.embedding import EmbeddedFile, FailedFile, SkippedFile, embed_files


class Fingerprint:
    """An encoder whose vector is the SHA-256 of the window's samples: equal vectors mean equal samples."""

    dim = 32
    device = "cpu"

    def embed_waveforms(self, waveforms):
        return np.stack([np.frombuffer(hashlib.sha256(np.asarray(w).tobytes()).digest(), np.uint8)
                         for w in waveforms]).astype(np.float32)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Files in an order where the slowest comes first: a streamed 40 s file, short clips in four
    encodings, a copy, a corrupt file, a missing one and one too short to embed."""
    root = tmp_path_factory.mktemp("mixed")
    paths = [
        write_wav(root / "long.flac", 40.0, 22_050, 2, freq=300.0, seed=1),  # past 30 s: streamed
        write_wav(root / "a.wav", 4.0, 44_100, 2, freq=500.0, seed=2),
        write_wav(root / "b.flac", 12.5, 16_000, 1, freq=700.0, seed=3),
        write_wav(root / "c.ogg", 3.0, 44_100, 2, "VORBIS", "OGG", freq=900.0, seed=4),
        write_wav(root / "d.mp3", 3.0, 44_100, 2, "MPEG_LAYER_III", "MP3", freq=1100.0, seed=5),
        corrupt_header(root / "corrupt.wav"),
        root / "missing.wav",
        write_wav(root / "tiny.wav", 0.001, 8_000),
        write_wav(root / "known.wav", 2.0, 48_000, freq=1300.0, seed=6),
    ]
    shutil.copy(paths[1], root / "a_copy.wav")
    paths.append(root / "a_copy.wav")
    known = {hashlib.sha256(paths[-2].read_bytes()).hexdigest()}
    return paths, known


def summary(results):
    out = []
    for r in results:
        if isinstance(r, EmbeddedFile):
            out.append(("embedded", r.path.name, r.starts_s, r.ends_s, r.duration_s, r.sha256, r.vectors.tobytes()))
        elif isinstance(r, SkippedFile):
            out.append(("skipped", r.path.name, r.sha256))
        else:
            out.append(("failed", r.path.name, r.error))
    return out


def test_processes_give_the_threads_results_in_input_order(mixed):
    paths, known = mixed
    threads = summary(embed_files(paths, Fingerprint(), known_hashes=known, options=EmbedOptions(batch_windows=3, workers=2)))
    processes = summary(embed_files(paths, Fingerprint(), known_hashes=known,
                                    options=EmbedOptions(batch_windows=3, workers=2, decoder="processes")))
    assert processes == threads  # same samples (vectors are their hashes), windows, hashes and errors
    assert [(s[0], s[1]) for s in processes] == [
        ("embedded", "long.flac"), ("embedded", "a.wav"), ("embedded", "b.flac"), ("embedded", "c.ogg"),
        ("embedded", "d.mp3"), ("failed", "corrupt.wav"), ("failed", "missing.wav"), ("failed", "tiny.wav"),
        ("skipped", "known.wav"), ("skipped", "a_copy.wav"),
    ]
    long = processes[0]
    assert long[2] == [0.0, 10.0, 20.0, 30.0] and long[4] == 40.0  # streamed, every window there
    errors = {s[1]: s[2] for s in processes if s[0] == "failed"}
    assert errors["corrupt.wav"].startswith("not an audio file soundfile can read")
    assert errors["missing.wav"] == "cannot read file: No such file or directory"
    assert errors["tiny.wav"] == "too short to embed (8 samples at 8000 Hz)"


def crashing_read(path, cut, hashing, known):
    """A reader whose process dies on files named crash*; the real reader otherwise."""
    if path.name.startswith("crash"):
        os._exit(3)
    return reading.read_file(path, cut, hashing, known)


def test_a_process_that_dies_fails_only_its_file(mixed, tmp_path, monkeypatch):
    paths, _ = mixed
    crash = write_wav(tmp_path / "crash.wav", 1.0, 48_000)
    monkeypatch.setattr(embedding, "read_file", crashing_read)  # sent to the process by name
    results = list(embed_files([paths[1], crash, paths[2], paths[3]], Fingerprint(),
                               options=EmbedOptions(workers=1, decoder="processes")))
    assert [type(r).__name__ for r in results] == ["EmbeddedFile", "FailedFile", "EmbeddedFile", "EmbeddedFile"]
    assert results[1].error == "the decoding process ended on this file (exit code 3)"


@pytest.fixture
def started(monkeypatch):
    """Every decoding process started, as they start."""
    workers = []

    class Spy(decoding._Worker):
        def __init__(self, *args):
            super().__init__(*args)
            workers.append(self)

    monkeypatch.setattr(decoding, "_Worker", Spy)
    return workers


def test_giving_up_midway_leaves_no_process(mixed, started):
    paths, _ = mixed
    results = embed_files(paths, Fingerprint(), options=EmbedOptions(batch_windows=1, workers=2, decoder="processes"))
    first = next(results)
    assert first.path.name == "long.flac" and len(started) >= 1
    assert all(w.process.is_alive() for w in started)
    results.close()  # the consumer stops (an error, Ctrl-C): every process is ended and reaped
    assert started and all(w.process.exitcode is not None for w in started)


def test_a_finished_run_leaves_no_process_and_ctrl_c_is_the_parents(mixed, started, capfd):
    paths, known = mixed
    results = embed_files(paths, Fingerprint(), known_hashes=known, options=EmbedOptions(workers=2, decoder="processes"))
    got = [next(results)]
    deadline = time.monotonic() + 120
    # A process still starting up has Python's own SIGINT handler; wait until each one has reached
    # its loop (SIGINT in its ignored set) so the test checks the loop's choice, not the start-up race.
    while not all(_ignores_sigint(w.process.pid) for w in started) and time.monotonic() < deadline:
        time.sleep(0.05)
    for worker in started:  # Ctrl-C in a terminal signals the whole process group
        os.kill(worker.process.pid, signal.SIGINT)
    time.sleep(0.5)
    assert all(w.process.is_alive() for w in started)  # ignored there: the parent decides
    got += list(results)
    assert "Traceback" not in capfd.readouterr().err
    assert [type(r).__name__ for r in got].count("EmbeddedFile") == 5 and len(got) == len(paths)
    assert len(started) == 2 and all(w.process.exitcode is not None for w in started)


def _ignores_sigint(pid: int) -> bool:
    """Whether ``pid`` ignores SIGINT now (the SigIgn mask in /proc/PID/status)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))
    except (OSError, StopIteration):
        return True  # gone: nothing left to signal
    return bool(mask & (1 << (signal.SIGINT - 1)))


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"  # exited, not yet reaped by its new parent
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_killing_the_parent_ends_its_decoding_processes(mixed, tmp_path):
    paths, _ = mixed
    script = textwrap.dedent(f"""
        import sys, time
        sys.path[:0] = {sys.path!r}
        from pathlib import Path
        import numpy as np
        from proto_index.engine import decoding
        from proto_index.options import EmbedOptions
        from proto_index.engine.embedding import embed_files

        class Slow:
            dim, device = 4, "cpu"
            def embed_waveforms(self, waves):
                time.sleep(0.5)
                return np.zeros((len(waves), 4), np.float32)

        started = []
        class Spy(decoding._Worker):
            def __init__(self, *args):
                super().__init__(*args)
                started.append(self.process.pid)
        decoding._Worker = Spy

        if __name__ == "__main__":
            results = embed_files([Path(p) for p in {[str(p) for p in paths[:5]]!r}], Slow(),
                                  options=EmbedOptions(batch_windows=1, workers=2, decoder="processes"))
            next(results)
            while len(started) < 2:
                time.sleep(0.05)
            print(" ".join(map(str, started)), flush=True)
            time.sleep(60)
    """)
    (tmp_path / "victim.py").write_text(script)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "victim.py")], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2 and not any(_gone(p) for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(p) for p in pids)


def test_unknown_decoder_is_refused():
    with pytest.raises(InvalidInput, match="unknown decoder 'fibers'; choose one of threads, processes"):
        EmbedOptions(decoder="fibers")


def test_a_long_file_is_streamed_through_the_process_with_bounded_read_ahead(tmp_path, monkeypatch):
    """The process sends a long file message by message and waits while the consumer is behind."""
    from proto_index.engine.readahead import QUEUE_MESSAGES

    long = write_wav(tmp_path / "long.wav", 200.0, 16_000, seed=7)  # 20 windows, 10 messages
    relayed = []
    real = decoding.ProcessDecoders.read

    def counting(self, path):
        for message in real(self, path):
            relayed.append(type(message).__name__)
            yield message

    monkeypatch.setattr(decoding.ProcessDecoders, "read", counting)
    encoder, out = Gated(), []
    options = EmbedOptions(batch_windows=1, workers=1, decoder="processes")
    consumer = threading.Thread(target=lambda: out.extend(embed_files([long], encoder, options=options)))
    consumer.start()
    try:
        assert encoder.waiting.wait(60)  # the model holds its first window and waits
        time.sleep(1.0)  # the process would run far ahead here if nothing held it back
        # taken by the consumer (Opened, the first Windows), queued, and one in the relaying thread's hand
        assert len(relayed) <= 2 + QUEUE_MESSAGES + 1
    finally:
        encoder.gate.set()
        consumer.join(60)
    assert len(out) == 1 and len(out[0].starts_s) == 20 and len(relayed) == 12  # Opened, 10 x Windows, Done


class Gated(Fingerprint):
    """Waits in its first call until the test opens the gate."""

    def __init__(self):
        self.waiting, self.gate = threading.Event(), threading.Event()

    def embed_waveforms(self, waveforms):
        self.waiting.set()
        self.gate.wait(60)
        return super().embed_waveforms(waveforms)


class Exploding(Fingerprint):
    def embed_waveforms(self, waveforms):
        raise RuntimeError("model exploded")


def test_a_model_error_ends_every_process(mixed, started):
    paths, _ = mixed
    with pytest.raises(RuntimeError, match="model exploded"):
        list(embed_files(paths, Exploding(), options=EmbedOptions(batch_windows=1, workers=2, decoder="processes")))
    assert started and all(w.process.exitcode is not None for w in started)


def test_quantised_samples_cross_as_int16_exactly():
    from proto_index.audio.decode import quantize_int16

    every = quantize_int16(np.linspace(-1.2, 1.2, 400_001, dtype=np.float32))  # every int16 value and then some
    assert len(np.unique(every)) == 65535
    packed = decoding._to_int16(every)
    assert packed.dtype == np.int16
    np.testing.assert_array_equal(decoding._from_int16(packed), every)  # bit for bit
    assert decoding._to_int16(np.array([0.1, 0.5], np.float32)) is None  # not quantised: sent as it is
    message = reading.Windows((reading.Window(0, 3, every[:3]), reading.Window(3, 5, np.float32([0.1, 0.2]))))
    assert decoding._pack(message) is message


def test_every_worker_gets_a_file_whatever_the_prefetch(tmp_path):
    """16 decoding workers on a GPU box all decode at once, even with the default prefetch of 8."""
    from proto_index.engine.readahead import Readers

    together = threading.Barrier(12, timeout=20)  # broken unless 12 files are being read at once

    def read(path):
        together.wait()
        yield reading.Failed("read")

    readers = Readers([tmp_path / f"{i}.wav" for i in range(24)], read, workers=12, prefetch=8)
    try:
        assert [list(job.messages()) for job in readers] == [[reading.Failed("read")]] * 24
    finally:
        readers.close()


def _stored(store: Path) -> dict[str, np.ndarray]:
    from sqlalchemy import select

    from proto_index import Store
    from proto_index.store.schema import Recording, Window
    from fakes import BandEncoder

    with Store.open(store, encoder=BandEncoder()) as s, s._storage.session() as session:
        rows = session.execute(select(Recording.path, Window.vector_row).join(Window).order_by(Window.start_s)).all()
        out: dict[str, list[int]] = {}
        for path, row in rows:
            out.setdefault(Path(path).name, []).append(row)
        return {p: s._storage.vectors.read(r) for p, r in out.items()}


def test_cli_ingest_with_decoding_processes_stores_the_same_vectors(mixed, tmp_path):
    from typer.testing import CliRunner

    from proto_index.cli.app import app

    runner, folder = CliRunner(), tmp_path / "in"
    folder.mkdir()
    for p in mixed[0]:
        if p.exists():
            shutil.copy(p, folder / p.name)
    outputs = {}
    for arm, flags in {"threads": [], "processes": ["--decoder", "processes", "--workers", "2"]}.items():
        store = str(tmp_path / arm)
        assert runner.invoke(app, ["init", "--store", store, "--model", "fake-bands"]).exit_code == 0
        result = runner.invoke(app, ["ingest", str(folder), "--store", store, "-q", *flags])
        assert result.exit_code == 3, result.output  # the corrupt and the too-short file fail, the rest is stored
        outputs[arm] = result.output
    assert outputs["processes"] == outputs["threads"]
    assert "added 6 files (10 windows), skipped 1 already stored, 2 failed" in outputs["threads"]
    threads, processes = _stored(tmp_path / "threads"), _stored(tmp_path / "processes")
    assert sorted(threads) == sorted(processes) == ["a.wav", "b.flac", "c.ogg", "d.mp3", "known.wav", "long.flac"]
    for name in threads:
        np.testing.assert_array_equal(processes[name], threads[name])
    bad = runner.invoke(app, ["ingest", str(folder), "--store", str(tmp_path / "threads"), "--decoder", "fibers"])
    assert bad.exit_code == 2 and "fibers" in bad.output


def test_a_file_dropped_midway_is_stopped_in_its_process_which_serves_the_next(mixed, started):
    """Closing a read mid-file sends STOP; the process answers STOPPED and stays for the next file,
    whose messages (and known-hash question) come back whole."""
    paths, known = mixed
    decoders = decoding.ProcessDecoders(reading.read_file, Cutting(), True, known.__contains__, reading.Failed)
    try:
        first = decoders.read(paths[0])  # the streamed 40 s file
        assert isinstance(next(first), reading.Opened) and isinstance(next(first), reading.Windows)
        first.close()
        assert len(started) == 1 and started[0].process.is_alive()
        again = list(decoders.read(paths[0]))
        assert [type(m).__name__ for m in again] == ["Opened", "Windows", "Windows", "Done"]
        assert [w.start for m in again[1:3] for w in m.windows] == [0, 480_000, 960_000, 1_440_000]
        assert again[-1].n_samples == 40 * 48_000
        assert [type(m).__name__ for m in decoders.read(paths[8])] == ["Known"]  # known.wav: asked, answered True
        assert len(started) == 1  # one process served all three
    finally:
        decoders.close()
    assert started[0].process.exitcode is not None
