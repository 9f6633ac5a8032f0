"""Alembic environment: migrations run on the connection proto-index hands over when it opens a store."""
from alembic import context
from sqlalchemy import create_engine

from proto_index.store.schema import Base

target_metadata = Base.metadata
config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # `alembic -x url=sqlite:///path upgrade head` from a shell, for maintainers
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database: run Alembic with -x url=sqlite:///PATH/catalog.sqlite")
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("proto-index migrations run online only")
run_migrations_online()
