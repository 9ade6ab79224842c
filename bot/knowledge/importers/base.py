"""What every importer returns, and the one error an importer raises."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.knowledge.cards import Card
from bot.knowledge.notes import Leftover

__all__ = ["ImportFailed", "Imported", "Importer", "Reading"]


class ImportFailed(Exception):
    """A file that cannot be imported: the message says which file and why."""


def _where(leftover: Leftover, page_starts: list[int]) -> str:
    if page_starts:
        first = max(1, bisect.bisect_right(page_starts, leftover.line_start))
        last = max(1, bisect.bisect_right(page_starts, leftover.line_end))
        return f"p. {first}" + (f"–{last}" if last != first else "")
    if leftover.line_end == leftover.line_start:
        return f"line {leftover.line_start}"
    return f"lines {leftover.line_start}–{leftover.line_end}"


@dataclass
class Reading:
    """The cards of one file as they are parsed: iterate once. Nothing but the card being built is
    held, so memory does not grow with the file. What else reading found — the sections that could
    not be turned into questions, what decoding repaired, the pages of a PDF — is complete once the
    iteration has ended; :class:`ImportFailed` may be raised while iterating (e.g. an empty file).

    The text of the leftovers is not kept while parsing: :meth:`sections` reads the file's lines
    again and keeps only theirs (for questions from prose, :mod:`bot.knowledge.prose`, which runs
    only with a chat model configured)."""

    cards: Iterator[Card] = field(default_factory=lambda: iter(()))
    leftovers: list[Leftover] = field(default_factory=list)
    page_starts: list[int] = field(default_factory=list)  # PDF: the first line (1-based) of each page
    warnings: list[str] = field(default_factory=list)  # what reading it repaired or could not use
    reasons: dict[Leftover, str] = field(default_factory=dict)  # why a leftover is still not a question
    # The lines the cards' and leftovers' line numbers refer to, read again (None: not line-based).
    lines: Callable[[], Iterator[str]] | None = None

    def __iter__(self) -> Iterator[Card]:
        return self.cards

    def sections(self, max_chars: int | None = None) -> dict[Leftover, list[str]]:
        """The lines of each leftover (``line_start`` to ``line_end``), read again from the file in
        one pass that keeps only those lines. Once ``max_chars`` characters are kept, reading
        stops: the last leftover kept may be short of its lines, later ones are absent (as they are
        when the file has changed since). Raises :class:`ImportFailed` (or :class:`OSError`) when
        the file cannot be read again."""
        out: dict[Leftover, list[str]] = {}
        if self.lines is None or not self.leftovers:
            return out
        wanted = sorted(self.leftovers, key=lambda lo: lo.line_start)  # disjoint runs of lines
        kept, at = 0, 0  # characters kept; the first leftover not read to its end
        lines = self.lines()
        try:
            for number, line in enumerate(lines, start=1):
                while at < len(wanted) and wanted[at].line_end < number:
                    at += 1
                if at == len(wanted) or (max_chars is not None and kept >= max_chars):
                    break
                if number >= wanted[at].line_start:
                    out.setdefault(wanted[at], []).append(line)
                    kept += len(line) + 1
        finally:
            close = getattr(lines, "close", None)
            if close is not None:
                close()
        return out

    def where(self, leftover: Leftover) -> str:
        """``lines 3–9`` or ``p. 2`` for a leftover."""
        return _where(leftover, self.page_starts)


@dataclass
class Imported:
    """The cards of one file, all read (:func:`bot.knowledge.importers.load`), and the sections of
    it that could not be turned into questions."""

    cards: list[Card]
    leftovers: list[Leftover] = field(default_factory=list)
    page_starts: list[int] = field(default_factory=list)  # PDF: the first line (1-based) of each page
    warnings: list[str] = field(default_factory=list)  # what reading it repaired or could not use

    @classmethod
    def of(cls, reading: Reading) -> Imported:
        cards = list(reading)
        return cls(cards, reading.leftovers, reading.page_starts, reading.warnings)

    def where(self, leftover: Leftover) -> str:
        """``lines 3–9`` or ``p. 2`` for a leftover."""
        return _where(leftover, self.page_starts)


class Importer(Protocol):
    """Reads one kind of notes file into cards, a card at a time."""

    name: str
    suffixes: tuple[str, ...]

    def read(self, path: Path, key: str) -> Reading:
        """Cards of ``path``, named ``key`` in ids and sources, as they are parsed.
        Raises :class:`ImportFailed` (possibly while iterating)."""
        ...
