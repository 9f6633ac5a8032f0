"""proto_index.clap (the project's own CLAP inference) against laion_clap's own code, weight for weight.

laion_clap appears only here: the slow tests build its models from seeds (as the project's
``clap-tiny-random`` models are built), load the same weights into proto_index.clap, and compare raw
embedding vectors (random-weight embeddings are nearly collinear, so no retrieval is judged).
"""
import copy
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from proto_index.clap import config  # noqa: E402
from proto_index.clap.checkpoint import from_laion, infer_config, load, read_state, to_laion  # noqa: E402
from proto_index.clap.features import Features, mel_filter_bank, repeat_pad  # noqa: E402
from proto_index.errors import ModelError  # noqa: E402
from laion_reference import laion, laion_audio, laion_model, laion_text, laion_tokens  # noqa: E402

TOLERANCE = 1e-5
LENGTHS = (480_000, 300_000, 72_000, 4_801, 1_000)  # 10 s, 6.25 s, 1.5 s, 0.1 s, 21 ms at 48 kHz
TEXTS = ["a dog barking", "rain on a tin roof", "", "sirens " * 40]


def clips(lengths=LENGTHS):
    rng = np.random.default_rng(7)
    out = []
    for i, n in enumerate(lengths):
        t = np.arange(n) / 48_000
        out.append((0.5 * np.sin(2 * np.pi * (200 + 300 * i) * t * (1 + t)) + rng.normal(0, 0.1, n)).astype(np.float32))
    return out


def max_diff(a, b) -> float:
    return float((torch.as_tensor(a) - torch.as_tensor(b)).abs().max())


# ---- laion_clap's side (slow: builds its towers) ------------------------------------------------------


def transformer_tokens(texts=TEXTS):
    return laion_tokens(texts)


def roberta_tokens(n=4, length=77, seed=3):
    """Token rows as roberta-base's tokenizer pads them: <s> … </s> then <pad> (1), with a mask."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((n, length), 1, dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.long)
    for i, used in enumerate(torch.randint(3, length + 1, (n,), generator=g).tolist()):
        ids[i, 0], ids[i, used - 1] = 0, 2
        ids[i, 1:used - 1] = torch.randint(4, 50_000, (used - 2,), generator=g)
        mask[i, :used] = 1
    return ids, mask


def perturbed(model, seed=11):
    """A copy with every weight, bias, norm and batch-norm statistic moved off its initial constant, so
    that a mapping which swapped or skipped one (biases start at 0, norms at 1) shows."""
    model = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point() or "extractor" in name or name.endswith("attn_mask"):
                continue
            noise = 0.05 * torch.randn(tensor.shape, generator=g)
            tensor.copy_(tensor.abs() + noise.abs() + 0.5 if name.endswith("running_var") else tensor + noise)
    return model


def ours_from(laion):
    from proto_index.clap.checkpoint import fit
    from proto_index.clap.model import ClapModel

    state = from_laion(laion.state_dict())
    model = ClapModel(infer_config(state))
    fit(model, state)
    return model


@pytest.fixture(scope="module")
def tiny_plain():
    return laion_model("transformer", fusion=False)


@pytest.fixture(scope="module")
def tiny_fused():
    return laion_model("transformer", fusion=True)


@pytest.fixture(scope="module")
def ours_plain(tiny_plain):
    return ours_from(tiny_plain)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny_plain", "tiny_fused"])
@pytest.mark.parametrize("perturb", [False, True], ids=["seeded", "perturbed"])
def test_tiny_matches_laion_clap(request, which, perturb):
    reference = request.getfixturevalue(which)
    if perturb:
        reference = perturbed(reference)
    ours = request.getfixturevalue("ours_plain") if which == "tiny_plain" and not perturb else ours_from(reference)
    waves = clips()

    audio_diff = max_diff(ours.embed_audio(waves), laion_audio(reference, waves))
    tokens = transformer_tokens()
    ours_text = ours.embed_text(tokens)
    text_diff = max_diff(ours_text, laion_text(reference, tokens))
    assert max_diff(ours_text[0], ours_text[1]) > 1e-4  # the texts do give different embeddings

    print(f"\n{which} {'perturbed' if perturb else 'seeded'}: audio {audio_diff:.3g}, text {text_diff:.3g}")
    assert ours.cfg.architecture == f"HTSAT-tiny+transformer{'-fusion' if 'fused' in which else ''}"
    assert audio_diff <= TOLERANCE and text_diff <= TOLERANCE


@pytest.mark.slow
def test_htsat_base_matches_laion_clap():
    reference = perturbed(laion_model("transformer", fusion=False, audio="HTSAT-base"))
    ours = ours_from(reference)
    waves = clips(LENGTHS[:3])

    diff = max_diff(ours.embed_audio(waves), laion_audio(reference, waves))

    print(f"\nHTSAT-base: audio {diff:.3g}")
    assert ours.cfg.audio.size == "base" and ours.cfg.audio.out_dim == 1024
    assert diff <= TOLERANCE


@pytest.mark.slow
def test_released_fusion_roberta_checkpoint_matches_laion_clap(tmp_path):
    """The paper's model's layout (630k-audioset-fusion-best.pt: HTSAT-tiny, fusion, RoBERTa), read
    from a file as released: ``module.`` prefixes, optimizer state with numpy numbers, stale buffers."""
    reference = perturbed(laion_model("roberta", fusion=True, seed=5))
    state = {f"module.{k}": v for k, v in reference.state_dict().items()}
    state["module.text_branch.embeddings.position_ids"] = torch.arange(514)[None]  # as older transformers saved
    path = tmp_path / "630k-audioset-fusion-best.pt"
    torch.save({"epoch": 45, "state_dict": state, "optimizer": {"lr": np.float64(1e-4)}}, path)
    del state

    ours = load(path)

    assert ours.cfg == config("tiny", fusion=True, text="roberta")
    waves = clips(LENGTHS[1:4])
    audio_diff = max_diff(ours.embed_audio(waves), laion_audio(reference, waves))
    ids, mask = roberta_tokens()
    text_diff = max_diff(ours.embed_text(ids, mask), laion_text(reference, ids, mask))
    print(f"\nfusion+roberta from file: audio {audio_diff:.3g}, text {text_diff:.3g}")
    assert audio_diff <= TOLERANCE and text_diff <= TOLERANCE

    # the same weights in Hugging Face's layout (laion/clap-htsat-fused: config.json + model.safetensors)
    from safetensors.torch import save_file

    folder = tmp_path / "clap-htsat-fused"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in ours.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "clap", "projection_dim": 512,
        "audio_config": {"enable_fusion": True, "patch_embeds_hidden_size": 96, "fusion_type": None},
        "text_config": {"layer_norm_eps": 1e-5, "vocab_size": 50265, "max_position_embeddings": 514}}))
    again = load(folder)
    assert again.cfg == ours.cfg
    assert torch.equal(again.embed_audio(waves), ours.embed_audio(waves))
    assert torch.equal(again.embed_text(ids, mask), ours.embed_text(ids, mask))


@pytest.mark.slow
def test_features_match_laion_clap(tiny_plain):
    """Our log-mel against HTSAT's own front end (torchlibrosa, non-fusion) and laion_clap's fusion
    input (torchaudio), in dB; the embeddings' tolerance is what counts, this shows where they part."""
    _, data = laion()
    waves = clips()
    padded = repeat_pad([torch.from_numpy(w) for w in waves], 480_000)
    with torch.no_grad():
        theirs = tiny_plain.audio_branch.logmel_extractor(tiny_plain.audio_branch.spectrogram_extractor(padded))
    ours = Features(config("tiny").audio)([torch.from_numpy(w) for w in waves])
    assert ours.shape == theirs.shape == (len(waves), 1, 1001, 64)
    assert max_diff(ours, theirs) < 1e-2
    cfg = {"sample_rate": 48000, "window_size": 1024, "hop_size": 480, "fmin": 50, "fmax": 14000, "mel_bins": 64}
    fused = torch.stack([data.get_audio_features({}, torch.from_numpy(w), 480_000, data_truncating="fusion",
                                                 data_filling="repeatpad", audio_cfg=cfg)["mel_fusion"] for w in waves])
    ours_fused = Features(config("tiny", fusion=True).audio)([torch.from_numpy(w) for w in waves])
    assert ours_fused.shape == fused.shape == (len(waves), 4, 1001, 64)
    assert max_diff(ours_fused, fused) < 1e-2
    np.testing.assert_array_equal(padded.numpy(), torch.stack(
        [data.get_audio_features({}, torch.from_numpy(w), 480_000, data_truncating="rand_trunc",
                                 data_filling="repeatpad", audio_cfg=cfg)["waveform"] for w in waves]).numpy())


@pytest.mark.slow
def test_threads_give_the_sequential_vectors(ours_plain):
    batches = [clips(LENGTHS[i:i + 2]) for i in range(4)]
    tokens = transformer_tokens()
    sequential = [ours_plain.embed_audio(b) for b in batches]
    sequential_text = ours_plain.embed_text(tokens)
    results, errors = {}, []

    def work(i):
        try:
            for _ in range(2):
                results[i] = (ours_plain.embed_audio(batches[i]), ours_plain.embed_text(tokens))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert not errors
    for i, expected in enumerate(sequential):
        assert torch.equal(results[i][0], expected)
        assert torch.equal(results[i][1], sequential_text)


@pytest.mark.slow
# ---- quick tests: no laion_clap, no model -----------------------------------------------------------


def tiny_laion_state():
    """A few entries of each kind laion_clap's checkpoints hold, with small shapes."""
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(shape, generator=g)

    block = "audio_branch.layers.0.blocks.1."
    return {
        "audio_branch.bn0.weight": r(4), "audio_branch.bn0.running_var": r(4),
        "audio_branch.patch_embed.proj.weight": r(96, 1, 4, 4),
        block + "norm1.weight": r(6), block + "attn.qkv.weight": r(18, 6), block + "attn.qkv.bias": r(18),
        block + "attn.proj.weight": r(6, 6), block + "attn.relative_position_bias_table": r(3, 2),
        block + "attn.relative_position_index": torch.arange(4).view(2, 2),
        block + "mlp.fc1.weight": r(8, 6), block + "mlp.fc2.bias": r(6), block + "norm2.bias": r(6),
        "audio_branch.layers.0.downsample.reduction.weight": r(4, 8), "audio_branch.norm.weight": r(6),
        "audio_projection.0.weight": r(5, 6), "audio_projection.2.bias": r(5),
        "text_branch.resblocks.3.attn.in_proj_weight": r(9, 3), "text_branch.resblocks.3.attn.out_proj.bias": r(3),
        "text_branch.resblocks.3.ln_1.weight": r(3), "text_branch.resblocks.3.mlp.c_fc.weight": r(12, 3),
        "text_branch.resblocks.3.mlp.c_proj.weight": r(3, 12), "text_branch.resblocks.3.ln_2.bias": r(3),
        "token_embedding.weight": r(10, 3), "positional_embedding": r(7, 3), "ln_final.weight": r(3),
        "text_projection.0.weight": r(5, 3), "text_projection.2.weight": r(5, 5), "logit_scale_a": r(),
    }


DROPPED = {"audio_transform.sequential.0.weight", "text_transform.sequential.3.bias", "audio_branch.head.weight",
           "audio_branch.tscam_conv.bias", "audio_branch.spectrogram_extractor.stft.conv_real.weight",
           "audio_branch.layers.0.blocks.1.attn_mask", "text_branch.embeddings.position_ids"}


def test_key_mapping_round_trip():
    original = tiny_laion_state()
    mapped = from_laion({**original, **{k: torch.zeros(1) for k in DROPPED}})

    assert not set(mapped) & DROPPED
    block = "audio_model.audio_encoder.layers.0.blocks.1."
    q, k, v = original["audio_branch.layers.0.blocks.1.attn.qkv.weight"].chunk(3)
    assert torch.equal(mapped[block + "attention.self.query.weight"], q)
    assert torch.equal(mapped[block + "attention.self.value.weight"], v)
    assert torch.equal(mapped["audio_model.audio_encoder.batch_norm.weight"], original["audio_branch.bn0.weight"])
    assert {block + "layernorm_before.weight", block + "attention.output.dense.weight",
            block + "intermediate.dense.weight", block + "output.dense.bias", block + "layernorm_after.bias",
            "audio_projection.linear1.weight", "audio_projection.linear2.bias",
            "text_model.blocks.3.qkv.weight", "text_model.blocks.3.out.bias", "text_model.blocks.3.norm_attention.weight",
            "text_model.blocks.3.fc_in.weight", "text_model.blocks.3.fc_out.weight", "text_model.blocks.3.norm_mlp.bias",
            "text_model.token_embedding.weight", "text_model.positional_embedding", "text_model.final_norm.weight",
            "text_projection.linear1.weight", "logit_scale_a"} <= set(mapped)
    assert len(mapped) == len(original) + 4  # the two qkv tensors became three each

    back = to_laion(mapped)
    assert set(back) == set(original)
    for name, tensor in original.items():
        assert torch.equal(back[name], tensor), name


def test_infer_config_reads_the_architecture():
    state = from_laion(tiny_laion_state())
    assert infer_config(state) == config("tiny", text="transformer")
    state["audio_model.audio_encoder.patch_embed.fusion_model.local_att.0.weight"] = torch.zeros(1)
    state["audio_model.audio_encoder.patch_embed.proj.weight"] = torch.zeros(128, 1, 4, 4)
    assert infer_config(state) == config("base", fusion=True, text="transformer")


class RunsCode:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Payload:
    """Unpickling this would create ``marker``: the refusal must come before."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_objects_are_refused(tmp_path):
    """A callable pickled in the state dict or beside it is refused, and named, before it runs."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(2), "x": Payload(marker)}}, path)
    with pytest.raises(ModelError, match=r"refused checkpoint .*pickles a Python object \(io\.open\)"):
        read_state(path)
    assert not marker.exists()

    torch.save({"state_dict": {"module.w": torch.ones(2)}, "payload": RunsCode(marker)}, path)
    with pytest.raises(ModelError, match=r"refused checkpoint .*pickles a Python object \((posix|os)\.system\)"):
        read_state(path)
    assert not marker.exists()

    torch.save({"state_dict": {"w": torch.zeros(2), "note": "not a tensor"}}, tmp_path / "str.pt")
    with pytest.raises(ModelError, match="holds a str .*'note'.*not a tensor"):
        read_state(tmp_path / "str.pt")

    (tmp_path / "junk.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        read_state(tmp_path / "junk.pt")


def test_released_layout_and_safetensors_are_read(tmp_path):
    from safetensors.torch import save_file

    state = tiny_laion_state()
    # laion_clap's snapshots hold optimizer state whose learning rates and steps are numpy numbers
    torch.save({"epoch": 45, "name": "run", "state_dict": {f"module.{k}": v for k, v in state.items()},
                "optimizer": {"state": {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros(3)}},
                              "param_groups": [{"lr": np.float64(1e-4), "betas": (0.9, 0.99), "params": [0],
                                                "initial_lr": np.float64(1e-4), "step": np.int64(3)},
                                               {"lr": np.float32(0.5), "params": []}]}},
               tmp_path / "released.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "bare.safetensors"))

    for name in ("released.pt", "bare.safetensors"):
        read = read_state(tmp_path / name)
        assert set(read) == set(state) and all(torch.equal(read[k], v) for k, v in state.items())


def test_published_hash_is_checked(tmp_path):
    path = tmp_path / "630k-audioset-best.pt"
    torch.save({"state_dict": tiny_laion_state()}, path)
    with pytest.raises(ModelError, match="SHA-256 .* not the expected 8053c977"):
        load(path)


@pytest.mark.model  # against librosa and torchaudio: over a minute on a busy 2-core machine
def test_mel_filter_banks_match_the_libraries():
    librosa = pytest.importorskip("librosa")
    slaney = mel_filter_bank(48_000, 1024, 64, 50, 14_000, scale="slaney")
    np.testing.assert_array_equal(slaney, librosa.filters.mel(sr=48_000, n_fft=1024, n_mels=64, fmin=50,
                                                              fmax=14_000).T)
    htk = mel_filter_bank(48_000, 1024, 64, 50, 14_000, scale="htk")
    reference = librosa.filters.mel(sr=48_000, n_fft=1024, n_mels=64, fmin=50, fmax=14_000, htk=True, norm=None).T
    np.testing.assert_allclose(htk, reference, rtol=0, atol=1e-6)


def test_repeat_pad_is_laion_claps_repeatpad():
    waves = [torch.arange(1, n + 1, dtype=torch.float32) for n in (7, 10, 3, 4)]
    out = repeat_pad(waves, 10)
    for w, row in zip(waves, out):
        expected = torch.cat([w.repeat(10 // len(w)), torch.zeros(10 - 10 // len(w) * len(w))])
        assert torch.equal(row, expected)
    with pytest.raises(ValueError):
        repeat_pad([torch.zeros(11)], 10)


def test_features_are_batched_and_leave_the_process_alone():
    """Features of a batch equal those of each clip alone; computing them (and importing the package)
    changes no environment variable and no warnings filter."""
    script = textwrap.dedent("""
        import os, warnings
        import numpy as np, torch
        before_env, before_filters = dict(os.environ), list(warnings.filters)
        from proto_index.clap import checkpoint, config, features, model
        f = features.Features(config("tiny", fusion=True).audio)
        waves = [torch.from_numpy(np.random.default_rng(i).normal(size=n).astype(np.float32))
                 for i, n in enumerate((480000, 20000, 999))]
        batch = f(waves)
        alone = torch.cat([f([w]) for w in waves])
        assert batch.shape == (3, 4, 1001, 64), batch.shape
        assert (batch - alone).abs().max() < 1e-3, (batch - alone).abs().max()
        assert dict(os.environ) == before_env
        assert list(warnings.filters) == before_filters
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]

