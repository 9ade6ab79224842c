"""What every importer returns, and the one error an importer raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.knowledge.cards import Card
from bot.knowledge.notes import Leftover

__all__ = ["ImportFailed", "Imported", "Importer"]


class ImportFailed(Exception):
    """A file that cannot be imported: the message says which file and why."""


@dataclass
class Imported:
    """The cards of one file, and the sections of it that could not be turned into questions."""

    cards: list[Card]
    leftovers: list[Leftover] = field(default_factory=list)
    pages: dict[int, int] = field(default_factory=dict)  # line (1-based) -> PDF page, for leftovers
    warnings: list[str] = field(default_factory=list)  # what reading it repaired or could not use
    text: str = ""  # the text the cards' and leftovers' line numbers refer to ("" when not line-based)
    reasons: dict[Leftover, str] = field(default_factory=dict)  # why a leftover is still not a question

    def where(self, leftover: Leftover) -> str:
        """``lines 3–9`` or ``p. 2`` for a leftover."""
        if self.pages:
            first, last = self.pages.get(leftover.line_start, 1), self.pages.get(leftover.line_end, 1)
            return f"p. {first}" + (f"–{last}" if last != first else "")
        if leftover.line_end == leftover.line_start:
            return f"line {leftover.line_start}"
        return f"lines {leftover.line_start}–{leftover.line_end}"


class Importer(Protocol):
    """Reads one kind of notes file into cards."""

    name: str
    suffixes: tuple[str, ...]

    def load(self, path: Path, key: str) -> Imported:
        """Cards of ``path``, named ``key`` in ids and sources. Raises :class:`ImportFailed`."""
        ...
