"""The documentation keeps up with the code: the CLI reference is current, every command and option is
described by hand somewhere, every relative link and anchor resolves, README states CI's test command."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from suite_paths import ROOT

DOCS = ROOT / "docs"
README = ROOT / "README.md"


def _reference_module():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli_reference = _reference_module()


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def handwritten_text() -> str:
    """README and docs/, less the generated reference (which names everything by construction)."""
    return "\n".join(p.read_text(encoding="utf-8") for p in pages() if p != cli_reference.TARGET)


def without_code(text: str) -> str:
    """Markdown text with fenced blocks and inline code spans blanked out (links there are not links)."""
    text = re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return cli_reference.anchor(heading.strip())


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    text = re.sub(r"^```.*?^```[^\n]*$", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    for match in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.M):
        base = slug(match.group(1))
        name, n = base, 0
        while name in found:  # a repeated heading gets -1, -2, ... as on GitHub
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def test_the_cli_reference_is_current():
    expected = cli_reference.render()
    current = cli_reference.TARGET.read_text(encoding="utf-8") if cli_reference.TARGET.exists() else ""
    assert current == expected, f"docs/cli.md is stale: run `{cli_reference.REGENERATE}` and commit it"


def undocumented(text: str) -> list[str]:
    """The commands and long options of the CLI that ``text`` never names. A command counts as named as
    `proto-index prototypes build` or in backquotes; an option once any page names it, whichever
    command it belongs to. Hidden options are left out, as --help leaves them out."""
    missing = []
    for ctx in cli_reference.commands()[1:]:
        path = ctx.command_path.removeprefix(f"{cli_reference.PROG} ")
        if not re.search(rf"(proto-index |`){re.escape(path)}(?![\w-])", text):
            missing.append(f"command `{ctx.command_path}`")
        for param in ctx.command.params:
            if getattr(param, "hidden", False):
                continue
            longs = [o for o in (*param.opts, *getattr(param, "secondary_opts", [])) if o.startswith("--")]
            if not longs or longs == ["--help"]:
                continue
            if not any(re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text) for o in longs):
                missing.append(f"option {' / '.join(longs)} of `{ctx.command_path}`")
    return missing


def test_every_command_and_option_is_described_by_hand():
    missing = undocumented(handwritten_text())
    assert not missing, "not described in README.md or docs/ (besides docs/cli.md):\n" + "\n".join(missing)


def test_an_undescribed_command_or_option_is_found():
    text = handwritten_text().replace("--tau-grid", "").replace("proto-index gap", "").replace("`gap", "")
    assert undocumented(text) == [
        "option --tau-grid of `proto-index calibrate`",
        "option --tau-grid of `proto-index evaluate`",
        "command `proto-index gap`",
    ]


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for match in re.finditer(r"!?\[[^\]]*\]\(([^)\s]+)\)", without_code(page.read_text(encoding="utf-8"))):
        target = match.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {file}")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{target}: no heading with anchor #{fragment} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_readme_links_every_docs_page():
    linked = set(re.findall(r"\]\(docs/([^)#\s]+)", README.read_text(encoding="utf-8")))
    assert {p.name for p in DOCS.glob("*.md")} <= linked


def test_readme_states_the_test_command_ci_runs():
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    (line,) = [l for l in (ROOT / "scripts" / "test.sh").read_text().splitlines() if l.startswith("exec ")]
    command = line.removeprefix("exec ").replace(' "$@"', "").strip()
    readme = README.read_text(encoding="utf-8")
    assert "scripts/test.sh" in readme and f"`{command}`" in readme, command


def test_the_link_checker_sees_a_broken_anchor_and_a_missing_file(tmp_path):
    page = tmp_path / "a.md"
    page.write_text("# Title\n\n## Huge archives: `--format parquet-dataset`\n\n"
                    "[ok](#huge-archives---format-parquet-dataset) [bad](#nowhere) [gone](b.md)\n"
                    "`[not a link](c.md)`\n```\n[nor this](d.md)\n```\n", encoding="utf-8")
    assert anchors(page) == {"title", "huge-archives---format-parquet-dataset"}
    targets = re.findall(r"\]\(([^)]+)\)", without_code(page.read_text()))
    assert targets == ["#huge-archives---format-parquet-dataset", "#nowhere", "b.md"]
