"""The layers and the types as checks: import-linter's contracts (pyproject.toml, [tool.importlinter])
and mypy ([tool.mypy]) run on proto_index/ and must pass; both come with the ``test`` extra."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from suite_paths import ROOT



def _run(tool: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """``python args`` in the repository root; a missing ``tool`` fails with how to install it."""
    found = subprocess.run([sys.executable, "-c", f"import {tool}"], capture_output=True)
    if found.returncode:
        pytest.fail(f"{tool} is not installed: pip install -e '.[test]'", pytrace=False)
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_the_layers_and_acyclic_contracts_are_kept():
    result = _run("importlinter", "-c", "import sys; from importlinter.cli import lint_imports_command; "
                  "sys.exit(lint_imports_command())", "--no-cache", timeout=300)
    report = result.stdout + result.stderr
    contracts = (ROOT / "pyproject.toml").read_text().count("[[tool.importlinter.contracts]]")
    assert contracts >= 3 and f"Contracts: {contracts} kept, 0 broken." in report, (
        "an import crosses the layers of pyproject.toml's [tool.importlinter] (move the shared piece down "
        "rather than importing up):\n" + report[report.find("Broken contracts"):].strip()
    )
    assert result.returncode == 0, report


def _imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_nothing_below_the_cli_imports_it():
    """cli/ (installed as proto_index.cli) lies outside proto_index/, where import-linter does not look:
    it is the top layer, so no library, service or migration module may import it."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for folder in ("proto_index", "migrations")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in sorted(_imported_modules(path))
        if name == "proto_index.cli" or name.startswith(("proto_index.cli.", "cli.")) or name == "cli"
    ]
    assert not offenders, "the CLI is the top layer:\n" + "\n".join(offenders)


def test_mypy_is_clean_on_proto_index():
    result = _run("mypy", "-m", "mypy", "--no-error-summary", "--cache-dir", str(ROOT / ".mypy_cache"), timeout=900)
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 0 and not errors, (
        f"mypy ([tool.mypy] in pyproject.toml) found {len(errors)} error(s):\n" + result.stdout + result.stderr
    )
