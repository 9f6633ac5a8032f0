"""The CLI's wording of the library's remedies: each option concept a :class:`~proto_index.errors.Hint`
names, spelled as the flag (or command) a user types."""
from __future__ import annotations

from proto_index.errors import ProtoIndexError

FLAGS = {
    "replace": "--replace",
    "drop_prototypes": "--drop-prototypes",
    "n": "--n",
    "method_blend": "--method blend",
    "method_examples": "--method examples",
    "mapping": "--mapping CSV",
    "examples": "--examples CSV",
    "min_confirmed": "--min-confirmed",
    "k": "-k",
    "tgap_n": "--tgap-n",
    "per_label": "--per-label",
    "vector_dtype": "--vector-dtype",
    "discard_old_files": "--discard-old-files",
    "wait_s": "--wait SECONDS",
    "rehash": "--rehash",
    "commit_windows": "--commit-windows",
    "publish_windows": "--publish-windows",
    "verify_repair": "`proto-index verify --repair`",
    "env_audio": "`proto-index env add NAME --audio PATH`",
    "env_text": "`proto-index env add NAME --text DESCRIPTION`",
    "checkpoint": "--checkpoint PATH",
    "tokenizer_dir": "--tokenizer-dir DIR",
}
"""Option concept -> how the command line spells it."""


def message(error: ProtoIndexError) -> str:
    """The error's one line for the terminal: its message, then its hint in the CLI's words."""
    text = str(error)
    hint = getattr(error, "hint", None)
    if hint is None or not hasattr(hint, "render"):
        return text
    return f"{text} ({hint.render(FLAGS.get(hint.option, hint.option))})"
