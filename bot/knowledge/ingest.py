"""Ingest: find note files, import them into cards, sync the store. Validates before writing.

The plain-function API (for the CLI, the coach and browser uploads): :func:`collect` imports
and validates, :func:`ingest` writes and returns an :class:`IngestSummary` with per-file counts
and the sections that could not be turned into questions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.knowledge.cards import FLAG_FROM_PROSE, FLAG_GENERATED, Card
from bot.knowledge.checks import display_path
from bot.knowledge.importers import SUFFIXES, Imported, ImportFailed, load, note_files
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
    cards: list[Card]
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


def _unquestioned(imported: Imported) -> tuple[str, ...]:
    out = []
    for lo in imported.leftovers:
        reason = imported.reasons.get(lo)
        out.append(imported.where(lo) + (f" ({lo.section})" if lo.section else "") + (f": {reason}" if reason else ""))
    return tuple(out)


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
    :mod:`bot.knowledge.importers`. ``prose``: a chat model writes questions for the sections of
    prose no question covers (:mod:`bot.knowledge.prose`), before files without questions are
    refused; ``prose_progress(done, total)`` counts those sections.
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
        loaded: list[tuple[Path, str, Imported | str]] = []  # a file's import, or why it was skipped
        for f in files:
            key = source_key(f, knowledge_dir)
            try:
                loaded.append((f, key, load(f, key)))
            except ImportFailed as exc:
                if explicit:
                    raise IngestError(str(exc)) from exc
                loaded.append((f, key, f"skipped {exc}"))
        if prose is not None:
            loaded = _with_prose(loaded, prose, max_cards, prose_progress)
        for f, key, imported in loaded:
            if isinstance(imported, str):
                warnings.append(imported)
                continue
            warnings += [f"{f}: {w}" for w in imported.warnings]
            message = ""
            if not imported.cards:
                message = (
                    f"{f}: no questions found (questions are lines ending in '?', Q:/A: pairs, headings, "
                    "'Term: definition' lines…)"
                )
            elif max_cards is not None and len(imported.cards) > max_cards:
                message = (
                    f"{f}: {len(imported.cards):,} questions, over the limit of {max_cards:,} per file "
                    "(INTERVIEW_MAX_CARDS_PER_FILE): split the file or raise the limit"
                )
            if message:
                if explicit:
                    raise IngestError(message)
                warnings.append(f"skipped {message}")
                continue
            parsed.append(
                ParsedFile(path=f.resolve(), key=key, cards=imported.cards, unquestioned=_unquestioned(imported))
            )
        if root.is_dir() and len(parsed) == before:
            raise IngestError(f"{root}: no notes with questions found")
    return parsed, warnings


def _with_prose(
    loaded: list[tuple[Path, str, Imported | str]],
    prose: ProseQuestions,
    max_cards: int | None,
    progress: Callable[[int, int], None] | None,
) -> list[tuple[Path, str, Imported | str]]:
    """``loaded`` with questions from prose added (files already over the card limit are left alone)."""
    todo: list[tuple[int, str, Imported]] = []
    for i, (_, key, imported) in enumerate(loaded):
        if isinstance(imported, Imported) and (max_cards is None or len(imported.cards) <= max_cards):
            todo.append((i, key, imported))
    done = prose.apply([(key, imported) for _, key, imported in todo], progress=progress)
    out = list(loaded)
    for (i, key, _), imported in zip(todo, done, strict=True):
        out[i] = (loaded[i][0], key, imported)
    return out


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
    cards = [c for p in parsed for c in p.cards]

    def gone(meta: dict[str, Any]) -> bool:
        source_file = meta.get("source_file")
        return isinstance(source_file, str) and not Path(source_file).exists()

    report = store.sync(
        {p.key: (p.path.as_posix(), p.cards) for p in parsed}, prune=gone, progress=progress, owner=owner
    )
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
        generated=sum(1 for c in cards if FLAG_GENERATED in c.flags),
        from_prose=sum(1 for c in cards if FLAG_FROM_PROSE in c.flags),
        per_file={p.key: len(p.cards) for p in parsed},
        unquestioned=[f"{p.key}: {where}" for p in parsed for where in p.unquestioned],
    )
