"""The ``list`` command of a command group (``classes``, ``prototypes``, ``env``), and the one
switch every listing makes: one line per item for people, or one JSON array for scripts (``--json``)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import typer

from proto_index.api import Store
from proto_index.cli.common import DEFAULT_STORE_PATH, StoreOption, open_store
from proto_index.cli.output import echo_json, say
from proto_index.cli.records import JsonOption

T = TypeVar("T")


def echo_items(items: Iterable[T], as_json: bool, record: Callable[[T], dict], line: Callable[[T], str]) -> None:
    """``items`` as one JSON array of ``record(item)`` (``as_json``), else ``line(item)`` one per line."""
    if as_json:
        echo_json([record(item) for item in items])
    else:
        for item in items:
            say(line(item))


def add_list_command(app: typer.Typer, group: str, summary: str, items: Callable[[Store], Iterable[T]],
                     record: Callable[[T], dict], line: Callable[[T], str]) -> None:
    """Give ``app`` (``proto-index GROUP``) a ``list`` command: ``items(store)`` through :func:`echo_items`,
    its help ``summary`` and two examples."""

    def list_(store: StoreOption = DEFAULT_STORE_PATH, as_json: JsonOption = False):
        echo_items(items(open_store(store)), as_json, record, line)

    examples = f"\b\nExamples:\n  proto-index {group} list\n  proto-index {group} list --json"
    app.command("list", help=f"{summary}\n\n{examples}")(list_)
