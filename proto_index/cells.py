"""Text cells of tables a spreadsheet may open: formula injection neutralised, losslessly."""
from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
"""A text cell starting with one of these gets a ``'`` in front (OWASP's CSV-injection rule; ``'`` itself
too, so that reading strips exactly one and gets the text back)."""


def text_cell(text) -> str:
    """A text cell for a table a spreadsheet may open: ``'`` before a leading ``= + - @``, tab, CR or
    ``'`` so it is never read as a formula; :func:`read_text_cell` undoes it exactly."""
    text = "" if text is None else str(text)
    return "'" + text if text.startswith(FORMULA_START) else text


def read_text_cell(cell: str) -> str:
    """The text that :func:`text_cell` wrote as ``cell``."""
    return cell[1:] if cell.startswith("'") else cell
