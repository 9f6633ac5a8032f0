"""--precision: bf16 vectors stay within cosine 0.9999 of float32 ones, with the same weights and identity."""
import numpy as np
import pytest
from cli_store import cli

from proto_index.embed.clap import PRECISIONS, check_precision
from proto_index.embed.registry import load_encoder, register_model
from proto_index.errors import ModelError

torch = pytest.importorskip("torch")


def _clips() -> list[np.ndarray]:
    """Generated 48 kHz clips: chirps in noise, a short one (repeat-padded), faint noise, silence, loud noise."""
    rng = np.random.default_rng(0)
    t = np.arange(480_000) / 48_000
    clips = [(0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t * (1 + 0.05 * t)) + rng.normal(0, 0.05, t.size))
             for i in range(4)]
    clips += [clips[0][:100_000], rng.normal(0, 1e-4, t.size), np.zeros(48_000),
              np.clip(rng.normal(0, 0.7, t.size), -1, 1)]
    return [np.asarray(c, np.float32) for c in clips]


def _cosines(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", [False, True])
def test_bf16_embeddings_are_within_cosine_0_9999_of_float32(fusion):
    name = "clap-fusion-tiny-random" if fusion else "clap-tiny-random"
    fp32 = load_encoder(name, batch_size=3)
    bf16 = load_encoder(name, batch_size=3, precision="bf16")
    fp32.model.build_text()
    weights = {k: v.clone() for k, v in fp32.model.state_dict().items()}
    clips = _clips()

    a, b = fp32.embed_waveforms(clips), bf16.embed_waveforms(clips)

    assert bf16.identity == fp32.identity  # same weights, same store binding
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cos = _cosines(a, b)
    print(f"\n{name}: bf16 vs fp32 cosine min {cos.min():.6f}, max abs difference {np.abs(a - b).max():.2g}")
    assert cos.min() >= 0.9999
    # ... and what tells clips apart survives: the vectors agree after removing their common part
    centred = _cosines(a - a.mean(0), b - a.mean(0))
    print(f"{name}: centred cosine min {centred.min():.4f}")
    assert centred.min() >= 0.99
    assert not np.array_equal(a, b)  # bf16 did run
    # text goes through the same precision, within the same bound
    texts = ["a dog barking", "rain on a tin roof", "silence"]
    assert _cosines(fp32.embed_texts(texts), bf16.embed_texts(texts)).min() >= 0.9999
    # the float32 model and its weights are untouched by the bf16 one (same batch: GPU kernels vary with its size)
    np.testing.assert_array_equal(fp32.embed_waveforms(clips[:3]), a[:3])
    assert all(torch.equal(v, bf16.model.state_dict()[k]) for k, v in weights.items())


def test_precision_is_checked():
    assert PRECISIONS == ("fp32", "bf16")
    assert check_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ModelError, match="fp16 is not supported: .* overflows to NaN"):
        check_precision("fp16", "cuda:0")
    with pytest.raises(ModelError, match="unknown precision 'int8'"):
        load_encoder("fake-bands", precision="int8")


def test_registered_models_get_precision_only_when_asked(tmp_path):
    seen = []

    def factory(**kwargs):
        seen.append(kwargs.get("precision"))
        from fakes import BandEncoder

        return BandEncoder()

    register_model("fake-precision", factory, "records its precision")
    load_encoder("fake-precision")
    load_encoder("fake-precision", precision="bf16")
    assert seen == [None, "bf16"]


def test_cli_takes_precision_hop_and_workers(tmp_path):
    from audio_factory import write_wav

    store = tmp_path / "store"
    clip = write_wav(tmp_path / "in" / "long.wav", 25.0, 16000)
    cli("init", "--store", store, "--model", "fake-bands")
    out = cli("ingest", clip.parent, "--store", store, "--precision", "bf16", "--hop", "5", "--workers", "2", "--quiet")
    assert "added 1 files (4 windows)" in out.stdout  # 0-10, 5-15, 10-20, 15-25
    bad = cli("ingest", clip.parent, "--store", store, "--precision", "int8", code=2)
    assert "int8" in bad.stderr
