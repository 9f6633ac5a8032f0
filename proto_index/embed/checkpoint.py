"""Released CLAP checkpoints: reading one safely (tensors only, memory-mapped), fitting it to a
model, and the file hash that becomes a store's model identity (cached by the file's stat)."""
from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from proto_index.audio.discover import file_sha256
from proto_index.embed import json_cache
from proto_index.errors import ModelError

if TYPE_CHECKING:
    import torch

STALE_KEYS = ("text_branch.embeddings.position_ids",)
HASHES = "sha256.json"
"""The user-cache file of remembered checkpoint hashes (:func:`checkpoint_sha256`)."""
"""Buffers that checkpoints saved with older transformers hold and current transformers lacks."""


def _checkpoint_globals() -> list:
    """The non-tensor types a released checkpoint may hold besides its state dict: numpy scalars and
    arrays (laion_clap's scheduler writes numpy floats into the optimizer's learning rates). Nothing
    that runs code: every other global is refused by torch's weights-only unpickler."""
    import numpy.core.multiarray as multiarray

    dtypes = [type(np.dtype(t)) for t in ("f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?")]
    return [multiarray.scalar, multiarray._reconstruct, np.ndarray, np.dtype, *dtypes]


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in a checkpoint file, released layout (``{'state_dict': {'module.…': …}}``) or bare.

    Loaded with ``weights_only=True``: a checkpoint that pickles a callable or any class beyond
    tensors, containers and numpy numbers is refused before anything in it runs. A zip-format file
    is memory-mapped, so only the tensors used are read from disk (a released file also holds
    optimizer state, and a command that needs only the audio tower never reads the text tower).
    """
    import pickle

    import torch

    try:
        mmap = zipfile.is_zipfile(path)
        with torch.serialization.safe_globals(_checkpoint_globals()):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(e))
        if unsafe:
            raise ModelError(f"refused checkpoint {path}: it holds a Python object that could run code "
                             f"({unsafe.group(1)}); proto-index loads tensors only") from None
        raise ModelError(f"not a PyTorch checkpoint: {_first_line(str(e), e)}") from None
    except Exception as e:  # reading arbitrary bytes can fail in many ways
        raise ModelError(f"not a PyTorch checkpoint: {_first_line(str(e), e)}") from e
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError("not a CLAP checkpoint: it holds no state dict of tensors")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _first_line(text: str, e: Exception) -> str:
    if "WeightsUnpickler error:" in text:  # torch buries the cause under advice
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor],
                 pending: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, torch.Tensor]:
    """Load ``state`` strictly, after dropping buffers current transformers no longer has.

    ``pending``: the shapes (by state-dict name) of parts ``model`` does not hold yet (a text tower
    built later); their entries are checked against those shapes, not loaded, and returned.
    """
    from proto_index.embed.build import model_architecture

    pending = dict(pending or {})
    fusion = model.enable_fusion
    present = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = {**present, **pending}
    state = {k: v for k, v in state.items() if k in expected or k not in STALE_KEYS}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        kind = "fusion" if fusion else "non-fusion"
        if not fusion and any("fusion" in k for k in unexpected):
            hint = "it is a fusion checkpoint"
        elif fusion and any("fusion" in k for k in missing):
            hint = "it is a non-fusion checkpoint"
        else:
            hint = f"{len(missing)} weights missing, {len(unexpected)} unexpected, e.g. {(missing + unexpected)[0]}"
        raise ModelError(f"checkpoint does not fit the {kind} {model_architecture(model)} model: {hint}")
    later = {k: state[k] for k in pending}
    for name, tensor in later.items():
        if tuple(tensor.shape) != pending[name]:
            raise ModelError(f"checkpoint does not fit {model_architecture(model)}: size mismatch for {name}: "
                             f"copying a param with shape {tuple(tensor.shape)}, the model has {pending[name]}")
    try:
        model.load_state_dict({k: state[k] for k in present}, strict=True)
    except RuntimeError as e:
        detail = next((line.strip() for line in str(e).splitlines() if "size mismatch" in line), str(e))
        raise ModelError(f"checkpoint does not fit {model_architecture(model)}: {detail}") from e
    return later


def _stamp(stat: os.stat_result) -> dict[str, int]:
    """What must not change for a remembered hash to hold: size, mtime, and the inode and ctime, which a
    file rewritten in place or replaced (even with its old size and mtime set back) cannot keep."""
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
            "inode": stat.st_ino, "device": stat.st_dev}


def checkpoint_sha256(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a checkpoint (its identity), remembered in ``cache_dir()/sha256.json`` by path and :func:`_stamp`."""
    path = Path(path).resolve()
    stamp = _stamp(path.stat())
    known = json_cache.read(HASHES)
    entry = known.get(str(path))
    if isinstance(entry, dict) and all(entry.get(k) == v for k, v in stamp.items()) and "sha256" in entry:
        return entry["sha256"]

    result = "sha256:" + file_sha256(path)
    known[str(path)] = {**stamp, "sha256": result}
    json_cache.write(HASHES, known)  # a lost entry only means hashing again
    return result
