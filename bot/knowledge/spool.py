"""Cards set aside between parsing and storing, without holding them all in memory.

:func:`bot.knowledge.ingest.collect` parses every file before anything is written (a bad file
refuses the whole ingest), so the cards of a large notes file must wait somewhere: a
:class:`CardSpool` keeps them as JSON lines in memory while small (the shipped notes) and in an
anonymous temporary file beyond :data:`SPOOL_MEMORY_BYTES`. It can be iterated as often as
needed; each pass reads a card at a time. Indexing works too (an 8-byte offset a card is kept).
"""

from __future__ import annotations

import tempfile
import weakref
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from bot.knowledge.cards import Card

__all__ = ["SPOOL_MEMORY_BYTES", "CardSpool"]

SPOOL_MEMORY_BYTES = 1 << 20  # past this much JSON, the cards go to a temporary file


class CardSpool(Sequence[Card]):
    """An append-only sequence of cards, read back a card at a time (in order, as often as needed)."""

    def __init__(self, cards: Iterable[Card] = (), *, memory_bytes: int | None = None) -> None:
        limit = SPOOL_MEMORY_BYTES if memory_bytes is None else memory_bytes
        self._file: Any = tempfile.SpooledTemporaryFile(max_size=limit, mode="w+b")  # noqa: SIM115 (closed by close or GC)
        self._close = weakref.finalize(self, self._file.close)
        self._end = 0
        self._starts = array("q")  # where each card's line begins
        for card in cards:
            self.append(card)

    def append(self, card: Card) -> None:
        self._file.seek(self._end)
        self._file.write(card.model_dump_json().encode("utf-8") + b"\n")
        self._starts.append(self._end)
        self._end = self._file.tell()

    def __len__(self) -> int:
        return len(self._starts)

    def _read(self, offset: int) -> tuple[Card, int]:
        self._file.seek(offset)
        line = self._file.readline()
        return Card.model_validate_json(line), self._file.tell()

    @overload
    def __getitem__(self, index: int) -> Card: ...

    @overload
    def __getitem__(self, index: slice) -> list[Card]: ...

    def __getitem__(self, index: int | slice) -> Card | list[Card]:
        if isinstance(index, slice):
            return [self._read(self._starts[i])[0] for i in range(*index.indices(len(self)))]
        return self._read(self._starts[index])[0]

    def __iter__(self) -> Iterator[Card]:
        offset = 0
        while offset < self._end:  # each pass keeps its own place: passes may interleave
            card, offset = self._read(offset)
            yield card

    def __repr__(self) -> str:
        return f"CardSpool({len(self)} cards)"

    def close(self) -> None:
        """Free the memory or the temporary file now (otherwise when the spool is collected)."""
        self._close()
