"""Web sign-outs in the history database: a user's tokens issued before their ``not_before`` are dead.

Read on every authenticated request, so the value is cached for a moment (``ttl_s``); a sign-out in
this process is seen at once, one in another process sharing the database within ``ttl_s``.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine, make_url

from bot.history import migrate
from bot.history.engine import make_engine
from bot.history.schema import SignOutRow

__all__ = ["SignOuts"]

TTL_S = 2.0


class SignOuts:
    """Per-user "not before" times (epoch seconds) for sign-in tokens."""

    def __init__(self, url: str, *, ttl_s: float = TTL_S) -> None:
        self.engine: Engine = make_engine(make_url(url))
        migrate.upgrade(self.engine)
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, float | None]] = {}  # name -> (read at, not_before)
        self._lock = threading.Lock()

    def sign_out(self, user_name: str, at: float | None = None) -> float:
        """Revoke every token of ``user_name`` issued before ``at`` (default now); returns it."""
        when = time.time() if at is None else at
        with self.engine.execution_options(sqlite_immediate=True).begin() as conn:
            conn.execute(delete(SignOutRow).where(SignOutRow.user_name == user_name))
            conn.execute(insert(SignOutRow).values(user_name=user_name, not_before=when))
        with self._lock:
            self._cache[user_name] = (time.monotonic(), when)
        return when

    def not_before(self, user_name: str) -> float | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(user_name)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        with self.engine.connect() as conn:
            value = conn.execute(select(SignOutRow.not_before).where(SignOutRow.user_name == user_name)).scalar()
        with self._lock:
            self._cache[user_name] = (now, value)
        return value

    def close(self) -> None:
        self.engine.dispose()
