"""Interviewer follow-ups aimed at a key point the answer missed.

Two writers behind one interface (:class:`bot.practice.session.FollowUpWriter`): the LLM writes a real
interviewer's probe from ``prompts/followup.*``; offline, the probe is built from the missed key
point's most informative words (never its whole wording, which would give the answer away).
The LLM writer falls back to the offline one on any failure or unusable reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.grading.keypoints import stem, stopwords, tokens, word_weight
from bot.grading.safety import clean_answer
from bot.knowledge.cards import Card

__all__ = ["LLMFollowUps", "OfflineFollowUps", "probe_terms"]

MAX_FOLLOW_UP_CHARS = 300


def probe_terms(point: str, *, exclude: str = "", n: int = 3) -> list[str]:
    """The ``n`` most informative words of ``point`` not already in ``exclude`` (question + answer),
    in their order of appearance."""
    seen_stems = {stem(t) for t in tokens(exclude)}
    candidates: dict[str, tuple[float, int]] = {}
    stop = stopwords()
    for i, t in enumerate(tokens(point)):
        if t in stop or len(t) < 3 or t.isdigit():
            continue
        s = stem(t)
        if s in seen_stems or any(stem(c) == s for c in candidates):
            continue
        candidates[t] = (word_weight(t), i)
    best = sorted(candidates.items(), key=lambda kv: (-kv[1][0], kv[1][1]))[:n]
    return [t for t, _ in sorted(best, key=lambda kv: kv[1][1])]


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class OfflineFollowUps:
    """Builds the probe from the missed point's key terms."""

    async def write(self, card: Card, answer: str, missed: Sequence[str]) -> str:
        point = missed[0] if missed else ""
        terms = probe_terms(point, exclude=f"{card.display_question} {answer}")
        if not terms:
            return "Let's go one level deeper: what else matters here, and why?"
        return f"Let's go one level deeper. Where do {_join(terms)} come into this, and why do they matter?"


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
