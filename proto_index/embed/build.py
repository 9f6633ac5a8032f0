"""Building laion_clap's CLAP model (with its own ``create_model``), whole or with the text tower left
for later, and the model facts an identity is made of (architecture, state hash)."""
from __future__ import annotations

import contextlib
import hashlib
import sys
import threading
import types
from typing import TYPE_CHECKING, Any

from proto_index.embed.offline import laion
from proto_index.embed.quiet import quiet
from proto_index.errors import ModelError

if TYPE_CHECKING:
    import torch

AUDIO_MODEL = "HTSAT-tiny"
ROBERTA_BASE = {"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1,
                "layer_norm_eps": 1e-5}
"""What roberta-base's config sets apart from RobertaConfig's defaults (768 wide, 12 layers, 12 heads)."""
TEXT_TOWER_CLASSES = {"transformer": "Transformer", "roberta": "RobertaModel"}
"""The name, in laion_clap's model module, of the class each text tower type is built from."""

_build_lock = threading.Lock()


def _pending_class():
    import torch

    class PendingTextTower(torch.nn.Module):
        """Stands in for a text tower not built yet: no parameters, no memory, no random draws.

        ``shapes`` holds the tower's state-dict shapes (names prefixed ``text_branch.``); ``meta`` is
        a copy built on the ``meta`` device that answers the attributes CLAP's constructor reads
        (the transformer's width and layers).
        """

        def __init__(self, shapes: dict[str, tuple[int, ...]], meta: torch.nn.Module):
            super().__init__()
            object.__setattr__(self, "_meta", meta)  # not a submodule: .to() and state_dict() skip it
            self.shapes = dict(shapes)

        def __getattr__(self, name: str):
            return getattr(object.__getattribute__(self, "_meta"), name)

        def forward(self, *args, **kwargs):
            raise ModelError("the text tower has not been built")

    return PendingTextTower


def _meta_shapes(module: Any) -> dict[str, tuple[int, ...]]:
    return {f"text_branch.{k}": tuple(v.shape) for k, v in module.state_dict().items()}


def is_pending(module: Any) -> bool:
    """Whether ``module`` is a text tower left for later by ``create_clap_model(..., text=False)``."""
    return type(module).__name__ == "PendingTextTower" and hasattr(module, "shapes")


@contextlib.contextmanager
def _text_towers(*, real: bool):
    """While laion_clap builds a model, swap the names of its text tower classes in its model module.

    RoBERTa comes from roberta-base's config, not the Hub: ``CLAP.__init__`` calls
    ``RobertaModel.from_pretrained('roberta-base')``, which downloads 500 MB of weights (the tests'
    laion_clap references are built this way). Not ``real``: the ``transformer`` tower is a
    :class:`PendingTextTower`. Only names in laion_clap's model module are swapped, for the duration
    of construction; transformers itself is not touched. The caller holds ``_build_lock``.
    """
    import torch

    model_module = sys.modules["clap_module.model"]
    originals = {name: getattr(model_module, name) for name in TEXT_TOWER_CLASSES.values()}

    def roberta(name: str, *args: Any, **kwargs: Any):
        from transformers import RobertaConfig  # here: a model without RoBERTa need not import transformers

        if name != "roberta-base":
            raise ModelError(f"laion_clap asked for text tower {name!r}; only roberta-base is supported")
        return originals["RobertaModel"](RobertaConfig(**ROBERTA_BASE))

    def pending_transformer(*args: Any, **kwargs: Any):
        with torch.device("meta"), _initialisation_skipped():
            meta = originals["Transformer"](*args, **kwargs)
        return _pending_class()(_meta_shapes(meta), meta)

    swaps = {"RobertaModel": types.SimpleNamespace(from_pretrained=roberta)}
    if not real:
        swaps["Transformer"] = pending_transformer
    for name, value in swaps.items():
        setattr(model_module, name, value)
    try:
        yield
    finally:
        for name, value in originals.items():
            setattr(model_module, name, value)


INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
                  "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
                  "sparse_")
"""torch.nn.init's in-place initialisers, all of which the layers laion_clap builds draw through."""


@contextlib.contextmanager
def _initialisation_skipped():
    """torch.nn.init's initialisers, wherever torch's layers and laion_clap's modules bound them, and
    HTSAT's own ``trunc_normal_``, leave tensors as allocated.

    For a model whose every weight is loaded next (HTSAT's random initialisation is 1-2 s of a
    start-up), and for towers built on the ``meta`` device, where an initialiser draws nothing but
    imports torch's symbolic-shape machinery (~0.5 s). The caller holds ``_build_lock``; another
    thread building torch layers meanwhile would get them uninitialised too (as with transformers'
    ``no_init_weights``).
    """
    import torch

    def keep(tensor, *args, **kwargs):
        return tensor

    initialisers = {id(getattr(torch.nn.init, name)) for name in INIT_FUNCTIONS}
    htsat = sys.modules["clap_module.htsat"]
    targets = [(htsat, "trunc_normal_")]
    for module_name, module in list(sys.modules.items()):
        if module is not None and module_name.startswith(("torch.nn.init", "torch.nn.modules.", "clap_module.")):
            targets += [(module, name) for name in INIT_FUNCTIONS if id(getattr(module, name, None)) in initialisers]
    originals = [(owner, name, getattr(owner, name)) for owner, name in targets]
    for owner, name, _ in originals:
        setattr(owner, name, keep)
    try:
        yield
    finally:
        for owner, name, value in reversed(originals):
            setattr(owner, name, value)


@quiet
def create_clap_model(tmodel: str, *, fusion: bool, seed: int = 0, text: bool = True,
                      initialise: bool = True) -> tuple[torch.nn.Module, dict]:
    """Build laion_clap's CLAP (HTSAT-tiny audio tower, ``tmodel`` text tower) on the CPU.

    Randomly initialised from ``seed``, deterministically, without disturbing the caller's RNG
    state. Returns ``(model, model_cfg)`` as laion_clap's ``create_model`` does. ``text=False``
    leaves the ``transformer`` text tower (``model.text_branch``) a :class:`PendingTextTower`; the audio tower,
    built first, is then the same as in the whole model, but parameters drawn after the text tower
    (the projection heads, ``token_embedding``) are not. ``initialise=False`` skips the random
    initialisation: the weights hold whatever their memory held, for a caller that loads them all
    (strictly) next.
    """
    clap_module, _ = laion()
    import torch

    from proto_index.embed.filterbanks import remembered

    fusion_args = {"fusion_type": "aff_2d"} if fusion else {}
    with _build_lock, _text_towers(real=text), remembered(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with contextlib.nullcontext() if initialise else _initialisation_skipped():
            model, model_cfg = clap_module.create_model(AUDIO_MODEL, tmodel, precision="fp32", device="cpu",
                                                        enable_fusion=fusion, **fusion_args)
    return model.eval(), model_cfg


def model_architecture(model: torch.nn.Module) -> str:
    """E.g. ``HTSAT-tiny+roberta``."""
    return f"{AUDIO_MODEL}+{model.text_branch_type}"


def state_sha256(model: torch.nn.Module, prefixes: tuple[str, ...] | None = None) -> str:
    """``sha256:<hex>`` over the model's state dict: names, dtypes, shapes and bytes, in name order
    (only names starting with one of ``prefixes``, when given)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if prefixes is not None and not name.startswith(prefixes):
            continue
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return "sha256:" + digest.hexdigest()
