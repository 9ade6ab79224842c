"""Ingest: find note files, parse them into cards, sync the store. Validates before writing."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.knowledge.cards import Card
from bot.knowledge.checks import display_path, unread_questions
from bot.knowledge.notes import MAX_QUESTION_CHARS, NOTE_SUFFIXES, iter_note_files, parse_lines
from bot.knowledge.reading import NotesLines
from bot.knowledge.text import NotesDecodeError
from bot.retrieval.store import CardStore

__all__ = ["IngestError", "IngestSummary", "ParsedFile", "collect", "ingest", "source_key"]


class IngestError(Exception):
    """Bad input: a clear message for the user; nothing was written."""


@dataclass(frozen=True)
class ParsedFile:
    path: Path
    key: str
    cards: list[Card]


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
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

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
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
        }


def source_key(path: Path, knowledge_dir: Path) -> str:
    """Files under the knowledge folder are named relative to it; others by absolute path."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(knowledge_dir.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def _parse(path: Path, key: str) -> tuple[list[Card], list[str]]:
    """Parse one file as it is read (memory bounded by its cards); warnings name what was repaired
    or not read (invalid UTF-8, NUL bytes, a line too long to be a question)."""
    try:
        with path.open("rb") as fh:
            lines = NotesLines(fh, long_from=MAX_QUESTION_CHARS)
            cards = parse_lines(lines, key)
    except OSError as exc:
        raise IngestError(f"{display_path(path)}: cannot read ({exc.strerror or exc})") from exc
    except NotesDecodeError as exc:
        raise IngestError(f"{path}: not a text notes file ({exc})") from exc
    if not lines.has_text:
        raise IngestError(f"{path}: the file is empty")
    return cards, [f"{path}: {w}" for w in lines.warnings + unread_questions(lines.long_lines, cards)]


def _exists(root: Path) -> bool:
    try:
        return root.exists()
    except OSError as exc:  # e.g. a path over the system's limit (4,096 characters on Linux)
        raise IngestError(f"{display_path(root)}: {exc.strerror or exc}") from exc


def collect(
    paths: Sequence[Path], knowledge_dir: Path, *, max_cards: int | None = None
) -> tuple[list[ParsedFile], list[str]]:
    """Parse every note file under ``paths``.

    A file named explicitly must be readable notes with at least one question; inside a folder,
    empty, binary or question-less files are skipped with a warning. A folder (or the whole
    input) with no questions at all is an error. A file with more than ``max_cards`` questions is
    refused the same way (named: an error; in a folder: skipped with a warning).
    """
    if not paths:
        raise IngestError("no paths given")
    parsed: list[ParsedFile] = []
    warnings: list[str] = []
    for root in paths:
        if not _exists(root):
            raise IngestError(f"{display_path(root)}: no such file or directory")
        explicit = root.is_file()
        files = list(iter_note_files([root]))
        if root.is_dir() and not files:
            raise IngestError(f"{root}: no notes found (looked for {', '.join(NOTE_SUFFIXES)} files)")
        before = len(parsed)
        for f in files:
            key = source_key(f, knowledge_dir)
            try:
                cards, found = _parse(f, key)
            except IngestError as exc:
                if explicit:
                    raise
                warnings.append(f"skipped {exc}")
                continue
            warnings += found
            message = ""
            if not cards:
                message = f"{f}: no questions found (questions are lines ending in '?', Q:/A: pairs, headings…)"
            elif max_cards is not None and len(cards) > max_cards:
                message = (
                    f"{f}: {len(cards):,} questions, over the limit of {max_cards:,} per file "
                    "(INTERVIEW_MAX_CARDS_PER_FILE): split the file or raise the limit"
                )
            if message:
                if explicit:
                    raise IngestError(message)
                warnings.append(f"skipped {message}")
                continue
            parsed.append(ParsedFile(path=f.resolve(), key=key, cards=cards))
        if root.is_dir() and len(parsed) == before:
            raise IngestError(f"{root}: no notes with questions found")
    return parsed, warnings


def ingest(
    paths: Sequence[Path],
    store: CardStore,
    knowledge_dir: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    collected: tuple[list[ParsedFile], list[str]] | None = None,
    started: float | None = None,
    max_cards: int | None = None,
) -> IngestSummary:
    """Parse ``paths`` and sync their cards into the store (incremental and idempotent).

    Records whose note file no longer exists are removed too (deleted notes). Pass ``collected``
    (the result of :func:`collect` for the same paths) when the caller already validated them, and
    ``started`` (a ``time.perf_counter()`` value) so the summary's seconds include that parsing.
    """
    started = time.perf_counter() if started is None else started
    parsed, warnings = collected if collected is not None else collect(paths, knowledge_dir, max_cards=max_cards)
    cards = [c for p in parsed for c in p.cards]

    def gone(meta: dict[str, Any]) -> bool:
        source_file = meta.get("source_file")
        return isinstance(source_file, str) and not Path(source_file).exists()

    report = store.sync({p.key: (p.path.as_posix(), p.cards) for p in parsed}, prune=gone, progress=progress)
    return IngestSummary(
        files=len(parsed),
        cards=len(cards),
        topics=dict(Counter(c.topic for c in cards).most_common()),
        no_answer=sum(1 for c in cards if not c.has_answer),
        added=len(report.added),
        updated=len(report.updated),
        removed=len(report.removed),
        unchanged=report.unchanged,
        seconds=time.perf_counter() - started,
        warnings=warnings,
    )
