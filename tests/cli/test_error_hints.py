"""Library errors never name command-line flags; the CLI adds them from the error's structured hint."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import proto_index
from proto_index import ScoringOptions, Store
from proto_index.cli import hints
from proto_index.cli.app import app
from proto_index.errors import REPLACE, AlreadyExists, Hint, InvalidInput, StoreLocked
from proto_index.store.storage import Storage
from proto_index.options import EnvironmentOptions, PrototypeOptions

PACKAGE = Path(proto_index.__file__).parent
FLAG = re.compile(r"(?<![\w}-])--?[a-zA-Z][a-zA-Z-]*")
"""A command-line flag as a user types it: ``--replace``, ``-k``."""
NOT_MESSAGES = {
    "embed/demo_training.py",  # a script with its own argparse command line
    "outputs/report/html.py",  # the report page tells its reader which command adds what
}


def _documentation(tree: ast.AST) -> set[int]:
    """ids of the string literals that document (a bare string statement: docstrings and attribute notes)."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def _library_strings():
    """(file, line, text) of every string literal in proto_index/ that is not documentation; an
    f-string as written, its fields in braces (so ``f"{name}-tgap"`` is no flag)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in NOT_MESSAGES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _documentation(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                skip |= {id(part) for part in node.values}
                yield rel, node.lineno, ast.unparse(node)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                yield rel, node.lineno, node.value


def test_no_library_string_names_a_command_line_flag():
    found = [f"{rel}:{line}: {text!r}" for rel, line, text in _library_strings() if FLAG.search(text)]
    assert found == []


def test_the_scan_would_catch_a_flag():
    assert FLAG.search("already exists (use --replace)") and FLAG.search("lower -k")
    assert not FLAG.search("clap-tiny-demo") and not FLAG.search("a - b") and not FLAG.search("10 - 3")


def test_every_hint_the_library_gives_has_a_cli_spelling():
    options = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Hint" and node.args:
                assert isinstance(node.args[0], ast.Constant), f"{path}: Hint's option must be a literal"
                options.add(node.args[0].value)
    assert options and options <= set(hints.FLAGS), options - set(hints.FLAGS)
    assert all(FLAG.search(spelling) for spelling in hints.FLAGS.values())


def test_message_adds_the_flag_and_keeps_the_library_message():
    e = AlreadyExists("class set 'urban' already exists", hint=REPLACE)
    assert str(e) == "class set 'urban' already exists"
    assert hints.message(e) == "class set 'urban' already exists (use --replace)"
    e = InvalidInput("TGAP with N=9 needs at least 9 corpus windows; the corpus has 3",
                     hint=Hint("n", "ingest more audio or lower {option}"))
    assert hints.message(e) == "TGAP with N=9 needs at least 9 corpus windows; the corpus has 3 (ingest more audio or lower --n)"
    assert hints.message(InvalidInput("plain")) == "plain"


@pytest.fixture
def store(tmp_path, corpus_dir):
    from fakes import BandEncoder

    with Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder()) as s:
        s.ingest([corpus_dir])
        s.add_classes("urban", ["siren", "dog bark"])
    return tmp_path / "store"


def _cli_error(*args) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stderr
    return result.stderr.strip()


def test_library_errors_name_the_concept_and_the_cli_the_flag(store):
    from fakes import BandEncoder

    with Store.open(store, encoder=BandEncoder()) as s:
        with pytest.raises(InvalidInput) as info:
            s.build_prototypes("urban", PrototypeOptions(method="tgap", n=100))
    assert str(info.value) == "TGAP with N=100 needs at least 100 corpus windows; the corpus has 24"
    assert info.value.hint == Hint("n", "ingest more audio or lower {option}")
    assert _cli_error("prototypes", "build", "urban", "--method", "tgap", "--n", "100", "--store", store) == (
        "error: TGAP with N=100 needs at least 100 corpus windows; the corpus has 24 (ingest more audio or lower --n)")

    with Store.open(store) as s:
        with pytest.raises(AlreadyExists) as info:
            s.add_classes("urban", ["a"])
    assert (str(info.value), info.value.hint) == ("class set 'urban' already exists", REPLACE)
    assert _cli_error("classes", "add", "urban", "-l", "a", "--store", store) == \
        "error: class set 'urban' already exists (use --replace)"


def test_a_held_writer_lock_hints_at_waiting(store):
    holder = Storage.open(store)
    try:
        with holder.writer():
            with pytest.raises(StoreLocked) as info:
                with Storage.open(store).writer():
                    pass
            assert "--wait" not in str(info.value) and info.value.hint.option == "wait_s"
            assert _cli_error("remove", "nothing.wav", "--store", store).endswith(
                "wait for it to finish (or pass --wait SECONDS)")
    finally:
        holder.close()


def test_a_missing_background_hints_at_adding_one(store, tmp_path):
    from fakes import BandEncoder

    with Store.open(store, encoder=BandEncoder()) as s:
        s.build_prototypes("urban")
        s.add_environment("park", EnvironmentOptions(text="park"))
        with pytest.raises(InvalidInput) as info:
            s.classify([(tmp_path / "clip.wav", "park")], "urban-zero-shot", scoring=ScoringOptions(adapt="audio"))
    assert str(info.value) == "environment 'park': no background recordings"
    assert hints.message(info.value) == ("environment 'park': no background recordings "
                                         "(add some with `proto-index env add NAME --audio PATH`)")
