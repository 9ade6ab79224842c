"""Schema migrations of the history (Alembic, configured here: no ``alembic.ini``).

:func:`upgrade` brings a database to the newest revision; :class:`~bot.history.repository.History`
calls it on open, so the app and the CLI upgrade on start (``interview db upgrade`` does it alone).
A database made before migrations existed (the tables, no ``alembic_version``) is stamped at the
baseline revision first, then upgraded: it keeps its rows.

Several processes may open one database at once. The check, the stamp and the upgrade run in one
transaction under a lock, and the revision is read again inside it, so the first process migrates
and the others find the database at head:

- SQLite: the transaction begins with ``BEGIN IMMEDIATE`` (the database's write lock; the others
  wait in the busy timeout). SQLite's DDL is transactional, so a failed upgrade leaves nothing.
- PostgreSQL: ``pg_advisory_xact_lock`` (released with the transaction); DDL is transactional too.

A new revision: change :mod:`bot.history.schema`, then ``new_revision(url, "message")`` writes a
draft into ``migrations/versions`` from the difference to a database at head; review it.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import URL, Engine, make_url

from bot.history.engine import make_engine, sqlite_file

__all__ = [
    "BASELINE",
    "MIGRATIONS_DIR",
    "SchemaTooNew",
    "current_revision",
    "database_revision",
    "head_revision",
    "new_revision",
    "upgrade",
    "upgrade_database",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema that create_all made before migrations
# pg_advisory_xact_lock key: any fixed 64-bit number, the same in every process of this app.
_PG_LOCK_KEY = 0x1E7E_C0AC_4157_0001


class SchemaTooNew(RuntimeError):
    """The database is at a revision this version of the app does not know (a newer release made it)."""


def alembic_config(url: str | URL | None = None) -> Config:
    """Alembic's configuration for the history: the packaged scripts, and ``url`` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = make_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))  # configparser escaping
    return config


@functools.cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return head


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def current_revision(connection: Connection) -> str | None:
    """The database's revision (None: no ``alembic_version``, i.e. new or made before migrations)."""
    return MigrationContext.configure(connection).get_current_revision()


def _check_known(revision: str | None) -> None:
    if revision is not None and revision not in _known_revisions():
        raise SchemaTooNew(
            f"the history database is at schema revision {revision!r}, which this version of "
            f"interview-coach does not know (its newest is {head_revision()!r}): upgrade interview-coach"
        )


def upgrade(engine: Engine) -> str:
    """Bring the database behind ``engine`` to the newest revision (see the module docstring); returns it."""
    with engine.connect() as connection:  # fast path, no lock: already at head
        revision = current_revision(connection)
        connection.rollback()
    _check_known(revision)
    if revision == head_revision():
        return revision
    with engine.execution_options(sqlite_immediate=True).connect() as connection, connection.begin():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        revision = current_revision(connection)  # again, under the lock: another process may have migrated
        _check_known(revision)
        if revision != head_revision():
            config = alembic_config()
            config.attributes["connection"] = connection
            if revision is None and inspect(connection).has_table("users"):
                command.stamp(config, BASELINE)  # made before migrations: it is the baseline
            command.upgrade(config, "head")
    return head_revision()


def new_revision(url: str | URL, message: str) -> None:
    """Write a draft revision from the difference between :mod:`bot.history.schema` and a database at head."""
    command.revision(alembic_config(url), message=message, autogenerate=True)


def upgrade_database(url: str | URL) -> tuple[str | None, str]:
    """:func:`upgrade` the database at ``url``; returns its revision before and after."""
    engine = make_engine(make_url(url))
    try:
        with engine.connect() as connection:
            before = current_revision(connection)
            connection.rollback()
        return before, upgrade(engine)
    finally:
        engine.dispose()


def database_revision(url: str | URL) -> str | None:
    """The revision of the database at ``url``, changing nothing (None: not under migrations yet, or no file)."""
    parsed = make_url(url)
    path = sqlite_file(parsed)
    if path is not None and not path.exists():
        return None
    engine = make_engine(parsed)
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
            connection.rollback()
            return revision
    finally:
        engine.dispose()
