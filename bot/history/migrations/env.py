"""Alembic's environment for the history schema: runs on the connection :mod:`bot.history.migrate` hands in.

:func:`bot.history.migrate.upgrade` opens the connection, takes the migration lock and begins the
transaction; the migrations run inside it. Without a handed-in connection (writing a new revision
with :func:`bot.history.migrate.new_revision`) it connects to the configured ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from bot.history.engine import make_engine
from bot.history.schema import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(make_url(context.config.get_main_option("sqlalchemy.url", "")))
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the history migrations run online only (interview db upgrade)")
run_migrations()
