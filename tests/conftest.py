import os
import sys
from pathlib import Path

import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from fakes import VOCAB, tone_mix  # noqa: E402  (importing fakes registers the 'fake-bands' model)
from proto_index.options import EnvironmentOptions, PrototypeOptions

CLASS_FREQS = {label: VOCAB[label] for label in ("siren", "dog bark", "drilling", "bird song")}
# The airport's background shares the dog-bark band: unadapted, it pulls clips towards "dog bark".
BACKGROUNDS = {"airport": [(300.0, 0.5), (1500.0, 0.5)], "park": [(150.0, 0.5)]}


def write(path: Path, parts, seconds=2.0, sr=48_000, seed=0, subtype="PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone_mix(parts, seconds, sr=sr, seed=seed), sr, subtype=subtype)
    return path


TIERS = ("model", "cluster", "browser", "stress")
"""The slow tiers (pyproject's markers); a test in none of them is in the quick tier."""


def pytest_itemcollected(item):
    """Tiers for `-m`: a tier implies `slow`, a bare `slow` means `model` (real towers), the rest is `quick`.
    Marked as each test is collected, before `-m` deselects."""
    tiers = [t for t in TIERS if item.get_closest_marker(t)]
    if item.get_closest_marker("slow") is None and not tiers:
        item.add_marker(pytest.mark.quick)
        return
    if item.get_closest_marker("slow") is None:
        item.add_marker(pytest.mark.slow)
    if not tiers:
        item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session", autouse=True)
def _private_user_cache(tmp_path_factory):
    """The user cache (checkpoint hashes, downloads) lives in this session's tmp folder, never in ~/.cache;
    subprocesses (the CLI, Ray workers) inherit it. A test may still point it elsewhere with monkeypatch."""
    cache = tmp_path_factory.mktemp("user-cache")
    saved = os.environ.get("PROTO_INDEX_CACHE")
    os.environ["PROTO_INDEX_CACHE"] = str(cache)
    yield cache
    if saved is None:
        os.environ.pop("PROTO_INDEX_CACHE", None)
    else:
        os.environ["PROTO_INDEX_CACHE"] = saved


@pytest.fixture(autouse=True)
def _real_towers_only_in_slow_tests(request, monkeypatch):
    """`pytest -m "not slow"` builds no CLAP tower: an unmarked test that tries fails, saying why."""
    if request.node.get_closest_marker("slow") is None:
        from proto_index.clap import seeded

        def refuse(*args, **kwargs):
            pytest.fail("this test builds a real CLAP tower: mark it @pytest.mark.slow", pytrace=False)

        monkeypatch.setattr(seeded, "seeded_model", refuse)


@pytest.fixture
def corpus_dir(tmp_path) -> Path:
    """6 clips per class over alternating backgrounds: clip CLASS_i.wav."""
    root = tmp_path / "corpus"
    for ci, (label, f) in enumerate(CLASS_FREQS.items()):
        for i in range(6):
            env = ("park", "airport")[i % 2]
            bg = [(bf, a * 0.4) for bf, a in BACKGROUNDS[env]]
            write(root / f"{label.replace(' ', '_')}_{i}.wav", [(f, 0.5)] + bg, seed=100 * ci + i)
    return root


@pytest.fixture
def fake_store(tmp_path) -> Path:
    """An empty store of the fake encoder at tmp_path/store."""
    from fakes import BandEncoder

    from proto_index import Store

    path = tmp_path / "store"
    Store.init(path, model="fake-bands", encoder=BandEncoder()).close()
    return path


@pytest.fixture
def background_dir(tmp_path) -> Path:
    root = tmp_path / "backgrounds"
    for env, parts in BACKGROUNDS.items():
        for i in range(3):
            write(root / env / f"bg_{i}.wav", parts, seconds=3.0, seed=900 + i)
    return root


@pytest.fixture
def urban_store(tmp_path, corpus_dir, background_dir):
    """An open fake-encoder store: the corpus ingested, zero-shot prototypes of the four classes,
    environments airport (text and audio background) and park (text)."""
    from fakes import BandEncoder

    from proto_index import Store

    s = Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder())
    s.ingest([corpus_dir])
    s.add_classes("urban", list(CLASS_FREQS))
    s.build_prototypes("urban", PrototypeOptions(method="zero-shot"))
    s.add_environment("airport", EnvironmentOptions(text="airport", audio=[background_dir / "airport"]))
    s.add_environment("park", EnvironmentOptions(text="park"))
    yield s
    s.close()
