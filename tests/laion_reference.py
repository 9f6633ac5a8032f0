"""laion_clap's own code as the reference the project's CLAP module is checked against (tests only).

The product never imports laion_clap. Here it builds models from a seed with its own factory
(``create_model``), prepares audio with its own ``get_audio_features`` and tokenises with its own BPE.
Its RoBERTa text tower would download roberta-base's weights (``RobertaModel.from_pretrained``): the
name is swapped, in laion_clap's model module and only while a model is built, for a factory that
builds roberta-base's architecture from its config.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading

import pytest
import torch

ROBERTA_BASE = {"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1, "layer_norm_eps": 1e-5}
"""What roberta-base's config sets apart from RobertaConfig's defaults."""
AUDIO_CFG = {"sample_rate": 48000, "window_size": 1024, "hop_size": 480, "fmin": 50, "fmax": 14000, "mel_bins": 64}
"""What laion_clap's get_audio_features reads of a model's audio config."""
_lock = threading.Lock()


def laion():
    """laion_clap's ``clap_module`` and ``training.data`` (the test is skipped where laion_clap is not installed)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # its data module builds Hub tokenizers at import
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    pytest.importorskip("laion_clap")
    import clap_module  # laion_clap puts its folder on sys.path: the factory lives in top-level `clap_module`
    from laion_clap.training import data

    return clap_module, data


@contextlib.contextmanager
def _roberta_from_config():
    from transformers import RobertaConfig

    module = sys.modules["clap_module.model"]
    original = module.RobertaModel

    class Roberta:
        @staticmethod
        def from_pretrained(name, *args, **kwargs):
            assert name == "roberta-base", name
            return original(RobertaConfig(**ROBERTA_BASE))

    module.RobertaModel = Roberta
    try:
        yield
    finally:
        module.RobertaModel = original


def laion_model(tmodel: str, *, fusion: bool, audio: str = "HTSAT-tiny", seed: int = 0):
    """laion_clap's CLAP (``audio`` tower, ``tmodel`` text tower) drawn from ``seed`` by its own factory,
    with laion_clap's config of it as ``model_cfg``."""
    clap_module, _ = laion()
    with _lock, _roberta_from_config(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, model_cfg = clap_module.create_model(audio, tmodel, precision="fp32", device="cpu", enable_fusion=fusion,
                                                    **({"fusion_type": "aff_2d"} if fusion else {}))
    model.model_cfg = model_cfg  # laion_clap's config of it, as CLAP_Module keeps it
    return model.eval()


def laion_audio(model, waves) -> torch.Tensor:
    """laion_clap's audio embeddings of 48 kHz clips of at most 10 s (its own feature path)."""
    _, data = laion()
    truncating = "fusion" if model.enable_fusion else "rand_trunc"
    with torch.no_grad():
        features = [data.get_audio_features({}, torch.as_tensor(w, dtype=torch.float32), 480_000,
                                            data_truncating=truncating, data_filling="repeatpad",
                                            audio_cfg=AUDIO_CFG) for w in waves]
        return model.get_audio_embedding(features)


def laion_text(model, ids, mask=None) -> torch.Tensor:
    """laion_clap's text embeddings of token rows."""
    import torch.nn.functional as F

    with torch.no_grad():
        if model.text_branch_type == "transformer":
            return F.normalize(model.encode_text(ids, device="cpu"), dim=-1)
        return model.get_text_embedding({"input_ids": ids, "attention_mask": mask})


def laion_tokens(texts) -> torch.Tensor:
    """laion_clap's own BPE ids (77 per row) for its ``transformer`` tower."""
    clap_module, _ = laion()
    return clap_module.tokenize(list(texts), context_length=77)


def encoder_state(encoder) -> dict:
    """The whole state of a proto-index CLAP encoder's model (its text side drawn or read first)."""
    encoder.model.build_text()
    return encoder.model.state_dict()


def laion_clap_module(state: dict, *, fusion: bool, tmodel: str = "transformer"):
    """laion_clap's ``CLAP_Module`` (its file and array entry points) around its own model holding
    ``state`` (the project's names), built without ``CLAP_Module.__init__``, which downloads roberta-base."""
    from proto_index.clap.checkpoint import to_laion

    clap_module, _ = laion()
    from laion_clap.hook import CLAP_Module

    with _lock, _roberta_from_config():
        model, model_cfg = clap_module.create_model("HTSAT-tiny", tmodel, precision="fp32", device="cpu",
                                                    enable_fusion=fusion,
                                                    **({"fusion_type": "aff_2d"} if fusion else {}))
    model.load_state_dict(to_laion(state), strict=False)  # what to_laion leaves out is unused or rebuilt
    module = object.__new__(CLAP_Module)
    torch.nn.Module.__init__(module)
    module.model = model.eval()
    module.model_cfg = model_cfg
    module.enable_fusion = fusion
    return module
