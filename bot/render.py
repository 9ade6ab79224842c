"""Markdown for the chat and terminal: framework-free, so every adapter shows the same thing."""

from __future__ import annotations

from bot.cards import Card

__all__ = ["question_md", "reference_md", "source_line"]


def source_line(card: Card) -> str:
    s = card.source
    lines = f"line {s.line_start}" if s.line_start == s.line_end else f"lines {s.line_start}–{s.line_end}"
    return f"{s.path}, {lines}"


def question_md(card: Card, k: int, n: int) -> str:
    star = " · ⭐ important" if card.important else ""
    return f"**Question {k} of {n}** · _{card.topic}_{star}\n\n### {card.display_question}"


def quote(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


def reference_md(card: Card) -> str:
    if not card.has_answer:
        return f"_Your notes have no answer for this question ({source_line(card)})._"
    return f"**From your notes** ({source_line(card)}):\n\n{quote(card.answer)}"
