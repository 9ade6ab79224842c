"""Failed sign-ins in the history database: the sign-in throttle's counts, shared by every app process.

Several ``interview web`` processes on one history database (``DATABASE_URL``, or one SQLite file)
count one user's wrong passwords together, and a restart does not reset them. Rows older than the
throttle window are deleted as new failures come in.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine, make_url

from bot.history import migrate
from bot.history.engine import make_engine
from bot.history.schema import FailedSignInRow

__all__ = ["FailedSignIns"]


class FailedSignIns:
    """The :class:`~bot.adapters.auth.FailureStore` of the sign-in throttle, in the history database."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(make_url(url))
        migrate.upgrade(self.engine)

    def add(self, keys: Sequence[str], at: float, *, forget_before: float) -> None:
        with self.engine.execution_options(sqlite_immediate=True).begin() as conn:
            conn.execute(delete(FailedSignInRow).where(FailedSignInRow.at < forget_before))
            conn.execute(insert(FailedSignInRow), [{"key": k, "at": at} for k in keys])

    def since(self, key: str, at: float) -> list[float]:
        with self.engine.connect() as conn:
            query = select(FailedSignInRow.at).where(FailedSignInRow.key == key, FailedSignInRow.at >= at)
            return sorted(conn.execute(query).scalars())

    def clear(self, key: str) -> None:
        with self.engine.execution_options(sqlite_immediate=True).begin() as conn:
            conn.execute(delete(FailedSignInRow).where(FailedSignInRow.key == key))

    def close(self) -> None:
        self.engine.dispose()
