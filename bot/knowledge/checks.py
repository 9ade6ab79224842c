"""What parsing a notes file could not use, reported instead of dropped silently."""

from __future__ import annotations

from pathlib import Path

from bot.knowledge.cards import Card
from bot.knowledge.notes import MAX_QUESTION_CHARS

__all__ = ["display_path", "unread_questions"]

SHOWN_PATH_CHARS = 120  # a longer path is shortened in messages


def display_path(path: Path | str) -> str:
    """``path`` for a message: a path of thousands of characters is shortened in the middle."""
    text = str(path)
    if len(text) <= SHOWN_PATH_CHARS:
        return text
    half = SHOWN_PATH_CHARS // 2
    return f"{text[:half]}…{text[-half:]} ({len(text):,} characters)"


def unread_questions(long_lines: dict[int, int], cards: list[Card]) -> list[str]:
    """A warning per line that ends in "?" but was too long to become a question.

    ``long_lines``: line number → length of such lines (:attr:`NotesLines.long_lines`). Such a
    line (a 100 KB paste ending in "?") stays in the answer above it, if any; the user should
    know it is not asked.
    """
    asked = {c.source.line_start for c in cards}
    return [
        f"line {number}: a line of {length:,} characters ending in '?' is not read as a question "
        f"(questions are at most {MAX_QUESTION_CHARS} characters); split it"
        for number, length in sorted(long_lines.items())
        if number not in asked
    ]
