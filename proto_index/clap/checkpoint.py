"""Reading CLAP weights safely and fitting them to a :class:`~proto_index.clap.model.ClapModel`.

Two layouts are read: laion_clap's (``630k-audioset-best.pt`` and the rest: ``{'state_dict':
{'module.audio_branch…': …}}``, a torch zip checkpoint) and Hugging Face's (``laion/clap-htsat-fused``
and ``-unfused``: a folder with ``config.json`` and ``model.safetensors``, or a ``.safetensors``
file). torch checkpoints are read with ``torch.load(weights_only=True)``: a file that pickles
anything beyond tensors, containers and numpy numbers (which released files hold in their optimizer
state) is refused before any of it runs. Released files whose SHA-256 is published are checked
against it.

laion_clap's names are mapped onto this package's (Hugging Face's ``ClapModel`` names): HTSAT's
fused ``qkv`` projection is split into query, key and value; the training-only parts
(``audio_transform``, ``text_transform``), the AudioSet head (``tscam_conv``, ``head``) and the
buffers a model rebuilds (shift masks) are dropped; HTSAT's mel filter bank, which laion_clap saves
as a weight, is checked against the one :mod:`proto_index.clap.features` computes.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
import torch

from proto_index.clap.config import RELEASED, AudioConfig, ClapConfig, TextConfig
from proto_index.clap.features import mel_filter_bank
from proto_index.clap.htsat import relative_position_index
from proto_index.errors import ModelError

if TYPE_CHECKING:
    from proto_index.clap.model import ClapModel

PUBLISHED_SHA256 = {
    "630k-audioset-best.pt": "8053c9775516af2f4902e1e8281e356cc1bf7a85e8b761908170767b77c3f037",
}
"""SHA-256 of released files as their Hugging Face Git LFS pointers publish them (lukewys/laion_clap).
Only hashes read from the publisher are listed; other files are loaded unchecked."""
PUBLISHED = "published"
"""``sha256=PUBLISHED``: check a file against :data:`PUBLISHED_SHA256` by its name, if listed."""

DROPPED = re.compile(r"^(audio_transform|text_transform)\.|^audio_branch\.(tscam_conv|head|spectrogram_extractor)\."
                     r"|\.attn_mask$|^text_branch\.embeddings\.position_ids$")
"""laion_clap entries that embeddings do not use (or that a model rebuilds)."""
DERIVED = re.compile(r"\.relative_position_index$|^text_model\.embeddings\.(position_ids|token_type_ids)$")
"""Buffers every model computes for itself: a file may omit them; where it holds them they must agree."""


def _numpy_globals() -> list:
    """The numpy types a released checkpoint's optimizer state pickles (learning rates as numpy
    floats): data only, nothing that runs code."""
    import numpy.core.multiarray as multiarray

    dtypes = [type(np.dtype(t)) for t in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?")]
    return [multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (``module.`` prefixes stripped), never running pickled code.

    ``.safetensors`` files are read as such; anything else as a torch checkpoint, bare state dict or
    released layout (``{'state_dict': …}``). Raises :class:`ModelError` for a file that pickles a
    Python object, holds a non-tensor weight, or is no checkpoint at all.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelError(f"not a safetensors file: {path}: {e}") from None
    else:
        state = _read_torch(path)
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(e))
        if unsafe is None:
            raise ModelError(f"not a PyTorch checkpoint: {path}") from None
        raise ModelError(f"refused checkpoint {path}: it pickles a Python object ({unsafe.group(1)}), not just "
                         "tensors; only tensor checkpoints are loaded") from None
    except (OSError, RuntimeError, ValueError, EOFError) as e:
        raise ModelError(f"not a PyTorch checkpoint: {path}: {type(e).__name__}") from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not state:
        raise ModelError(f"not a CLAP checkpoint: {path} holds no state dict")
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ModelError(f"refused checkpoint {path}: its state dict holds a {type(value).__name__} "
                             f"({name!r}), not a tensor")
    return state


_LAION_BLOCK = [(".norm1.", ".layernorm_before."), (".norm2.", ".layernorm_after."),
                (".attn.relative_position", ".attention.self.relative_position"),
                (".attn.proj.", ".attention.output.dense."),
                (".mlp.fc1.", ".intermediate.dense."), (".mlp.fc2.", ".output.dense.")]
_LAION_TEXT_BLOCK = [(".attn.in_proj_weight", ".qkv.weight"), (".attn.in_proj_bias", ".qkv.bias"),
                     (".attn.out_proj.", ".out."), (".ln_1.", ".norm_attention."), (".ln_2.", ".norm_mlp."),
                     (".mlp.c_fc.", ".fc_in."), (".mlp.c_proj.", ".fc_out.")]


def is_laion_layout(state: Mapping[str, torch.Tensor]) -> bool:
    return any(k.startswith("audio_branch.") for k in state)


def from_laion(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """laion_clap's state dict in this package's names (see the module's description)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if DROPPED.search(key):
            continue
        if key == "audio_branch.logmel_extractor.melW":
            _check_mel_bank(value)
            continue
        if key.startswith("audio_branch."):
            name = "audio_model.audio_encoder." + key[len("audio_branch."):]
            name = name.replace(".bn0.", ".batch_norm.")
            for old, new in _LAION_BLOCK:
                name = name.replace(old, new)
            if ".attn.qkv." in name:
                for part, tensor in zip(("query", "key", "value"), value.chunk(3, dim=0)):
                    out[name.replace(".attn.qkv.", f".attention.self.{part}.")] = tensor
                continue
        elif key.startswith(("audio_projection.", "text_projection.")):
            name = re.sub(r"\.0\.", ".linear1.", re.sub(r"\.2\.", ".linear2.", key))
        elif key.startswith("text_branch.resblocks."):
            name = "text_model.blocks." + key[len("text_branch.resblocks."):]
            for old, new in _LAION_TEXT_BLOCK:
                name = name.replace(old, new)
        elif key.startswith("text_branch."):
            name = "text_model." + key[len("text_branch."):]
        elif key in ("token_embedding.weight", "positional_embedding"):
            name = "text_model." + key
        elif key.startswith("ln_final."):
            name = "text_model.final_norm." + key[len("ln_final."):]
        else:
            name = key  # logit scales, and anything unknown (refused when fitted)
        out[name] = value
    return out


def _check_mel_bank(saved: torch.Tensor) -> None:
    a = AudioConfig()
    ours = mel_filter_bank(a.sample_rate, a.n_fft, a.mel_bins, a.fmin, a.fmax, scale="slaney")
    if tuple(saved.shape) != ours.shape or not np.allclose(saved.float().numpy(), ours, rtol=0, atol=1e-6):
        raise ModelError("the checkpoint's mel filter bank is not HTSAT's (48 kHz, 1024-point, 64 bands, "
                         "50-14000 Hz): a model with other features is not supported")


def infer_config(state: Mapping[str, torch.Tensor]) -> ClapConfig:
    """The architecture a state dict (this package's names) holds."""
    try:
        width = state["audio_model.audio_encoder.patch_embed.proj.weight"].shape[0]
    except KeyError:
        raise ModelError("not a CLAP checkpoint: it holds no HTSAT audio tower") from None
    sizes = {96: "tiny", 128: "base"}
    if width not in sizes:
        raise ModelError(f"not a supported HTSAT: patch width {width} (tiny is 96, base 128)")
    fusion = any(".fusion_model." in k for k in state)
    if any(k.startswith("text_model.blocks.") for k in state):
        text = TextConfig.transformer()
    elif any(k.startswith("text_model.encoder.") for k in state):
        text = TextConfig.roberta()
    else:
        raise ModelError("not a CLAP checkpoint: it holds no text tower of a known kind")
    return ClapConfig(audio=AudioConfig(size=sizes[width], fusion=fusion), text=text)


def derived_value(name: str, shape: torch.Size) -> torch.Tensor:
    """The value of a :data:`DERIVED` buffer, computed here."""
    if name.endswith("relative_position_index"):
        return relative_position_index(round(shape[0] ** 0.5))
    if name.endswith("position_ids"):
        return torch.arange(shape[-1]).expand(shape).clone()
    return torch.zeros(shape, dtype=torch.long)


def fit(model: ClapModel, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Load ``state`` (this package's names) into ``model`` strictly: every weight present, none
    unknown, shapes equal; derived buffers may be absent but must agree where present.

    ``model`` may hold uninitialised memory (``to_empty`` after a build on the ``meta`` device):
    everything in it is overwritten, the derived buffers with values computed here. Parts of
    ``model`` still on the ``meta`` device (a text tower left for later) are checked, not loaded:
    their entries (derived buffers included) are returned, for :meth:`ClapModel.build_text`.
    """
    own = model.state_dict()
    derived = {k for k in own if DERIVED.search(k)}
    missing = sorted(set(own) - set(state) - derived)
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        fusion = model.cfg.audio.fusion
        if not fusion and any(".fusion_model." in k or ".mel_conv2d." in k for k in unexpected):
            hint = "it is a fusion checkpoint, the model is not"
        elif fusion and any(".fusion_model." in k for k in missing):
            hint = "it is a non-fusion checkpoint, the model is a fusion one"
        else:
            hint = f"{len(missing)} weights missing, {len(unexpected)} unknown, e.g. {(missing + unexpected)[0]}"
        raise ModelError(f"checkpoint does not fit {model.cfg.architecture}: {hint}")
    full = dict(state)
    for name in derived:
        value = derived_value(name, own[name].shape)
        if name in state and (state[name].shape != value.shape or not torch.equal(state[name].to(value.dtype), value)):
            raise ModelError(f"checkpoint does not fit {model.cfg.architecture}: {name} differs from the "
                             "value the model computes")
        full[name] = value
    for name, tensor in full.items():
        if tensor.shape != own[name].shape:
            raise ModelError(f"checkpoint does not fit {model.cfg.architecture}: {name} has shape "
                             f"{tuple(tensor.shape)}, the model {tuple(own[name].shape)}")
    later = {name: tensor for name, tensor in full.items() if own[name].is_meta}
    model.load_state_dict({k: v for k, v in full.items() if k not in later}, strict=False)  # names checked above
    return later


def _hf_config(folder: Path) -> ClapConfig:
    """A ClapConfig from a Hugging Face ``config.json`` (read as JSON, nothing run)."""
    raw = json.loads((folder / "config.json").read_text())
    audio, text = raw.get("audio_config", {}), raw.get("text_config", {})
    size = {96: "tiny", 128: "base"}.get(audio.get("patch_embeds_hidden_size", 96))
    if size is None:
        raise ModelError(f"unsupported HTSAT width in {folder / 'config.json'}")
    text_cfg = TextConfig(layer_norm_eps=float(text.get("layer_norm_eps", 1e-12)),
                          vocab_size=int(text.get("vocab_size", 50265)),
                          max_positions=int(text.get("max_position_embeddings", 514)))
    return ClapConfig(audio=AudioConfig(size=size, fusion=bool(audio.get("enable_fusion", False))), text=text_cfg,
                      joint_dim=int(raw.get("projection_dim", 512)))


def load(path: str | os.PathLike, cfg: ClapConfig | None = None, *, sha256: str | None = PUBLISHED,
         device: str | torch.device = "cpu", text: bool = True):
    """A :class:`~proto_index.clap.model.ClapModel` with the weights at ``path``, in eval mode on ``device``.

    ``path``: a laion_clap checkpoint (``.pt``), a ``.safetensors`` file in either layout, or a Hugging
    Face folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``). ``cfg``: the
    architecture, inferred from the weights when omitted (and checked against the released file
    name's). ``sha256``: the file's expected hex digest; :data:`PUBLISHED` (default) checks released
    files whose digest is published; None checks nothing. ``text=False``: the text tower's weights
    are checked now but it stays on the ``meta`` device (no memory) until the first text embedding
    or :meth:`~proto_index.clap.model.ClapModel.build_text` (the file is memory-mapped: its text
    weights are not read before).
    """
    from proto_index.clap.model import ClapModel

    path = Path(path)
    hf_cfg = None
    if path.is_dir():
        hf_cfg = _hf_config(path)
        weights = next((path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()), None)
        if weights is None:
            raise ModelError(f"no model.safetensors or pytorch_model.bin in {path}")
    else:
        weights = path
    expected = PUBLISHED_SHA256.get(weights.name) if sha256 == PUBLISHED else sha256
    if expected is not None:
        actual = file_sha256(weights)
        if actual != expected.lower():
            raise ModelError(f"{weights} has SHA-256 {actual}, not the expected {expected}")
    state = read_state(weights)
    if is_laion_layout(state):
        state = from_laion(state)
    inferred = infer_config(state)
    if hf_cfg is not None:
        inferred = ClapConfig(audio=hf_cfg.audio, text=hf_cfg.text if inferred.text.kind == "roberta" else inferred.text,
                              joint_dim=hf_cfg.joint_dim)
    released = RELEASED.get(weights.name)
    if released is not None and released.audio != inferred.audio:
        raise ModelError(f"{weights.name} should hold {released.architecture}, but holds {inferred.architecture}")
    cfg = cfg or inferred
    with torch.device("meta"):  # no random initialisation of weights about to be overwritten (~2 s)
        model = ClapModel(cfg)
    if text:
        model.to_empty(device=device)
    else:
        model.to_empty(device=device, recurse=False)
        for name, child in model.named_children():
            if name not in model.TEXT_PARTS:
                child.to_empty(device=device)
    model.text_later(fit(model, state))
    return model.eval()


def to_laion(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This package's state dict in laion_clap's names (the inverse of :func:`from_laion` for every
    entry it keeps): for writing checkpoints in the released layout, as tests do."""
    out: dict[str, torch.Tensor] = {}
    pending_qkv: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith("audio_model.audio_encoder."):
            name = "audio_branch." + key[len("audio_model.audio_encoder."):]
            name = name.replace("batch_norm.", "bn0.") if name.startswith("audio_branch.batch_norm.") else name
            match = re.search(r"\.attention\.self\.(query|key|value)\.(weight|bias)$", name)
            if match:
                stem = name[: match.start()] + f".attn.qkv.{match.group(2)}"
                pending_qkv.setdefault(stem, {})[match.group(1)] = value
                continue
            for old, new in _LAION_BLOCK:
                name = name.replace(new, old)
        elif key.startswith(("audio_projection.", "text_projection.")):
            name = key.replace(".linear1.", ".0.").replace(".linear2.", ".2.")
        elif key.startswith("text_model.blocks."):
            name = "text_branch.resblocks." + key[len("text_model.blocks."):]
            for old, new in _LAION_TEXT_BLOCK:
                name = name.replace(new, old)
        elif key in ("text_model.token_embedding.weight", "text_model.positional_embedding"):
            name = key[len("text_model."):]
        elif key.startswith("text_model.final_norm."):
            name = "ln_final." + key[len("text_model.final_norm."):]
        elif key.startswith("text_model."):
            if DERIVED.search(key):
                continue
            name = "text_branch." + key[len("text_model."):]
        else:
            name = key
        out[name] = value
    for stem, parts in pending_qkv.items():
        out[stem] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
    return out
