"""Names added by two processes at once, and database errors as domain errors (one place: store/db_errors.py)."""
from __future__ import annotations

import multiprocessing
import sqlite3
import traceback
from pathlib import Path

import pytest
from fakes import BandEncoder

import proto_index
from proto_index import Store
from proto_index.errors import (
    REPLACE,
    CatalogConflict,
    DiskFull,
    ProtoIndexError,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReadOnly,
)
from proto_index.store.db_errors import domain_error
from proto_index.store.schema import ClassSet
from proto_index.store.storage import Storage
from proto_index.options import EnvironmentOptions, PrototypeOptions

CLI = Path(proto_index.__file__).parent.parent / "cli"


def _add(kind: str, store: str, variant: int, barrier, results) -> None:
    """In a child process: open the store, wait for the other child, add the same name."""
    try:
        with Store.open(store, encoder=BandEncoder()) as s:
            barrier.wait(timeout=60)
            if kind == "class set":
                s.add_classes("urban", [f"siren{variant}", "dog bark"])
            elif kind == "prototype set":
                s.build_prototypes("c", PrototypeOptions(name="p"))
            else:
                s.add_environment("park", EnvironmentOptions(text=("park", "garden")[variant]))
        results.put((variant, "ok", None, None))
    except ProtoIndexError as e:
        results.put((variant, type(e).__name__, str(e), e.hint))
    except BaseException:  # a traceback would reach the user: the test fails with it
        results.put((variant, "crash", traceback.format_exc(), None))


def _race(kind: str, store: Path) -> list[tuple]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_add, args=(kind, str(store), i, barrier, results)) for i in range(2)]
    for p in procs:
        p.start()
    out = sorted(results.get(timeout=180) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    return out


@pytest.fixture
def store(tmp_path):
    with Store.init(tmp_path / "store", model="fake-bands", encoder=BandEncoder()) as s:
        s.add_classes("c", ["siren", "dog bark"])
    return tmp_path / "store"


@pytest.mark.parametrize("kind, name", [("class set", "urban"), ("prototype set", "p"), ("environment", "park")])
def test_two_processes_adding_one_name_exactly_one_wins(store, kind, name):
    results = _race(kind, store)
    outcomes = sorted(r[1] for r in results)
    assert outcomes == ["AlreadyExists", "ok"], results
    loser = next(r for r in results if r[1] == "AlreadyExists")
    assert (loser[2], loser[3]) == (f"{kind} {name!r} already exists", REPLACE)
    winner = next(r[0] for r in results if r[1] == "ok")
    with Store.open(store) as s:
        if kind == "class set":
            assert [(c.name, c.labels) for c in s.class_sets() if c.name == "urban"] == [("urban", [f"siren{winner}", "dog bark"])]
        elif kind == "prototype set":
            assert [p.name for p in s.prototype_sets()] == ["p"]
        else:
            assert [(e.name, e.description) for e in s.environments()] == [("park", ("park", "garden")[winner])]


def test_a_write_that_breaks_a_catalog_rule_is_a_domain_error(store):
    storage = Storage.open(store)
    with pytest.raises(CatalogConflict, match=r"^the catalog refused a write \(UNIQUE constraint failed: class_sets.name\); "
                                              r"nothing was changed$"):
        with storage.session() as s:  # bypasses the name check, as a writer ignoring the lock would
            s.add(ClassSet(name="c", template="{label}"))
    with Store.open(store) as s:
        assert [c.name for c in s.class_sets()] == ["c"]
    storage.close()


@pytest.mark.parametrize("error, kind, message", [
    (sqlite3.OperationalError("database or disk is full"), DiskFull, "the disk holding /s is full (database or disk is full)"),
    (sqlite3.OperationalError("attempt to write a readonly database"), StoreReadOnly,
     "/s is read-only: this command writes to the store"),
    (sqlite3.OperationalError("database is locked"), StoreLocked,
     "the catalog of /s stayed locked by another process (database is locked)"),
    (sqlite3.DatabaseError("file is not a database"), StoreCorrupt,
     "/s/catalog.sqlite cannot be read as a proto-index catalog (file is not a database); restore it from a backup"),
    (sqlite3.DatabaseError("database disk image is malformed"), StoreCorrupt,
     "/s/catalog.sqlite cannot be read as a proto-index catalog (database disk image is malformed); restore it from a backup"),
    (sqlite3.IntegrityError("FOREIGN KEY constraint failed"), CatalogConflict,
     "the catalog refused a write (FOREIGN KEY constraint failed); nothing was changed"),
    (sqlite3.OperationalError("unable to open database file"), StoreError, "the store's catalog failed (unable to open database file)"),
])
def test_database_errors_map_to_domain_errors(error, kind, message):
    mapped = domain_error(error, Path("/s/catalog.sqlite"))
    assert type(mapped) is kind and str(mapped) == message


def test_a_catalog_damaged_after_opening_is_a_store_error(store):
    with Store.open(store) as s:
        s.class_sets()
        s._storage.engine.dispose()  # the next query reconnects to the damaged file
        (store / "catalog.sqlite").write_bytes(b"not a database" * 500)
        for wal in store.glob("catalog.sqlite-*"):
            wal.unlink()
        with pytest.raises(StoreCorrupt, match="cannot be read as a proto-index catalog"):
            s.class_sets()


def test_the_cli_knows_only_domain_errors():
    assert not [p.name for p in CLI.glob("*.py") if "sqlalchemy" in p.read_text(encoding="utf-8")]
