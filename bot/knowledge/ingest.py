"""Ingest: find note files, import them into cards, sync the store. Validates before writing.

The plain-function API (for the CLI, the coach and browser uploads): :func:`collect` imports
and validates, :func:`ingest` writes and returns an :class:`IngestSummary` with per-file counts
and the sections that could not be turned into questions.

Memory does not grow with the notes: files are parsed a card at a time into a
:class:`~bot.knowledge.spool.CardSpool` (in memory while small, else a temporary file), and the
store embeds and writes them a batch at a time (:meth:`bot.retrieval.store.CardStore.sync`).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.knowledge.cards import FLAG_FROM_PROSE, FLAG_GENERATED, Card
from bot.knowledge.checks import display_path
from bot.knowledge.importers import SUFFIXES, ImportFailed, Reading, note_files, read
from bot.knowledge.spool import CardSpool
from bot.retrieval.store import SHARED, CardStore

if TYPE_CHECKING:
    from bot.knowledge.prose import ProseQuestions

__all__ = ["IngestError", "IngestSummary", "ParsedFile", "collect", "ingest", "source_key"]


class IngestError(Exception):
    """Bad input: a clear message for the user; nothing was written."""


@dataclass(frozen=True)
class ParsedFile:
    path: Path
    key: str
    cards: Sequence[Card]  # from collect: a CardSpool (read a card at a time; iterate rather than index)
    unquestioned: tuple[str, ...] = ()  # "lines 3–9 (section)": text that became no question


@dataclass
class IngestSummary:
    files: int
    cards: int
    topics: dict[str, int]
    no_answer: int
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    reused: int = 0  # vectors taken from an ingest killed while embedding (not embedded again)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    generated: int = 0  # cards whose question was generated (from a concept, or by a model from prose)
    from_prose: int = 0  # of those, questions a chat model wrote about prose (answers quoted from it)
    per_file: dict[str, int] = field(default_factory=dict)  # source key -> cards
    unquestioned: list[str] = field(default_factory=list)  # "file: lines 3–9 (section)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "cards": self.cards,
            "topics": self.topics,
            "no_answer": self.no_answer,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "reused": self.reused,
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
            "generated": self.generated,
            "from_prose": self.from_prose,
            "per_file": self.per_file,
            "unquestioned": self.unquestioned,
        }


def source_key(path: Path, knowledge_dir: Path) -> str:
    """Files under the knowledge folder are named relative to it; others by absolute path."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(knowledge_dir.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def _unquestioned(reading: Reading) -> tuple[str, ...]:
    out = []
    for lo in reading.leftovers:
        reason = reading.reasons.get(lo)
        out.append(reading.where(lo) + (f" ({lo.section})" if lo.section else "") + (f": {reason}" if reason else ""))
    return tuple(out)


def _spool(reading: Reading, max_cards: int | None) -> tuple[CardSpool, int]:
    """The file's cards set aside (no more than ``max_cards``: past the cap they are only counted)."""
    spool, count = CardSpool(), 0
    try:
        for card in reading:
            count += 1
            if max_cards is None or count <= max_cards:
                spool.append(card)
    except BaseException:
        spool.close()
        raise
    return spool, count


@dataclass
class _Loaded:
    """One file read: its reading (leftovers, warnings), its cards set aside and how many it has."""

    path: Path
    key: str
    reading: Reading
    cards: CardSpool
    count: int


def _exists(root: Path) -> bool:
    try:
        return root.exists()
    except OSError as exc:  # e.g. a path over the system's limit (4,096 characters on Linux)
        raise IngestError(f"{display_path(root)}: {exc.strerror or exc}") from exc


def collect(
    paths: Sequence[Path],
    knowledge_dir: Path,
    *,
    max_cards: int | None = None,
    prose: ProseQuestions | None = None,
    prose_progress: Callable[[int, int], None] | None = None,
) -> tuple[list[ParsedFile], list[str]]:
    """Parse every note file under ``paths``.

    A file named explicitly must be readable notes with at least one question; inside a folder,
    empty, binary or question-less files are skipped with a warning. A folder (or the whole
    input) with no questions at all is an error. A file with more than ``max_cards`` questions is
    refused the same way (named: an error; in a folder: skipped with a warning). Formats: see
    :mod:`bot.knowledge.importers`. Each file's cards come back in a
    :class:`~bot.knowledge.spool.CardSpool`: parsing holds one card at a time, whatever the size.
    ``prose``: a chat model writes questions for the sections of prose no question covers
    (:mod:`bot.knowledge.prose`; their text is read again from the file, only then), before files
    without questions are refused; ``prose_progress(done, total)`` counts those sections.
    """
    if not paths:
        raise IngestError("no paths given")
    parsed: list[ParsedFile] = []
    warnings: list[str] = []
    for root in paths:
        if not _exists(root):
            raise IngestError(f"{display_path(root)}: no such file or directory")
        explicit = root.is_file()
        files = list(note_files(root))
        if root.is_dir() and not files:
            raise IngestError(f"{root}: no notes found (looked for {', '.join(SUFFIXES)} files)")
        before = len(parsed)
        loaded: list[_Loaded | str] = []  # a file read, or why it was skipped
        for f in files:
            key = source_key(f, knowledge_dir)
            try:
                reading = read(f, key)
                cards, count = _spool(reading, max_cards)
            except ImportFailed as exc:
                if explicit:
                    _close(loaded)
                    raise IngestError(str(exc)) from exc
                loaded.append(f"skipped {exc}")
                continue
            loaded.append(_Loaded(f, key, reading, cards, count))
        if prose is not None:
            try:
                _with_prose(loaded, prose, max_cards, prose_progress)
            except BaseException:
                _close(loaded)
                raise
        for at, entry in enumerate(loaded):
            if isinstance(entry, str):
                warnings.append(entry)
                continue
            f, reading, count = entry.path, entry.reading, entry.count
            warnings += [f"{f}: {w}" for w in reading.warnings]
            message = ""
            if not count:
                message = (
                    f"{f}: no questions found (questions are lines ending in '?', Q:/A: pairs, headings, "
                    "'Term: definition' lines…)"
                )
            elif max_cards is not None and count > max_cards:
                message = (
                    f"{f}: {count:,} questions, over the limit of {max_cards:,} per file "
                    "(INTERVIEW_MAX_CARDS_PER_FILE): split the file or raise the limit"
                )
            if message:
                entry.cards.close()
                if explicit:
                    _close(loaded[at + 1 :])
                    raise IngestError(message)
                warnings.append(f"skipped {message}")
                continue
            parsed.append(
                ParsedFile(path=f.resolve(), key=entry.key, cards=entry.cards, unquestioned=_unquestioned(reading))
            )
        if root.is_dir() and len(parsed) == before:
            raise IngestError(f"{root}: no notes with questions found")
    return parsed, warnings


def _close(loaded: Sequence[_Loaded | str]) -> None:
    for entry in loaded:
        if isinstance(entry, _Loaded):
            entry.cards.close()


def _with_prose(
    loaded: list[_Loaded | str],
    prose: ProseQuestions,
    max_cards: int | None,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Questions from prose added to ``loaded``'s files, in line order among their cards (files
    already over the card limit are left alone); their leftovers become those still left."""
    todo = [
        entry
        for entry in loaded
        if isinstance(entry, _Loaded) and entry.reading.leftovers and (max_cards is None or entry.count <= max_cards)
    ]
    if not todo:
        return
    written = prose.apply([(entry.key, entry.reading) for entry in todo], progress=progress)
    for entry, new in zip(todo, written, strict=True):
        if not new:
            continue
        cards = CardSpool(heapq.merge(entry.cards, new, key=lambda c: c.source.line_start))  # a card at a time
        entry.cards.close()
        entry.cards, entry.count = cards, entry.count + len(new)


def ingest(
    paths: Sequence[Path],
    store: CardStore,
    knowledge_dir: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    collected: tuple[list[ParsedFile], list[str]] | None = None,
    started: float | None = None,
    owner: str = SHARED,
    max_cards: int | None = None,
) -> IngestSummary:
    """Parse ``paths`` and sync their cards into the store (incremental and idempotent).

    Records whose note file no longer exists are removed too (deleted notes). Pass ``collected``
    (the result of :func:`collect` for the same paths) when the caller already validated them, and
    ``started`` (a ``time.perf_counter()`` value) so the summary's seconds include that parsing;
    ``owner``: who sees the cards (everyone by default; a user's name for their own uploads).
    """
    started = time.perf_counter() if started is None else started
    parsed, warnings = collected if collected is not None else collect(paths, knowledge_dir, max_cards=max_cards)

    def gone(meta: dict[str, Any]) -> bool:
        source_file = meta.get("source_file")
        return isinstance(source_file, str) and not Path(source_file).exists()

    report = store.sync(
        {p.key: (p.path.as_posix(), p.cards) for p in parsed}, prune=gone, progress=progress, owner=owner
    )
    topics: Counter[str] = Counter()
    no_answer = generated = from_prose = 0
    for card in (c for p in parsed for c in p.cards):  # a card at a time
        topics[card.topic] += 1
        no_answer += not card.has_answer
        generated += FLAG_GENERATED in card.flags
        from_prose += FLAG_FROM_PROSE in card.flags
    return IngestSummary(
        files=len(parsed),
        cards=sum(len(p.cards) for p in parsed),
        topics=dict(topics.most_common()),
        no_answer=no_answer,
        added=len(report.added),
        updated=len(report.updated),
        removed=len(report.removed),
        unchanged=report.unchanged,
        reused=report.reused,
        seconds=time.perf_counter() - started,
        warnings=warnings,
        generated=generated,
        from_prose=from_prose,
        per_file={p.key: len(p.cards) for p in parsed},
        unquestioned=[f"{p.key}: {where}" for p in parsed for where in p.unquestioned],
    )
