"""Interviewer follow-ups aimed at a key point the answer missed.

Two writers behind one interface (:class:`bot.practice.session.FollowUpWriter`): the LLM writes a real
interviewer's probe from ``prompts/followup.*``; offline, the probe names the missed key point by its
rubric label (a short noun phrase, :mod:`bot.grading.rubric`) in a fixed, grammatical template — never
the point's whole wording, which would give the answer away. Hints use the same labels
(:func:`hint_text`). The LLM writer falls back to the offline one on any failure or unusable reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.grading.safety import clean_answer
from bot.knowledge.cards import Card

__all__ = ["LLMFollowUps", "OfflineFollowUps", "follow_up_text", "hint_text", "point_label"]

MAX_FOLLOW_UP_CHARS = 300


def follow_up_text(label: str) -> str:
    """The offline interviewer's probe for a missed point named ``label`` (a noun phrase)."""
    return f"Let's go one level deeper. What can you tell me about {label}, and why does that matter here?"


def hint_text(label: str) -> str:
    """A hint that points at a key point by its label without giving its content away."""
    return f"Think about {label}. How does that fit into your answer?"


def point_label(card: Card, point: str) -> str:
    """The label of ``point``: the card's compiled rubric's when the point is one of its points, else
    one made from the point's own words."""
    from bot.grading.rubric import compile_rubric, label_for

    if card.has_answer:
        for p in compile_rubric(card).points:
            if p.text == point:
                return p.label
    return label_for(point, card.display_question)


class OfflineFollowUps:
    """Builds the probe from the missed point's label."""

    async def write(self, card: Card, answer: str, missed: Sequence[str]) -> str:
        if not missed:
            return "Let's go one level deeper: what else matters here, and why?"
        return follow_up_text(point_label(card, missed[0]))


class LLMFollowUps:
    """Asks the chat model for one probing question; offline probe when that fails."""

    def __init__(self, chat_model: Any, *, prompts_dir: Path | None = None) -> None:
        from bot.grading.prompts import load_prompt

        self._chat = chat_model
        self._system = load_prompt("followup.system", prompts_dir)
        self._user = load_prompt("followup.user", prompts_dir)
        self._offline = OfflineFollowUps()

    async def write(self, card: Card, answer: str, missed: Sequence[str]) -> str:
        from langchain_core.messages import HumanMessage, SystemMessage

        if not missed:
            return await self._offline.write(card, answer, missed)
        messages = [
            SystemMessage(self._system.format()),
            HumanMessage(
                self._user.format(question=card.display_question, answer=clean_answer(answer).text, missed=missed[0])
            ),
        ]
        try:
            reply = await self._chat.ainvoke(messages)
            text = " ".join(str(reply.content).split()).strip().strip('"').strip()
        except Exception:  # the model is down or refused: a real interviewer still asks something
            return await self._offline.write(card, answer, missed)
        if not text or len(text) > MAX_FOLLOW_UP_CHARS or missed[0].strip().lower() in text.lower():
            return await self._offline.write(card, answer, missed)
        return text
