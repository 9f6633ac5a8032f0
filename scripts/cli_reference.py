"""Write docs/cli.md, the command-line reference, from the CLI's own help.

    .venv/bin/python scripts/cli_reference.py          # rewrite docs/cli.md
    .venv/bin/python scripts/cli_reference.py --check  # exit 1 if docs/cli.md is stale

Each command's help is click's plain formatting at a fixed width (no colour, no terminal), so the file
is the same on every machine; tests/project/test_docs.py fails when it differs from what this writes.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import typer
import typer.main

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "cli.md"
WIDTH = 100
PROG = "proto-index"
REGENERATE = ".venv/bin/python scripts/cli_reference.py"


def walk(command, parent: typer.Context | None = None) -> Iterator[typer.Context]:
    """Each command's context, the root first, then subcommands depth first in name order."""
    # click's plain formatting, not Typer's rich panels: those follow the terminal and rich's version.
    # The command objects are built afresh by get_command, so this changes nothing the CLI uses.
    command.rich_markup_mode = None
    ctx = typer.Context(command, info_name=command.name if parent else PROG, parent=parent,
                        terminal_width=WIDTH, max_content_width=WIDTH, color=False)
    yield ctx
    for name in sorted(getattr(command, "commands", {})):
        yield from walk(command.commands[name], ctx)


def plain_help(ctx: typer.Context) -> str:
    """The command's ``--help`` text at ``WIDTH`` columns, trailing spaces cut."""
    return "\n".join(line.rstrip() for line in ctx.get_help().splitlines()).strip("\n")


def anchor(title: str) -> str:
    """GitHub's anchor for a heading made of words, hyphens and spaces."""
    return "".join(c for c in title.lower() if c.isalnum() or c in " -_").replace(" ", "-")


def commands() -> list[typer.Context]:
    from proto_index.cli.app import app

    return list(walk(typer.main.get_command(app)))


def render() -> str:
    contexts = commands()
    lines = [
        "# Command-line reference",
        "",
        f"Generated from the CLI's help by `scripts/cli_reference.py`; do not edit by hand: after changing a",
        f"command or an option, run `{REGENERATE}` (tests/project/test_docs.py fails until then).",
        f"`{PROG} COMMAND --help` prints the same text. Every command that uses a store takes `--store DIR`",
        "(env `PROTO_INDEX_STORE`, default `./proto-index-store`). The guides: [README](../README.md).",
        "",
    ]
    for ctx in contexts[1:]:
        title = ctx.command_path
        lines.append(f"- [`{title}`](#{anchor(title)})")
    for ctx in contexts:
        lines += ["", f"## {ctx.command_path}", "", "```text", plain_help(ctx), "```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text(encoding="utf-8") != text:
            print(f"docs/cli.md is stale: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
