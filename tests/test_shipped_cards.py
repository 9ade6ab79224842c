"""The shipped notes keep every card they had before concept cards: same ids, questions, answers.

``tests/data/shipped_cards.json`` was generated with the parser on main before concept cards
existed. New (generated) cards may appear, but only outside the answers of those cards.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.knowledge.notes import parse_file

SNAPSHOT = Path(__file__).parent / "data" / "shipped_cards.json"


def _row(card: object) -> dict[str, object]:
    from bot.knowledge.cards import Card

    assert isinstance(card, Card)
    return {
        "id": card.id,
        "question": card.question,
        "display_question": card.display_question,
        "answer": card.answer,
        "extra": card.extra,
        "flags": card.flags,
        "lines": [card.source.line_start, card.source.line_end],
    }


def test_every_shipped_card_is_still_there_unchanged(real_notes: Path) -> None:
    before = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    cards = parse_file(real_notes, "ml-interview-notes.txt")
    now = {c.id: _row(c) for c in cards}
    missing = [row["question"] for row in before if row["id"] not in now]
    assert missing == []
    changed = [row["question"] for row in before if now[row["id"]] != row]
    assert changed == []


def test_new_cards_only_outside_existing_answers(real_notes: Path) -> None:
    before = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    old_ids = {row["id"] for row in before}
    spans = [range(row["lines"][0], row["lines"][1] + 1) for row in before]
    cards = parse_file(real_notes, "ml-interview-notes.txt")
    inside = [c.display_question for c in cards if c.id not in old_ids and any(c.source.line_start in s for s in spans)]
    assert inside == []


def test_the_shipped_knowledge_folder_imports_without_warnings(real_notes: Path) -> None:
    from bot.knowledge.ingest import collect

    parsed, warnings = collect([real_notes.parent], real_notes.parent)
    assert warnings == []
    assert [p.key for p in parsed] == ["ml-interview-notes.txt"]
