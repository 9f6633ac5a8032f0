"""Silence the internal warnings of torch, laion_clap and transformers while a model is built or run.

A user of proto-index cannot act on them (e.g. torch's ``meshgrid`` UserWarning, raised by
laion_clap's HTSAT at every build). Only warnings attributed to those libraries' own modules are
ignored, and only inside :func:`quiet_model_warnings`; the process's filters are left as they were.
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Callable, Iterator, TypeVar

MODEL_LIBRARIES = r"(torch|torchaudio|torchvision|torchlibrosa|laion_clap|clap_module|transformers|huggingface_hub)(\.|$)"
"""Modules (as warnings attribute them) whose warnings are internal to the model."""

F = TypeVar("F", bound=Callable)


@contextlib.contextmanager
def quiet_model_warnings() -> Iterator[None]:
    """Ignore UserWarning, FutureWarning and DeprecationWarning raised from the model libraries."""
    with warnings.catch_warnings():
        for category in (UserWarning, FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category, module=MODEL_LIBRARIES)
        yield


def quiet(function: F) -> F:
    """Run ``function`` inside :func:`quiet_model_warnings`."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with quiet_model_warnings():
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
