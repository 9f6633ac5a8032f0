"""A fast start that changes nothing: deferred imports, remembered filter banks and seeded weights.

Each shortcut is checked against the slow way it replaces (exact equality), for damaged caches, and
in a fresh process for what a start-up no longer imports. Timing is bench/startup.py's job.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from proto_index.embed import build, filterbanks, seeded
from proto_index.embed.deferred import Deferred, StandIn, deferring

torch = pytest.importorskip("torch")

HEAVY = ("sklearn", "torchvision", "pandas", "webdataset", "h5py", "transformers", "scipy.signal", "numba",
         "sympy", "torch._dynamo")
"""What a one-file classify on a demo store imported before and must not import now."""


# -- deferred imports --------------------------------------------------------------------------------

@pytest.fixture
def packages(tmp_path, monkeypatch):
    """A package ``heavy`` whose import is logged, and ``user`` that imports it as laion_clap does."""
    log = tmp_path / "imported.log"
    (tmp_path / "heavy").mkdir()
    (tmp_path / "heavy" / "__init__.py").write_text(textwrap.dedent(f"""
        with open({str(log)!r}, "a") as f:
            f.write("heavy\\n")
        calls = []
        def make(n):
            calls.append(n)
            return {{"made": n}}
        class Thing:
            def __init__(self, n):
                self.n = n
        VERSION = "1.2"
    """))
    (tmp_path / "heavy" / "sub.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "user.py").write_text(textwrap.dedent("""
        import heavy
        import heavy.sub as sub
        from heavy import make, Thing
        made_at_import = make(7)
        try:
            import not_installed_anywhere
        except ImportError:
            not_installed_anywhere = None
        def version():
            return heavy.VERSION
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield log
    for name in ("heavy", "heavy.sub", "user"):
        sys.modules.pop(name, None)


def test_a_deferred_package_is_imported_on_first_use_and_behaves_as_itself(packages):
    with deferring(("heavy", "not_installed_anywhere")):
        import user
    assert not packages.exists() and "heavy" not in sys.modules  # nothing imported, no stand-in left
    assert isinstance(user.heavy, StandIn) and isinstance(user.made_at_import, Deferred)
    assert user.not_installed_anywhere is None  # a missing package still fails to import

    assert user.version() == "1.2"  # outside the block a stand-in forwards to the real module
    assert packages.read_text() == "heavy\n"
    assert user.sub.double(21) == 42 and user.Thing(3).n == 3
    assert user.made_at_import["made"] == 7  # the call made at import ran now, once
    assert user.made_at_import["made"] == 7
    import heavy
    assert not isinstance(heavy, StandIn) and heavy.calls == [7]


def test_an_imported_package_is_not_deferred(packages):
    import heavy
    with deferring(("heavy",)):
        import user
    assert user.heavy is heavy and user.make is heavy.make and user.made_at_import == {"made": 7}


def test_a_stand_in_answers_dunders_from_the_real_module_after_the_block(packages):
    """laion_clap's load_state_dict reads ``transformers.__version__`` through the stand-in it imported."""
    (packages.parent / "heavy" / "__init__.py").write_text('__version__ = "9.9"\nVERSION = "1.2"\n')
    with deferring(("heavy",)):
        import user
        with pytest.raises(AttributeError):
            user.heavy.__version__  # inside the block: the import system's probes find nothing
    assert isinstance(user.heavy, StandIn)
    assert user.heavy.__version__ == "9.9" and user.heavy.__name__ == "heavy"


def test_another_thread_importing_a_deferred_package_during_the_block_gets_the_real_one(packages):
    import threading

    inside, got = threading.Event(), []

    def other():
        inside.wait(60)
        try:
            import heavy  # sys.modules holds the deferring thread's stand-in now
            got.append(heavy.VERSION)
        except BaseException as e:  # noqa: BLE001 - reported below (was RecursionError)
            got.append(e)

    thread = threading.Thread(target=other)
    thread.start()
    with deferring(("heavy",)):
        import user  # noqa: F401
        inside.set()
        thread.join(0.5)  # the other thread waits for the block to end
        assert thread.is_alive() and got == []
    thread.join(60)
    assert got == ["1.2"]
    assert "heavy" in sys.modules and not isinstance(sys.modules["heavy"], StandIn)


# -- filter banks ------------------------------------------------------------------------------------

def test_remembered_filter_banks_equal_librosa_and_survive_damage(tmp_path, monkeypatch):
    import librosa
    import torchlibrosa.stft as stft

    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path))

    def layers():
        with filterbanks.remembered():
            return (stft.Spectrogram(n_fft=1024, hop_length=480, win_length=1024, freeze_parameters=True),
                    stft.LogmelFilterBank(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000, freeze_parameters=True))

    spectrogram, logmel = layers()
    files = sorted((tmp_path / "filterbanks").glob("*.npy"))
    assert len(files) == 3  # get_window, pad_center, mel
    expected_mel = librosa.filters.mel(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000).T
    np.testing.assert_array_equal(logmel.melW.detach().numpy(), expected_mel)
    plain = stft.Spectrogram(n_fft=1024, hop_length=480, win_length=1024, freeze_parameters=True)
    assert stft.librosa is librosa  # restored after the block

    for damaged in files:
        damaged.write_bytes(b"not an array")
    spectrogram2, logmel2 = layers()  # recomputed, and remembered again
    for path in files:
        assert np.load(path, allow_pickle=False).size > 0
    spectrogram3, logmel3 = layers()  # from the files
    for s in (spectrogram, spectrogram2, spectrogram3):
        for a, b in zip(s.state_dict().values(), plain.state_dict().values()):
            assert torch.equal(a, b)
    assert torch.equal(logmel3.melW, logmel.melW) and torch.equal(logmel2.melW, logmel.melW)


def test_a_call_with_an_argument_it_cannot_key_is_not_remembered():
    assert filterbanks.call_key("f", (object(),), {}) is None
    a = filterbanks.call_key("f", (np.arange(4.0),), {"size": 8})
    assert a == filterbanks.call_key("f", (np.arange(4.0),), {"size": 8})
    assert a != filterbanks.call_key("f", (np.arange(4.0) + 1,), {"size": 8})
    assert a != filterbanks.call_key("f", (np.arange(4.0),), {"size": 9})


# -- seeded weights ----------------------------------------------------------------------------------

def _tensors(model):
    return {**dict(model.named_parameters()), **dict(model.named_buffers())}


def _assert_same_model(a, b):
    ta, tb = _tensors(a), _tensors(b)
    assert set(ta) == set(tb)
    for name in ta:
        assert torch.equal(ta[name], tb[name]), name


@pytest.mark.slow
def test_a_seeded_model_from_the_cache_is_the_one_drawn(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path))
    drawn, _ = build.create_clap_model("transformer", fusion=False, seed=0)
    first = seeded.seeded_clap_model("transformer", fusion=False, seed=0)  # draws, saves
    (path,) = (tmp_path / "seeded").glob("*.safetensors")
    cached = seeded.seeded_clap_model("transformer", fusion=False, seed=0)  # loads
    _assert_same_model(drawn, first.model)
    _assert_same_model(drawn, cached.model)  # parameters and every buffer, persistent or not
    assert first.state_hash == cached.state_hash == build.state_sha256(drawn)

    calls = []
    real_create = build.create_clap_model

    def recording(*args, **kwargs):
        calls.append(kwargs.get("initialise", True))
        return real_create(*args, **kwargs)

    monkeypatch.setattr(build, "create_clap_model", recording)
    seeded.seeded_clap_model("transformer", fusion=False, seed=0)
    assert calls == [False]  # from the cache: built without drawing

    # a file whose tensors were altered (format intact) is not used: drawn again and rewritten
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    state = load_file(str(path))
    name = sorted(state)[0]
    state[name] = state[name] + 1
    save_file(state, str(path), metadata=metadata)
    calls.clear()
    redrawn = seeded.seeded_clap_model("transformer", fusion=False, seed=0).model
    assert calls == [False, True]
    _assert_same_model(drawn, redrawn)
    path.write_bytes(b"truncated")
    calls.clear()
    _assert_same_model(drawn, seeded.seeded_clap_model("transformer", fusion=False, seed=0)[0])
    assert calls == [True]
    other_seed = seeded.seeded_clap_model("transformer", fusion=False, seed=1).model
    assert not torch.equal(_tensors(other_seed)["audio_projection.0.weight"], _tensors(drawn)["audio_projection.0.weight"])


@pytest.mark.slow
def test_skipping_the_initialisation_restores_it_afterwards():
    before = {name: getattr(torch.nn.init, name) for name in build.INIT_FUNCTIONS}
    build.create_clap_model("transformer", fusion=False, text=False, initialise=False)
    assert {name: getattr(torch.nn.init, name) for name in build.INIT_FUNCTIONS} == before
    assert torch.nn.modules.activation.xavier_uniform_ is before["xavier_uniform_"]
    layer = torch.nn.Linear(4, 4, bias=False)
    torch.nn.init.zeros_(layer.weight)
    assert float(layer.weight.detach().abs().sum()) == 0.0


# -- a start-up in a fresh process -------------------------------------------------------------------

@pytest.mark.slow
def test_a_classify_start_up_imports_none_of_what_laion_clap_needs_only_for_training(tmp_path):
    env = {**os.environ, "PROTO_INDEX_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    store, labels, clip = tmp_path / "store", tmp_path / "labels.txt", tmp_path / "clip.wav"
    labels.write_text("siren\ndog bark\n")
    import soundfile as sf
    t = np.arange(48_000 * 3) / 48_000
    sf.write(clip, (0.3 * np.sin(2 * np.pi * 880 * t)).astype(np.float32), 48_000)

    def cli(*args, report=None):
        code = ("import sys, json; from proto_index.cli.app import main; sys.argv[0] = 'proto-index'\n"
                "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
                f"json.dump(sorted(sys.modules), open({str(report)!r}, 'w')) if {report is not None} else None\n")
        out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr

    cli("init", "--store", str(store), "--model", "clap-tiny-demo", "--device", "cpu")
    cli("classes", "add", "c", "--labels-file", str(labels), "--store", str(store))
    cli("prototypes", "build", "c", "--method", "zero-shot", "--store", str(store))
    cli("env", "add", "park", "--text", "park", "--store", str(store))
    runs = []
    for run in range(2):  # the first fills the caches (seeded weights, filter banks)
        report = tmp_path / f"modules{run}.json"
        cli("classify", str(clip), "-p", "c-zero-shot", "--env", "park", "--out", str(tmp_path / f"out{run}.csv"),
            "--store", str(store), "--device", "cpu", report=report)
        runs.append(set(json.loads(report.read_text())))
    assert (tmp_path / "out0.csv").read_text() == (tmp_path / "out1.csv").read_text()
    assert "laion_clap" in runs[1] and "clap_module.htsat" in runs[1]
    assert sorted(m for m in HEAVY if m in runs[1]) == []
