"""HTSAT's STFT windows and mel filter bank, remembered between runs.

laion_clap's HTSAT builds its spectrogram layers with torchlibrosa, which computes a window
(``librosa.filters.get_window``), pads it (``librosa.util.pad_center``) and a mel filter bank
(``librosa.filters.mel``). The arrays are small and follow from the arguments alone, but the first
of those calls imports librosa's signal modules (scipy.signal, numba): about 1.2 s of every start-up.
While a model is built, :func:`remembered` hands torchlibrosa a librosa whose three functions return
the arrays remembered in the user cache (``cache_dir()/filterbanks/``, keyed by the call and the
versions of librosa, scipy and numpy) and call the real librosa on a miss. All else is the real librosa.

A remembered array that cannot be read is computed again. Where the arrays end up as weights they
are part of what a model's identity hashes, so a wrong one is caught like any other wrong weight.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from proto_index.atomic import atomic_path
from proto_index.embed.download import cache_dir
from proto_index.embed.identity_cache import library_versions

REMEMBERED = {"filters": ("get_window", "mel"), "util": ("pad_center",)}
"""The librosa functions torchlibrosa calls while building HTSAT's layers, by librosa submodule."""

_lock = threading.Lock()


def _describe(value: Any) -> Any:
    """``value`` as JSON for a key; arrays by dtype, shape and content hash; None if not describable."""
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {"array": data.dtype.str, "shape": data.shape, "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        described = [_describe(v) for v in value]
        return None if any(d is None and v is not None for d, v in zip(described, value)) else described
    return None


def call_key(function: str, args: tuple, kwargs: dict) -> str | None:
    """The cache key of ``function(*args, **kwargs)``, or None when an argument cannot be keyed."""
    parts = [_describe(a) for a in args] + [_describe(v) for v in kwargs.values()]
    if any(p is None and v is not None for p, v in zip(parts, [*args, *kwargs.values()])):
        return None
    text = json.dumps({"function": function, "args": parts[:len(args)], "kwargs": dict(zip(kwargs, parts[len(args):])),
                       "versions": library_versions(("librosa", "scipy", "numpy"))}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _recall(path: Path) -> np.ndarray | None:
    try:
        value = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, np.ndarray) else None


def _remember(path: Path, value: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, durable=False) as tmp:  # a cache: losing it only means computing again
            with open(tmp, "wb") as f:
                np.save(f, value, allow_pickle=False)
    except OSError:
        pass  # an unwritable cache only means computing again next time


def remembering(function: str, compute: Callable[..., Any]) -> Callable[..., Any]:
    """``compute``, with array results remembered under :func:`call_key`."""

    def call(*args: Any, **kwargs: Any) -> Any:
        key = call_key(function, args, kwargs)
        if key is None:
            return compute(*args, **kwargs)
        path = cache_dir() / "filterbanks" / f"{key}.npy"
        value = _recall(path)
        if value is None:
            value = compute(*args, **kwargs)
            if isinstance(value, np.ndarray):
                _remember(path, value)
        return value

    return call


class _Submodule:
    def __init__(self, name: str, functions: tuple[str, ...]):
        self._name = name
        self._functions = {f: remembering(f"librosa.{name}.{f}", self._real_function(f)) for f in functions}

    def _real_function(self, function: str) -> Callable[..., Any]:
        return lambda *args, **kwargs: getattr(self._real(), function)(*args, **kwargs)

    def _real(self) -> Any:
        import importlib

        return importlib.import_module(f"librosa.{self._name}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._functions:
            return self._functions[name]
        return getattr(self._real(), name)


class _Librosa:
    """librosa as torchlibrosa uses it, with :data:`REMEMBERED` remembered."""

    def __init__(self):
        for name, functions in REMEMBERED.items():
            setattr(self, name, _Submodule(name, functions))

    def __getattr__(self, name: str) -> Any:
        import librosa

        return getattr(librosa, name)


@contextlib.contextmanager
def remembered() -> Iterator[None]:
    """While inside, torchlibrosa's window and mel filter bank calls are remembered (see module doc)."""
    import torchlibrosa.stft as stft

    with _lock:
        original = stft.librosa
        stft.librosa = _Librosa()
        try:
            yield
        finally:
            stft.librosa = original
