"""Helpers the ``interview`` commands share: errors, progress bars, paths, the history's user and clock."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from bot.settings import Settings

__all__ = [
    "NOW_OPTION",
    "BadInput",
    "ProgressLines",
    "ServiceUnavailable",
    "history_user",
    "known_cards",
    "note_paths",
    "parse_now",
    "progress_bar",
]


class BadInput(click.ClickException):
    """Input the command cannot use (a notes file, a data set, an empty store): exit 2, as for bad usage."""

    exit_code = 2


class ServiceUnavailable(click.ClickException):
    """A service the command needs (LangSmith) does not answer: exit 3."""

    exit_code = 3


@contextlib.contextmanager
def progress_bar(label: str, unit: str = "items") -> Iterator[Callable[[int, int], None]]:
    """Progress on stderr: a transient bar on a terminal, else a line per 5% with the rate (logs, CI)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield ProgressLines(label, unit)
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


class ProgressLines:
    """``label: done/total (pct%, rate unit/s)`` on stderr, at the first call, every 5% and at the end."""

    STEP = 0.05

    def __init__(self, label: str, unit: str, clock: Callable[[], float] | None = None) -> None:
        import time

        self._label, self._unit = label, unit
        self._clock = clock or time.perf_counter
        self._started = self._clock()
        self._shown = -1.0

    def __call__(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        if self._shown >= 0 and share < 1.0 and share - self._shown < self.STEP:
            return
        self._shown = share
        elapsed = max(self._clock() - self._started, 1e-9)
        click.echo(f"{self._label}: {done:,}/{total:,} ({share:.0%}, {done / elapsed:,.1f} {self._unit}/s)", err=True)


def note_paths(settings: Settings, paths: Sequence[str]) -> list[Path]:
    return [Path(p) for p in paths] if paths else [settings.knowledge_dir]


def history_user(settings: Settings, user: str | None) -> str:
    """The user whose history to read: --user, the only configured user, or the local user."""
    from bot.history.users import LOCAL_USER, configured_users

    try:
        users = configured_users(settings)
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    if not users:
        if user not in (None, LOCAL_USER):
            raise click.BadParameter(
                f"no users are configured (INTERVIEW_USERS is empty): the only user is {LOCAL_USER!r}",
                param_hint="--user",
            )
        return LOCAL_USER
    if user is None:
        if len(users) == 1:
            return next(iter(users))
        raise click.UsageError("several users are configured: choose one with --user")
    if user not in users:
        raise click.BadParameter(f"no user {user!r} in INTERVIEW_USERS", param_hint="--user")
    return user


def known_cards(settings: Settings) -> list[Any]:
    """The store's cards (the notes folder's when there is no store): topics, questions, notes."""
    if settings.chroma_host or settings.chroma_path.exists():
        try:
            from bot.retrieval.store import open_store

            found = open_store(settings).all_cards()
            if found:
                return found
        except Exception as exc:  # the store is optional here: fall back to the notes
            click.echo(f"warning: card store unavailable ({type(exc).__name__}); reading the notes", err=True)
    from bot.knowledge.ingest import IngestError, collect

    try:
        parsed, _ = collect([settings.knowledge_dir], settings.knowledge_dir, max_cards=settings.max_cards_per_file)
    except IngestError:
        return []
    return [c for p in parsed for c in p.cards]


def parse_now(value: str | None) -> Any:
    from datetime import UTC, datetime

    if value is None:
        return datetime.now(UTC)
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


NOW_OPTION = click.option("--now", "now_iso", hidden=True, help="Pretend it is this ISO time (tests).")
