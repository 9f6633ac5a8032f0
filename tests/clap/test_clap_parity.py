"""The seeded encoders against laion_clap's own code paths, with the very same weights.

The reference is ``laion_clap.CLAP_Module`` (librosa decoding, its int16 round trip, its
``get_audio_features`` call) around laion_clap's own model holding our weights (skipped where
laion_clap is not installed; tests/clap/test_clap_reference.py holds its recorded vectors).
"""
import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf

from proto_index.audio.decode import prepare, quantize_int16
from proto_index.embed import checkpoint
from proto_index.embed.checkpoint import checkpoint_sha256
from proto_index.embed.seeded import random_encoder
from laion_reference import encoder_state, laion, laion_clap_module

torch = pytest.importorskip("torch")

TOLERANCE = 1e-5
TEXTS = ["a dog barking", "rain on a tin roof", "", "sirens " * 40]

# (sample rate, channels, seconds, subtype): at 44.1 kHz librosa adds a sample at exactly 10 s and
# laion_clap would then crop at random, so 44.1 kHz clips stay shorter.
CLIPS = [
    (16000, 1, 6.0, "PCM_16"),
    (44100, 2, 9.5, "PCM_24"),
    (44100, 1, 1.5, "PCM_16"),
    (48000, 1, 10.0, "FLOAT"),
    (48000, 2, 4.0, "PCM_16"),
]


def laion_reference(encoder):
    """laion_clap's CLAP_Module holding ``encoder``'s weights."""
    return laion_clap_module(encoder_state(encoder), fusion=encoder.identity.fusion)


@pytest.fixture(scope="module")
def plain():
    return random_encoder("clap-tiny-random", fusion=False, batch_size=2, device="cpu")


@pytest.fixture(scope="module")
def fused():
    return random_encoder("clap-fusion-tiny-random", fusion=True, batch_size=2, device="cpu")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for i, (sr, channels, seconds, subtype) in enumerate(CLIPS):
        rng = np.random.default_rng(i)
        t = np.arange(round(seconds * sr)) / sr
        chirp = np.sin(2 * np.pi * (200 + 300 * i) * t * (1 + t))
        data = 0.6 * chirp[:, None] + rng.normal(0, 0.1, (len(t), channels))
        if subtype == "FLOAT":
            data *= 2  # peaks beyond full scale: the int16 round trip clips them
        path = folder / f"clip{i}_{sr}_{channels}ch.wav"
        sf.write(path, data.astype(np.float32), sr, subtype=subtype)
        paths.append(str(path))
    return paths


def _max_diff(a, b) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


@pytest.mark.slow
@pytest.mark.parametrize("which", ["plain", "fused"])
def test_audio_embeddings_equal_laion_clap(request, which, clips):
    encoder = request.getfixturevalue(which)
    ours = encoder.embed_waveforms([prepare(p) for p in clips])

    theirs = laion_reference(encoder).get_audio_embedding_from_filelist(clips)

    diff = _max_diff(ours, theirs)
    print(f"\n{which}: max abs difference to laion_clap {diff:.3g} over {len(clips)} clips")
    assert ours.shape == (len(clips), 512) and ours.dtype == np.float32
    assert diff <= TOLERANCE
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert _max_diff(ours[0], ours[1]) > 1e-4  # the clips do give different embeddings


@pytest.mark.slow
def test_text_embeddings_equal_laion_clap(plain):
    import torch.nn.functional as F

    ours = plain.embed_texts(TEXTS)

    tokens, _ = plain.tokenize(TEXTS)  # the byte tokenizer's rows, through laion_clap's text code
    with torch.no_grad():
        theirs = F.normalize(laion_reference(plain).model(None, tokens), dim=-1).cpu().numpy()
    diff = _max_diff(ours, theirs)
    print(f"\ntext: max abs difference to laion_clap {diff:.3g}")
    assert ours.shape == (len(TEXTS), 512) and diff <= TOLERANCE


@pytest.mark.slow
def test_quantize_matches_laion_clap():
    _, data = laion()
    x = np.random.default_rng(0).uniform(-1.3, 1.3, 100_000).astype(np.float32)
    np.testing.assert_array_equal(quantize_int16(x), data.int16_to_float32(data.float32_to_int16(x)))


@pytest.mark.slow
def test_random_models_are_deterministic(plain, clips):
    state = torch.get_rng_state()
    again = random_encoder("clap-tiny-random", fusion=False, batch_size=plain.batch_size, device="cpu")
    assert torch.equal(state, torch.get_rng_state())  # the caller's RNG is left alone

    assert again.identity == plain.identity
    assert plain.identity.weights.startswith("sha256:") and len(plain.identity.weights) == 71
    assert plain.identity.architecture == "HTSAT-tiny+transformer" and plain.identity.dim == 512
    waves = [prepare(p) for p in clips[:2]]
    np.testing.assert_array_equal(again.embed_waveforms(waves), plain.embed_waveforms(waves))
    np.testing.assert_array_equal(again.embed_texts(TEXTS), plain.embed_texts(TEXTS))

    other = random_encoder("clap-tiny-random", fusion=False, seed=1, device="cpu")
    assert other.identity.weights != plain.identity.weights


@pytest.mark.slow
def test_waveform_checks(plain):
    with pytest.raises(ValueError, match="window longer audio"):
        plain.embed_waveforms([np.zeros(480_001, np.float32)])
    with pytest.raises(ValueError):
        plain.embed_waveforms([np.zeros((2, 1000), np.float32)])
    with pytest.raises(ValueError):
        plain.embed_waveforms([np.zeros(0, np.float32)])
    assert plain.embed_waveforms([]).shape == (0, 512)
    assert plain.embed_texts([]).shape == (0, 512)


def test_checkpoint_hash_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "weights.bin"
    path.write_bytes(b"abc" * 1000)
    expected = "sha256:" + hashlib.sha256(b"abc" * 1000).hexdigest()
    assert checkpoint_sha256(path) == expected
    assert json.loads((tmp_path / "cache" / "sha256.json").read_text())[str(path)]["sha256"] == expected

    def no_hashing(*args):
        raise AssertionError("rehashed a file whose size and mtime did not change")

    monkeypatch.setattr(checkpoint, "file_sha256", no_hashing)
    assert checkpoint_sha256(path) == expected
    monkeypatch.undo()
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path / "cache"))

    path.write_bytes(b"abd" * 1000)
    os.utime(path, ns=(1, 1))
    assert checkpoint_sha256(path) == "sha256:" + hashlib.sha256(b"abd" * 1000).hexdigest()


NO_NETWORK = """
import json, socket, sys, time
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network disabled by test")
socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = lambda self, *a: refuse(*a)
start = time.monotonic()
{before}
from proto_index.embed.registry import load_encoder
encoder = load_encoder("clap-tiny-random")
text = encoder.embed_texts(["a dog"])
print(json.dumps({{"attempts": attempts, "seconds": time.monotonic() - start, "shape": text.shape}}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("before", ["", "import transformers  # imported before, with no offline flag"])
def test_no_network_is_attempted(tmp_path, before):
    """laion_clap's import-time tokenizer downloads are short-circuited, even after transformers loaded."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_HOME=str(tmp_path / "hf"), PROTO_INDEX_CACHE=str(tmp_path / "cache"))
    script = textwrap.dedent(NO_NETWORK.format(before=before))
    # a retrying download would hang for minutes: the timeout catches it without timing the run
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["attempts"] == []
    assert report["shape"] == [1, 512]


def test_a_file_rewritten_with_its_old_size_and_mtime_is_hashed_again(tmp_path, monkeypatch):
    """The remembered hash also keys on inode and ctime, which a rewrite cannot set back."""
    monkeypatch.setenv("PROTO_INDEX_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "weights.bin"
    path.write_bytes(b"abc" * 1000)
    before = path.stat()
    assert checkpoint_sha256(path) == "sha256:" + hashlib.sha256(b"abc" * 1000).hexdigest()

    replacement = tmp_path / "other.bin"
    replacement.write_bytes(b"xyz" * 1000)  # same size
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
    os.replace(replacement, path)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert checkpoint_sha256(path) == "sha256:" + hashlib.sha256(b"xyz" * 1000).hexdigest()
