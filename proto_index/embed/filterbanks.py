"""HTSAT's STFT windows and mel filter bank, remembered between runs.

laion_clap's HTSAT builds its spectrogram layers with torchlibrosa, which computes a window
(``librosa.filters.get_window``), pads it (``librosa.util.pad_center``) and a mel filter bank
(``librosa.filters.mel``). The arrays are small and follow from the arguments alone, but the first
of those calls imports librosa's signal modules (scipy.signal, numba): about 1.2 s of every start-up.
While a model is built, :func:`remembered` hands torchlibrosa a librosa whose three functions return
the arrays remembered in the user cache (``cache_dir()/filterbanks/``, keyed by the call and the
versions of librosa, scipy and numpy) and call the real librosa on a miss. All else is the real librosa.

The cache is not trusted for the values: a remembered array is used only if it equals, bit for bit,
the array :func:`reference` computes with numpy alone (a fraction of a millisecond); a call it does
not know is not remembered. An array is remembered only when librosa's own result equals that
reference, so a cache entry can at most say "librosa agrees", never change a filter bank. One that
cannot be read, or is not a regular file, is computed again.
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


def _hann(n: int, fftbins: bool) -> np.ndarray:
    """scipy's Hann window, computed as scipy computes it (a periodic one: one longer, truncated)."""
    m = n + 1 if fftbins else n
    fac = np.linspace(-np.pi, np.pi, m)
    w = np.zeros(m)
    w += 0.5 * np.cos(0 * fac)
    w += 0.5 * np.cos(1 * fac)
    return w[:-1] if fftbins else w


def _hz_to_mel(hz: float) -> float:
    """Slaney's mel scale (librosa's default), for one frequency."""
    f_sp, logstep = 200.0 / 3, np.log(6.4) / 27.0
    return 1000.0 / f_sp + np.log(hz / 1000.0) / logstep if hz >= 1000.0 else hz / f_sp


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    f_sp, logstep = 200.0 / 3, np.log(6.4) / 27.0
    hz = f_sp * mels
    log = mels >= 1000.0 / f_sp
    hz[log] = 1000.0 * np.exp(logstep * (mels[log] - 1000.0 / f_sp))
    return hz


def _mel(sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """librosa's Slaney-normalised mel filter bank (float32), as librosa computes it."""
    fmax = float(sr) / 2 if fmax is None else fmax
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        weights[i] = np.maximum(0, np.minimum(-ramps[i] / fdiff[i], ramps[i + 2] / fdiff[i + 1]))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    return weights


def reference(function: str, args: tuple, kwargs: dict) -> np.ndarray | None:
    """What ``function(*args, **kwargs)`` returns, computed with numpy alone, for the calls HTSAT's layers
    make (a Hann window, its centring, the default mel filter bank); None for any other call."""
    try:
        if function == "librosa.filters.get_window":
            call = dict(zip(("window", "Nx", "fftbins"), args), **kwargs)
            if set(call) <= {"window", "Nx", "fftbins"} and call.get("window") == "hann" and type(call.get("Nx")) is int:
                return _hann(call["Nx"], bool(call.get("fftbins", True))) if call["Nx"] > 0 else None
        elif function == "librosa.util.pad_center":
            call = dict(zip(("data", "size"), args), **kwargs)
            data, size = call.get("data"), call.get("size")
            if set(call) == {"data", "size"} and isinstance(data, np.ndarray) and data.ndim == 1 \
                    and type(size) is int and size >= len(data):
                left = (size - len(data)) // 2
                return np.pad(data, (left, size - len(data) - left))
        elif function == "librosa.filters.mel" and not args:
            if set(kwargs) <= {"sr", "n_fft", "n_mels", "fmin", "fmax"} and {"sr", "n_fft"} <= set(kwargs):
                return _mel(kwargs["sr"], int(kwargs["n_fft"]), int(kwargs.get("n_mels", 128)),
                            kwargs.get("fmin", 0.0), kwargs.get("fmax"))
    except (TypeError, ValueError, ZeroDivisionError, FloatingPointError):
        return None
    return None


def _same(a: np.ndarray | None, b: np.ndarray) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


def _recall(path: Path) -> np.ndarray | None:
    from proto_index.audio.discover import open_regular

    try:
        with open_regular(path) as f:
            value = np.load(f, allow_pickle=False)
    except (OSError, ValueError, EOFError):
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
    """``compute``, with array results remembered under :func:`call_key` where :func:`reference` vouches for them."""

    def call(*args: Any, **kwargs: Any) -> Any:
        key = call_key(function, args, kwargs)
        expected = reference(function, args, kwargs) if key is not None else None
        if expected is None:
            return compute(*args, **kwargs)
        path = cache_dir() / "filterbanks" / f"{key}.npy"
        value = _recall(path)
        if _same(value, expected):
            return value
        value = compute(*args, **kwargs)
        if _same(value, expected):
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
