"""Opening the SQLite catalog: engine settings and automatic Alembic upgrades."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, inspect, text

import proto_index.migrations as migrations_pkg
from proto_index.store import db_errors

HEAD = "head"
SCHEMA_REVISION = "0004"
"""The newest migration's revision (the chain is 0001, 0002, 0003, 0005, 0004), written here so that
opening an up-to-date catalog does not import Alembic and scan the migrations (~0.2 s of every
command); a test checks it against them."""


def create_catalog_engine(db_path: Path, read_only: bool = False) -> Engine:
    """A SQLite engine with foreign keys on, WAL journaling and a busy timeout for concurrent readers;
    its database errors reach callers as domain errors (:mod:`proto_index.store.db_errors`).

    ``read_only`` (a store on a read-only folder): opened so that SQLite writes nothing, not even
    the WAL side files: ``immutable`` when no WAL is pending, else ``mode=ro`` (needs the -shm file).
    """
    if read_only:
        wal = Path(f"{db_path}-wal")
        mode = "mode=ro" if wal.exists() and wal.stat().st_size else "immutable=1"
        uri = f"file:{quote(str(Path(db_path).absolute()))}?{mode}"
        engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=30,
                                                                             check_same_thread=False))

        @event.listens_for(engine, "connect")
        def _ro_pragmas(dbapi_conn, _record):
            dbapi_conn.execute("PRAGMA query_only=ON")

        return db_errors.install(engine, Path(db_path))
    engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    return db_errors.install(engine, Path(db_path))


def alembic_config():
    """An Alembic config pointing at the migrations shipped inside the package (works from a wheel)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations_pkg.__file__).parent))
    return cfg


def upgrade(engine: Engine, revision: str = HEAD) -> None:
    """Bring the catalog's schema to ``revision`` (the latest by default), keeping its rows."""
    from alembic import command

    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The catalog's schema revision, or None for an empty database."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str:
    """The revision an up-to-date catalog is at (:data:`SCHEMA_REVISION`)."""
    return SCHEMA_REVISION


def known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of the shipped migrations (a newer proto-index's is not)."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def migrations_head() -> str:
    """The newest revision among the shipped migrations, as Alembic finds it."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migration ships with the package")  # a broken installation, not a user error
    return head
