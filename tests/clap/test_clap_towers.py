"""proto_index.clap's own HTSAT and RoBERTa against transformers' ClapAudioModel and ClapTextModel
(the reference, used by tests only): same state-dict names and shapes, the same pooled outputs from
the same weights; the RoBERTa tokenizer against transformers' RobertaTokenizer; and a model that runs
without importing transformers."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from proto_index.clap import config  # noqa: E402
from proto_index.clap.config import ClapConfig  # noqa: E402
from proto_index.clap.htsat import AudioModel  # noqa: E402
from proto_index.clap.roberta import RobertaText  # noqa: E402

TOLERANCE = 1e-5
"""float32 max abs difference of pooled outputs (measured: HTSAT 1.3e-6, RoBERTa 0)."""


def hf_audio_config(cfg: ClapConfig):
    a = cfg.audio
    return transformers.ClapAudioConfig(
        window_size=a.window, num_mel_bins=a.mel_bins, spec_size=a.spec_size, patch_size=4, patch_stride=(4, 4),
        num_classes=a.classes, hidden_size=a.out_dim, projection_dim=cfg.joint_dim, depths=list(a.depths),
        num_attention_heads=list(a.heads), enable_fusion=a.fusion, fusion_type="aff_2d" if a.fusion else None,
        patch_embeds_hidden_size=a.width, mlp_ratio=a.mlp_ratio, drop_path_rate=0.0, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, projection_hidden_act="relu", layer_norm_eps=1e-5, hidden_act="gelu")


def hf_text_config(cfg: ClapConfig):
    t = cfg.text
    return transformers.ClapTextConfig(
        vocab_size=t.vocab_size, hidden_size=t.width, num_hidden_layers=t.layers, num_attention_heads=t.heads,
        intermediate_size=4 * t.width, max_position_embeddings=t.max_positions, type_vocab_size=1,
        layer_norm_eps=t.layer_norm_eps, projection_dim=cfg.joint_dim, pad_token_id=t.pad_id,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, projection_hidden_act="relu", hidden_act="gelu")


def seeded_state(module: torch.nn.Module, seed: int = 1) -> dict[str, torch.Tensor]:
    """``module``'s state with every float entry moved off its initial value (norms start at 1,
    biases and relative-position tables at 0: a swapped or skipped one would not show otherwise)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, value in module.state_dict().items():
        if value.is_floating_point():
            noise = 0.05 * torch.randn(value.shape, generator=g)
            value = value.abs() + noise.abs() + 0.5 if name.endswith("running_var") else value + noise
        state[name] = value
    return state


def pair(hf_cls, ours_cls, hf_cfg, our_cfg):
    """transformers' tower and ours, both holding the same seeded weights, loaded strictly each way."""
    torch.manual_seed(0)
    reference = hf_cls(hf_cfg).eval()
    ours = ours_cls(our_cfg).eval()
    state = seeded_state(reference)
    reference.load_state_dict(state, strict=True)
    ours.load_state_dict(state, strict=True)
    reference.load_state_dict(ours.state_dict(), strict=True)  # and back: the same key set both ways
    return reference, ours


def features(n: int, channels: int, seed: int = 5) -> torch.Tensor:
    """Log-mel-like inputs (dB around -40) whose clips differ in content: tones at other bands, noise."""
    g = torch.Generator().manual_seed(seed)
    x = -40 + 10 * torch.randn(n, channels, 1001, 64, generator=g)
    for i in range(n):
        x[i, :, :, 4 + 9 * i] += 30  # a strong band, a different one per clip
        x[i, :, 200 * i:200 * i + 150] -= 20  # and a quiet stretch somewhere else
    return x


@pytest.mark.model  # against transformers' models
@pytest.mark.parametrize("size,n", [("tiny", 2), pytest.param("base", 1, marks=pytest.mark.slow)])
def test_htsat_matches_transformers(size, n):
    cfg = config(size)
    reference, ours = pair(transformers.ClapAudioModel, AudioModel, hf_audio_config(cfg), cfg.audio)
    x = features(n, 1)
    with torch.inference_mode():
        expected = reference(input_features=x).pooler_output
        got = ours(input_features=x).pooler_output
    assert got.shape == (n, cfg.audio.out_dim)
    assert float((got - expected).abs().max()) <= TOLERANCE
    if n > 1:
        assert float((got[0] - got[1]).abs().max()) > 1e-2  # the clips do give different outputs


@pytest.mark.model
def test_fusion_htsat_matches_transformers_with_and_without_longer_clips():
    """model.py's case (the global channel only, no clip longer) and the local-crop fusion of longer clips."""
    cfg = config("tiny", fusion=True)
    reference, ours = pair(transformers.ClapAudioModel, AudioModel, hf_audio_config(cfg), cfg.audio)
    x = features(2, 4)
    none_longer, longer = torch.zeros(2, 1, dtype=torch.bool), torch.tensor([[False], [True]])
    with torch.inference_mode():
        expected_global = reference(input_features=x[:, :1], is_longer=none_longer).pooler_output
        global_only = ours(input_features=x[:, :1], is_longer=none_longer).pooler_output
        expected = reference(input_features=x, is_longer=longer).pooler_output
        got = ours(input_features=x, is_longer=longer).pooler_output
    assert float((global_only - expected_global).abs().max()) <= TOLERANCE
    assert float((got - expected).abs().max()) <= TOLERANCE
    assert float((global_only[0] - global_only[1]).abs().max()) > 1e-2
    assert float((got[0] - global_only[0]).abs().max()) == 0.0  # a clip not marked longer reads channel 0 only
    assert float((got[1] - global_only[1]).abs().max()) > 1e-3  # a longer one fuses its crops in
    with pytest.raises(ValueError, match="need 4 channels"):
        ours(input_features=x[:, :1], is_longer=longer)


@pytest.mark.parametrize("size", ["tiny", "base"])
@pytest.mark.parametrize("fusion", [False, True])
def test_released_shapes_have_transformers_names_and_shapes(size, fusion):
    cfg = config(size, fusion=fusion)
    with torch.device("meta"):
        expected = {k: v.shape for k, v in transformers.ClapAudioModel(hf_audio_config(cfg)).state_dict().items()}
        got = {k: v.shape for k, v in AudioModel(cfg.audio).state_dict().items()}
        if size == "tiny" and not fusion:
            reference = transformers.ClapTextModel(hf_text_config(cfg))
            expected_text = {k: v.shape for k, v in reference.state_dict().items()}
            got_text = {k: v.shape for k, v in RobertaText(cfg.text).state_dict().items()}
            assert got_text == expected_text
    assert got == expected


def roberta_rows(used=(77, 3, 20, 51), vocab=1000, seed=3):
    """Rows as roberta-base's tokenizer pads them (<s> … </s>, then <pad> = 1), with their masks."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.ones(len(used), 77, dtype=torch.long)
    mask = torch.zeros(len(used), 77, dtype=torch.long)
    for i, n in enumerate(used):
        ids[i, 0], ids[i, n - 1] = 0, 2
        ids[i, 1:n - 1] = torch.randint(4, vocab, (n - 2,), generator=g)
        mask[i, :n] = 1
    return ids, mask


@pytest.mark.model
def test_roberta_matches_transformers():
    cfg = config("tiny")
    cfg = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, layers=2, vocab_size=1000))
    reference, ours = pair(transformers.ClapTextModel, RobertaText, hf_text_config(cfg), cfg.text)
    ids, mask = roberta_rows()
    with torch.inference_mode():
        expected = reference(input_ids=ids, attention_mask=mask).pooler_output
        got = ours(input_ids=ids, attention_mask=mask).pooler_output
        unmasked = ours(input_ids=ids).pooler_output  # padding read as tokens: another vector
    assert float((got - expected).abs().max()) <= TOLERANCE
    assert float((unmasked[1] - got[1]).abs().max()) > 1e-3
    assert float((unmasked[0] - got[0]).abs().max()) == 0.0  # a full row has nothing to mask


def test_roberta_positions_start_after_the_padding_index():
    ours = RobertaText(dataclasses.replace(config("tiny").text, layers=1, vocab_size=16))
    ids = torch.tensor([[0, 7, 9, 2, 1, 1]])
    assert ours.positions(ids).tolist() == [[2, 3, 4, 5, 1, 1]]


TEXTS = ["a dog barking", "", " leading space", "   three leading", "rain\ton a\nroof",
         "héllo wörld ☔ 日本語 🐕", "dog " * 100, "x" * 500, "trailing  ", "don't it's 123 4567",
         "\u00a0nbsp\u2003em", "a <mask> dog", "<s>dog</s>", "<pad><unk>", "ÿ\x00\x7f control"]


def test_tokenizer_gives_robertas_ids_and_masks(tmp_path):
    from roberta_files import write_tokenizer

    from proto_index.embed.released import roberta_tokenizer, roberta_tokens

    folder = write_tokenizer(tmp_path / "tok")
    reference = transformers.RobertaTokenizer.from_pretrained(str(folder), local_files_only=True)
    expected = reference(TEXTS, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
    tokenize = roberta_tokens(folder)  # what the encoder calls (no model needed)
    ids, mask = tokenize(TEXTS)
    assert ids.dtype == mask.dtype == torch.long and ids.shape == (len(TEXTS), 77)
    assert torch.equal(ids, expected["input_ids"]) and torch.equal(mask, expected["attention_mask"])
    assert ids[TEXTS.index("dog " * 100)].tolist()[-1] == 2 and mask[1].sum() == 2  # cut to 77 with </s>; "" -> <s></s>
    assert roberta_tokenizer(folder).encode("dog").ids == reference("dog")["input_ids"] + [1] * 73
    assert tokenize([])[0].shape == (0, 77)


def test_tokenizer_files_that_are_no_vocabulary_are_refused(tmp_path):
    from proto_index.embed.released import roberta_tokenizer
    from proto_index.errors import ModelError

    (tmp_path / "vocab.json").write_text("not json")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(ModelError, match="cannot read the RoBERTa tokenizer files"):
        roberta_tokenizer(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "<s>": 1}))
    with pytest.raises(ModelError, match="lacks </s>, <pad>"):
        roberta_tokenizer(tmp_path)


@pytest.mark.model  # a fresh interpreter builds and runs a tower
def test_building_and_running_a_model_does_not_import_transformers(tmp_path):
    from roberta_files import write_tokenizer

    folder = write_tokenizer(tmp_path / "tok")
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from proto_index.clap import config
        from proto_index.clap.model import ClapModel
        from proto_index.embed.released import roberta_tokenizer

        model = ClapModel(config("tiny", fusion=True))
        audio = model.embed_audio([np.sin(np.arange(48_000, dtype=np.float32) / 7)])
        rows = roberta_tokenizer({str(folder)!r}).encode_batch(["a dog barking"])
        import torch
        text = model.embed_text(torch.tensor([r.ids for r in rows]), torch.tensor([r.attention_mask for r in rows]))
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "transformers")
        print(tuple(audio.shape), tuple(text.shape), loaded)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 512) (1, 512) []"
