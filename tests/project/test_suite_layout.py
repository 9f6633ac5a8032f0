"""The suite's layout: a folder of tests/ per part of proto_index (and project/ for project-wide checks),
test file names unique across folders, and no module importing a test module.

pytest imports test files in its default ``prepend`` mode: each test file by its bare name, its folder
put first on sys.path, so two test files with one name would clash (tests/conftest.py puts tests/ on
sys.path for the shared helpers, which the CLI and Ray worker processes import the same way)."""
from __future__ import annotations

import ast
from collections import Counter

from suite_paths import ROOT, TESTS

FOLDERS_OUTSIDE_THE_PACKAGE = {"project", "fixtures"}


def _test_files():
    return sorted(TESTS.rglob("test_*.py"))


def test_every_test_file_is_in_a_folder_named_after_a_part_of_the_package():
    misplaced = [str(p.relative_to(TESTS)) for p in _test_files()
                 if p.parent == TESTS or not ((ROOT / "proto_index" / p.parent.name).exists()
                                              or p.parent.name in FOLDERS_OUTSIDE_THE_PACKAGE)]
    assert misplaced == []
    assert len(_test_files()) > 80  # the suite was found at all


def test_test_file_names_are_unique_across_folders():
    counts = Counter(p.name for p in _test_files())
    assert [name for name, n in counts.items() if n > 1] == []


def test_no_module_imports_a_test_module():
    """Shared code lives in helper modules (cli_store.py, store_checks.py, ...), never in a test file."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(TESTS)} imports {n}" for n in names if n.split(".")[0].startswith("test_")]
    assert found == []
