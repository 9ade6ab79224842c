"""Schema migrations (bot/history/migrate.py, ``interview db``): a database made by the previous release
upgrades in place and keeps its rows, the baseline is exactly the models, concurrent first opens are safe.

The previous release's databases are in tests/data: ``history_v0_sqlite.sql`` (a full SQLite dump) and
``history_v0_postgres.sql`` (the DDL it ran on PostgreSQL; the rows are copied from the SQLite dump).
"""

from __future__ import annotations

import sqlite3
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Connection, Engine, MetaData, create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bot.adapters.cli import cli
from bot.history import migrate
from bot.history.repository import History
from bot.history.schema import Base
from tests.db_fixtures import T0, make_attempt

DATA = Path(__file__).parent / "data"
SQLITE_V0 = DATA / "history_v0_sqlite.sql"
POSTGRES_V0 = DATA / "history_v0_postgres.sql"
TABLES = ["users", "sessions", "card_states", "attempts", "outcomes"]


def _engine(url: str) -> Engine:
    return create_engine(url, poolclass=NullPool)


def _load_sqlite_dump(path: Path) -> None:
    with closing(sqlite3.connect(path)) as con:
        con.executescript(SQLITE_V0.read_text(encoding="utf-8"))


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _aware(value: Any) -> Any:
    """SQLite hands back naive UTC datetimes; Postgres must not read them in its session time zone."""
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def _copy_rows(source: Engine, target: Connection) -> None:
    src, dst = MetaData(), MetaData()
    src.reflect(source)
    dst.reflect(target)
    with source.connect() as conn:
        for name in TABLES:
            rows = [{k: _aware(v) for k, v in r._mapping.items()} for r in conn.execute(select(src.tables[name]))]
            target.execute(dst.tables[name].insert(), rows)
    for name in ("users", "attempts", "outcomes"):  # what a dump restore does: serials continue after the rows
        target.execute(text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"))


@pytest.fixture
def legacy_url(db_url: str, tmp_path: Path) -> str:
    """``db_url`` holding a database as the previous release (before migrations) left it."""
    if make_url(db_url).get_backend_name() == "sqlite":
        database = make_url(db_url).database
        assert database is not None
        _load_sqlite_dump(Path(database))
        return db_url
    source_path = tmp_path / "v0-source.sqlite3"
    _load_sqlite_dump(source_path)
    source, target = _engine(f"sqlite:///{source_path}"), _engine(db_url)
    try:
        with target.begin() as conn:
            for statement in _statements(POSTGRES_V0.read_text(encoding="utf-8")):
                conn.exec_driver_sql(statement)
            _copy_rows(source, conn)
    finally:
        source.dispose()
        target.dispose()
    return db_url


def _dump(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    engine = _engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {
                name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for name, t in meta.tables.items()
            }
    finally:
        engine.dispose()


def _schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_a_database_from_the_previous_release_upgrades_in_place(legacy_url: str) -> None:
    before = _dump(legacy_url)
    assert sorted(before) == sorted(TABLES)  # no alembic_version: made before migrations
    assert [len(before[t]) for t in TABLES] == [2, 3, 3, 5, 3]

    with History(legacy_url) as history:
        assert history.revision == migrate.head_revision()
        after = _dump(legacy_url)
        assert after.pop("alembic_version") == [(migrate.head_revision(),)]
        assert after.pop("sign_outs") == []  # 0002: a new, empty table
        assert after.pop("calibration_examples") == []  # 0003: a new, empty table
        assert after.pop("failed_sign_ins") == []  # 0004: a new, empty table
        assert after == before  # every row kept, unchanged
        assert _schema_diff(history.engine) == []  # and the schema is exactly today's models

        alice = history.user_id("alice")
        assert alice is not None
        assert [s.id for s in history.sessions(alice)] == ["s-alice-1", "s-alice-2"]
        resumed = history.unfinished_session(alice)
        assert resumed is not None and resumed.id == "s-alice-2" and resumed.next_card_id == "c2"
        assert [r.card_id for r in history.reviews(alice)] == ["c1", "c2"]
        assert set(history.card_states(alice)) == {"c1", "c2"}
        old_ids = [a.id for a in history.attempts(alice)]
        new_id = history.record_attempt(alice, make_attempt("s-alice-2", "c4", at=T0 + timedelta(days=1, hours=1)))
        assert new_id > max(old_ids)  # writes go on after the old rows
        assert history.ensure_user("carol") > max(r[0] for r in before["users"])

    with History(legacy_url) as again:  # a second start finds it at head and changes nothing
        assert again.revision == migrate.head_revision()
        assert len(again.attempts(alice)) == len(old_ids) + 1


def test_the_migrations_make_exactly_the_models(history: History) -> None:
    assert migrate.BASELINE == "0001" and history.revision == migrate.head_revision() == "0004"
    assert _schema_diff(history.engine) == []
    tables = set(_dump(history.url.render_as_string(hide_password=False)))
    assert tables == {*TABLES, "sign_outs", "calibration_examples", "failed_sign_ins", "alembic_version"}


def test_concurrent_first_opens_of_one_database_migrate_once(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    runs: list[str] = []
    real_upgrade: Callable[..., None] = command.upgrade

    def counting_upgrade(config: Any, revision: str, **kwargs: Any) -> None:
        runs.append(revision)
        real_upgrade(config, revision, **kwargs)

    monkeypatch.setattr(command, "upgrade", counting_upgrade)
    n = 4
    start = threading.Barrier(n)

    def open_history(_: int) -> str:
        start.wait()
        with History(db_url) as history:
            history.ensure_user("alice")
            return history.revision

    with ThreadPoolExecutor(n) as pool:
        revisions = list(pool.map(open_history, range(n)))
    assert revisions == [migrate.head_revision()] * n
    assert runs == ["head"]  # one process migrated; the others waited for the lock and found it at head
    dump = _dump(db_url)
    assert dump["alembic_version"] == [(migrate.head_revision(),)] and len(dump["users"]) == 1


def test_a_database_from_a_newer_release_is_refused_with_a_clear_message(db_url: str) -> None:
    History(db_url).close()
    engine = _engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(migrate.SchemaTooNew, match=r"revision '9999'.*upgrade interview-coach"):
        History(db_url)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_interview_db_upgrade_and_current(isolated_state: Path) -> None:
    code, out, _ = run("db", "current")
    assert code == 0 and "revision none" in out and not isolated_state.exists()  # looking creates nothing
    isolated_state.mkdir(parents=True)
    database = isolated_state / "history.sqlite3"
    _load_sqlite_dump(database)  # the previous release's database in the data dir
    rows = _dump(f"sqlite:///{database}")

    head = migrate.head_revision()  # pinned by test_the_migrations_make_exactly_the_models
    code, out, _ = run("db", "current")
    assert code == 0 and f"revision none (the newest is {head}: `interview db upgrade`)" in out
    code, out, _ = run("db", "upgrade")
    upgraded = f"sqlite:///{database}: upgraded from no revision to revision {head} (the newest)"
    assert code == 0 and out.strip() == upgraded
    code, out, _ = run("db", "upgrade")
    assert code == 0 and f"already at revision {head} (the newest)" in out
    code, out, _ = run("db", "current")
    assert code == 0 and f"revision {head} (the newest)" in out
    after = _dump(f"sqlite:///{database}")
    assert after.pop("alembic_version") == [(head,)] and after.pop("sign_outs") == []
    assert after.pop("calibration_examples") == [] and after.pop("failed_sign_ins") == [] and after == rows

    with closing(sqlite3.connect(database)) as con, con:
        con.execute("UPDATE alembic_version SET version_num = '9999'")
    code, _, err = run("db", "upgrade")
    assert code == 1 and "schema revision '9999'" in err and "upgrade interview-coach" in err


def _open_new_history_repeatedly(args: tuple[str, int, Any]) -> list[str]:
    """One process of the race below: wait for the others, then open fresh databases ``opens`` times."""
    folder, opens, barrier = args
    errors: list[str] = []
    for i in range(opens):
        barrier.wait()  # every process opens database i at the same instant
        try:
            with History(f"sqlite:///{folder}/history-{i}.sqlite3") as history:
                history.ensure_user("alice")
        except Exception:  # the defect: 'database is locked' during table creation
            errors.append(traceback.format_exc()[-2500:])
    return errors


def test_processes_opening_a_new_history_file_at_once_never_see_database_is_locked(tmp_path: Path) -> None:
    """Issue 14 (3): four processes, ten new history files, each opened by all four at the same instant."""
    import multiprocessing

    processes, opens = 4, 10
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(processes)
        with context.Pool(processes) as pool:
            results = pool.map(_open_new_history_repeatedly, [(str(tmp_path), opens, barrier)] * processes)
    errors = [e for r in results for e in r]
    assert errors == []
    for i in range(opens):
        dump = _dump(f"sqlite:///{tmp_path}/history-{i}.sqlite3")
        assert dump["alembic_version"] == [(migrate.head_revision(),)] and len(dump["users"]) == 1
