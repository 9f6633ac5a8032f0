"""laion_clap without the network (the seeded models' path): the Hub in offline mode and laion_clap's import.

proto-index fetches its own files (download.py) and never wants the Hub. laion_clap (and torch,
transformers) are imported lazily, on first use, by :func:`laion`.
"""
from __future__ import annotations

import os
import sys
import types

from proto_index.embed.quiet import quiet


def hub_offline() -> None:
    """Put the Hugging Face Hub client in offline mode for the rest of the process.

    huggingface_hub reads HF_HUB_OFFLINE once, at its import, so when it is already imported its
    constant is set as well (transformers < 5 kept a copy of its own too).
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    hub_constants = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True
    transformers_hub = sys.modules.get("transformers.utils.hub")
    if transformers_hub is not None and hasattr(transformers_hub, "_is_offline_mode"):
        transformers_hub._is_offline_mode = True


def laion() -> tuple[types.ModuleType, types.ModuleType]:
    """Import laion_clap without network access; return its ``clap_module`` and ``training.data``.

    laion_clap's training/data.py builds three Hugging Face tokenizers at import time; offline that
    retries for about 11 minutes unless the Hub is in offline mode, and proto-index never uses them.
    What laion_clap imports for training and for towers not built is deferred to its first use
    (:mod:`~proto_index.embed.deferred`): about half of a command's start-up. Once imported, the
    modules are returned as they are: no environment write or warnings filter per call.
    """
    clap_module, data = sys.modules.get("clap_module"), sys.modules.get("laion_clap.training.data")
    if clap_module is not None and data is not None:
        return clap_module, data
    return _import_laion()


@quiet
def _import_laion() -> tuple[types.ModuleType, types.ModuleType]:
    from proto_index.embed.deferred import deferring

    hub_offline()
    with deferring():
        import laion_clap  # noqa: F401  (adds its folder to sys.path: its hook imports top-level `clap_module`)
        import clap_module
        from laion_clap.training import data

    return clap_module, data
