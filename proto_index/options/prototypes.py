"""How a class set is added (:class:`ClassSetOptions`, from ``Store.add_classes``), how a prototype set is
built (:class:`PrototypeOptions`) and what its methods read besides the
catalog (:class:`PrototypeInputs`), from ``Store.build_prototypes`` to :mod:`proto_index.usecases.prototypes`."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from proto_index.core.prototypes import DEFAULT_TEMPLATE, DEFAULT_TGAP_N
from proto_index.errors import InvalidInput
from proto_index.options.embedding import EmbedOptions

METHODS = ("zero-shot", "tgap", "supervised", "blend", "examples", "classifier")
TEXT_METHODS = ("zero-shot", "tgap", "supervised", "blend")
"""The methods that embed the class prompts (a text anchor per class); the others need no text tower."""
DEFAULT_MIN_CONFIRMED = 5

MAX_TEMPLATES = 32
"""The most templates one prompt ensemble embeds (each costs one prompt per class)."""


@dataclass(frozen=True)
class PrototypeInputs:
    """What the prototype methods without a text anchor read, carried from ``Store.build_prototypes``
    (or the CLI) to :mod:`proto_index.usecases.prototypes`.

    ``mapping`` (``classifier``): a UTF-8 CSV ``class,model_label``, one row per label of the model
    mapped to a class (several per class allowed). ``examples`` (``examples``): a UTF-8 CSV with a
    ``class`` column and a ``path`` (an audio file, relative to the CSV's folder) or ``window`` (a
    stored window id) per row. ``embed``: how example files not already in the corpus are embedded.
    ``prompt_ensemble`` (``zero-shot``, ``tgap``): the prompt templates (each with ``{label}``) whose
    anchors are combined with label-free entropy weights over the corpus audio
    (:mod:`proto_index.core.prompt_weights`); None: the class set's one template.
    """

    mapping: Path | None = None
    examples: Path | None = None
    embed: EmbedOptions = EmbedOptions()
    prompt_ensemble: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.prompt_ensemble is not None:
            templates = self.prompt_ensemble
            if isinstance(templates, str) or not all(isinstance(t, str) for t in templates):
                raise InvalidInput("the prompt ensemble must be a list of templates (strings)")
            if not templates or len(templates) > MAX_TEMPLATES:
                raise InvalidInput(f"a prompt ensemble needs 1 to {MAX_TEMPLATES} templates, got {len(templates)}")
            bad = [t for t in templates if "{label}" not in t]
            if bad:
                raise InvalidInput(f"every prompt template must contain {{label}}: {bad[0]!r} does not")
            object.__setattr__(self, "prompt_ensemble", tuple(dict.fromkeys(templates)))
        for name in ("mapping", "examples"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise InvalidInput(f"the {name} file must be a path, got {value!r}")
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if not isinstance(self.embed, EmbedOptions):
            raise InvalidInput(f"embed must be EmbedOptions, got {type(self.embed).__name__}")


@dataclass(frozen=True)
class PrototypeOptions:
    """How ``Store.build_prototypes`` builds a set: ``method`` (one of :data:`METHODS`), ``n`` corpus
    windows per class (tgap, classifier), the set's ``name`` (None: derived from the class set and
    method), ``replace`` a set of that name, ``min_confirmed`` members per class (blend), and the
    files and templates the method reads (``inputs``)."""

    method: str = "zero-shot"
    n: int = DEFAULT_TGAP_N
    name: str | None = None
    replace: bool = False
    min_confirmed: int = DEFAULT_MIN_CONFIRMED
    inputs: PrototypeInputs = PrototypeInputs()

    def __post_init__(self):
        if self.method not in METHODS:
            raise InvalidInput(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        for field, value in (("n", self.n), ("min_confirmed", self.min_confirmed)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{field} must be a whole number of at least 1, got {value!r}")
        if self.name is not None and not isinstance(self.name, str):
            raise InvalidInput(f"the prototype set name must be text, got {self.name!r}")
        if not isinstance(self.inputs, PrototypeInputs):
            raise InvalidInput(f"inputs must be PrototypeInputs, got {type(self.inputs).__name__}")


@dataclass(frozen=True)
class ClassSetOptions:
    """How ``Store.add_classes`` adds a class set besides its labels: the prompt ``template`` (with
    ``{label}``), a ``labels_file`` whose lines follow the labels given, ``replace`` a set of that name,
    and ``drop_prototypes`` (with ``replace``: delete the prototype sets built on the old one)."""

    template: str = DEFAULT_TEMPLATE
    labels_file: Path | None = None
    replace: bool = False
    drop_prototypes: bool = False

    def __post_init__(self):
        if not isinstance(self.template, str):
            raise InvalidInput(f"the prompt template must be text, got {self.template!r}")
        if self.labels_file is not None:
            if not isinstance(self.labels_file, (str, os.PathLike)):
                raise InvalidInput(f"the labels file must be a path, got {self.labels_file!r}")
            object.__setattr__(self, "labels_file", Path(self.labels_file))
