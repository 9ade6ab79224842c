"""One owner of an embedded data folder at a time.

The embedded Chroma store (``PersistentClient``) is not safe to write from two processes: two
apps, or an app and a CLI ingest, on one data folder corrupted it (hung searches, segfaults).
:func:`data_lock` takes an exclusive lock file in the data dir (``filelock``; the OS drops it when
the process dies, so a killed owner never leaves it stuck) and records who holds it beside it
(``owner.json``: pid, host, command, since), so a refusal can name the owner.

- ``interview web`` holds it for its lifetime and refuses to start when another process has it;
- writes from the CLI (``interview ingest``) wait for it up to ``INTERVIEW_LOCK_WAIT`` seconds;
- read-only commands take no lock; with ``CHROMA_HOST`` (a Chroma server owns the files) no lock
  is taken at all: that is how several processes share one store (README, "Running several
  processes").

The lock is per process and re-entrant: a process that holds it (the app) may take it again (the
app's first-start ingest) without waiting for itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = ["LOCK_FILE", "OWNER_FILE", "DataDirBusy", "Owner", "data_lock", "read_owner"]

LOCK_FILE = "chroma.lock"
OWNER_FILE = "owner.json"
SEVERAL_PROCESSES = (
    "To run several processes on one store, start a Chroma server (`chroma run --path DIR --port 8001`) "
    "and set CHROMA_HOST/CHROMA_PORT in every process, with DATABASE_URL pointing at one PostgreSQL "
    "for the history (README: 'Running several processes')."
)


class DataDirBusy(RuntimeError):
    """Another process owns the embedded data folder."""


@dataclass(frozen=True)
class Owner:
    pid: int
    host: str
    command: str
    since: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} ({self.command}, since {self.since})"


@dataclass
class _Held:
    lock: Any  # filelock.FileLock
    count: int


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


def read_owner(data_dir: Path) -> Owner | None:
    """Who holds (or last held) the data folder's lock, as recorded beside it."""
    try:
        raw = json.loads((data_dir / OWNER_FILE).read_text(encoding="utf-8"))
        return Owner(int(raw["pid"]), str(raw["host"]), str(raw["command"]), str(raw["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_owner(data_dir: Path, command: str) -> None:
    owner = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "since": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = data_dir / f".{OWNER_FILE}.{os.getpid()}"
    tmp.write_text(json.dumps(owner), encoding="utf-8")
    os.replace(tmp, data_dir / OWNER_FILE)


def _command() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv else "python"


def _busy_message(data_dir: Path, waited: float) -> str:
    owner = read_owner(data_dir)
    who = owner.describe() if owner is not None else "another process"
    after = f" (waited {waited:g}s)" if waited > 0 else ""
    return f"the data folder {data_dir} is in use by {who}{after}: one process at a time owns it. {SEVERAL_PROCESSES}"


def _acquire(lock: Any, data_dir: Path, wait: float, on_wait: Callable[[str], None] | None) -> Any:
    from filelock import Timeout

    try:
        lock.acquire(timeout=0)
    except Timeout:
        if wait <= 0:
            raise DataDirBusy(_busy_message(data_dir, 0)) from None
        if on_wait is not None:
            owner = read_owner(data_dir)
            who = owner.describe() if owner is not None else "another process"
            on_wait(f"waiting up to {wait:g}s for the data folder {data_dir}, in use by {who}")
        try:
            lock.acquire(timeout=wait)
        except Timeout:
            raise DataDirBusy(_busy_message(data_dir, wait)) from None
    return lock


@contextlib.contextmanager
def data_lock(
    settings: Settings,
    *,
    wait: float = 0.0,
    command: str | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Own the embedded data folder for the ``with`` block (nothing with ``CHROMA_HOST``).

    ``wait``: seconds to wait for another owner (0: refuse at once); ``on_wait`` gets a message
    once when waiting starts. Raises :class:`DataDirBusy` naming the owner.
    """
    if settings.chroma_host:
        yield
        return
    from filelock import FileLock

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    with _guard:  # held while acquiring: two threads of one process never take two file locks
        held = _held.get(data_dir)
        if held is None:
            held = _held[data_dir] = _Held(
                _acquire(FileLock(data_dir / LOCK_FILE, thread_local=False), data_dir, wait, on_wait), 0
            )
            _write_owner(data_dir, command or _command())
        held.count += 1
    try:
        yield
    finally:
        with _guard:
            held.count -= 1
            if held.count == 0:
                del _held[data_dir]
                with contextlib.suppress(OSError):
                    (data_dir / OWNER_FILE).unlink()
                held.lock.release()
