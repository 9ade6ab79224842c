"""Questions asked in other words when a card comes back for review, so recognising the wording is not enough.

Offline: a deterministic template variant per card and review count ("What is X?" → "How would you
explain X to a colleague?"). With a chat model configured: the model rewrites the question (prompt
files ``prompts/rephrase.*``), cached per card version; the template variant when it fails. The
rephrased card keeps its id (history and scheduling are per card) and carries the ``rephrased``
flag; the original wording stays in the store, one click away in the app.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from bot.knowledge.cards import Card

__all__ = ["FLAG_REPHRASED", "LLMRephraser", "OfflineRephraser", "Rephraser", "rephrased", "template_variant"]

FLAG_REPHRASED = "rephrased"
MAX_REPHRASE_CHARS = 300
CACHE_SIZE = 4096  # card versions

_Templates = tuple[re.Pattern[str], tuple[str, ...]]
_TEMPLATES: tuple[_Templates, ...] = (
    (
        re.compile(r"^what (?P<verb>is|are) (?P<x>.+?)\s*\??$", re.I),
        (
            "How would you explain {x} to a colleague?",
            "In your own words, what {verb} {x}?",
            "What should someone new to the field know about {x}?",
            "Give a short, precise account of {x}.",
        ),
    ),
    (
        re.compile(
            r"^(?:what is the difference between|compare|contrast) (?P<x>.+?) (?:and|with|vs\.?) (?P<y>.+?)[.?]?$", re.I
        ),
        ("How do {x} and {y} differ?", "What sets {x} apart from {y}?", "When would you pick {x} over {y}, and why?"),
    ),
    (
        re.compile(r"^(?:explain|describe) (?P<x>.+?)[.?]?$", re.I),
        (
            "Walk me through {x}.",
            "How would you explain {x} to a colleague?",
            "Give an interviewer a clear account of {x}.",
        ),
    ),
    (
        re.compile(r"^how (?:does|do) (?P<x>.+?) work\s*\??$", re.I),
        ("Walk me through the mechanics of {x}.", "What happens inside {x}, step by step?"),
    ),
    (
        re.compile(r"^when (?:would|should|do) you use (?P<x>.+?)\s*\??$", re.I),
        (
            "In which situations is {x} the right choice?",
            "Give a case where you would reach for {x}, and one where you would not.",
        ),
    ),
)


def _seed(card_id: str) -> int:
    return int(hashlib.sha1(card_id.encode("utf-8")).hexdigest()[:8], 16)


def template_variant(question: str, card_id: str, reviews: int) -> str | None:
    """Another wording of ``question`` (deterministic per card and review count), or None."""
    text = " ".join(question.split())
    for pattern, variants in _TEMPLATES:
        m = pattern.match(text)
        if m:
            parts = {k: v.strip() for k, v in m.groupdict().items()}
            parts = {k: (v.lower() if k == "verb" else v) for k, v in parts.items()}
            return variants[(_seed(card_id) + reviews) % len(variants)].format(**parts)
    return None


def rephrased(card: Card, question: str | None) -> Card:
    """The card asked as ``question`` (unchanged when None or the same words)."""
    if not question or question.strip() == card.display_question.strip():
        return card
    return card.model_copy(update={"display_question": question, "flags": [*card.flags, FLAG_REPHRASED]})


class Rephraser(Protocol):
    async def rephrase(self, cards: Sequence[Card], reviews: dict[str, int]) -> list[Card]: ...


class OfflineRephraser:
    """Template variants; questions no template fits are asked as written."""

    async def rephrase(self, cards: Sequence[Card], reviews: dict[str, int]) -> list[Card]:
        return [rephrased(c, template_variant(c.display_question, c.id, reviews.get(c.id, 0))) for c in cards]


class LLMRephraser:
    """The chat model rewrites each question once per card version; the template variant on failure."""

    def __init__(self, chat_model: Any, *, prompts_dir: Path | None = None) -> None:
        from bot.grading.prompts import load_prompt

        self._chat = chat_model
        self._system = load_prompt("rephrase.system", prompts_dir)
        self._user = load_prompt("rephrase.user", prompts_dir)
        self._offline = OfflineRephraser()
        self._cache: dict[tuple[str, str], str] = {}

    async def _one(self, card: Card, reviews: int) -> Card:
        from langchain_core.messages import HumanMessage, SystemMessage

        key = (card.id, card.content_hash())
        if key not in self._cache:
            messages = [
                SystemMessage(self._system.format()),
                HumanMessage(self._user.format(question=card.display_question, answer=card.answer[:1500])),
            ]
            try:
                reply = await self._chat.ainvoke(messages)
                text = " ".join(str(reply.content).split()).strip().strip('"').strip()
            except Exception:  # the model is down: the template variant still changes the words
                text = ""
            if not _usable(text, card):
                (fallback,) = await self._offline.rephrase([card], {card.id: reviews})
                return fallback
            if len(self._cache) >= CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = text
        return rephrased(card, self._cache[key])

    async def rephrase(self, cards: Sequence[Card], reviews: dict[str, int]) -> list[Card]:
        import asyncio

        return list(await asyncio.gather(*(self._one(c, reviews.get(c.id, 0)) for c in cards)))


def _usable(text: str, card: Card) -> bool:
    """A rewording: a question of sane length that does not give the answer away verbatim."""
    if not text or len(text) > MAX_REPHRASE_CHARS or text.lower() == card.display_question.lower():
        return False
    answer = " ".join(card.answer.split()).lower()
    return not (len(answer) > 40 and answer[:40] in text.lower())


def make_rephraser(settings: Any, chat_model: Callable[[Any], Any] | None = None) -> Rephraser:
    """The LLM rephraser when an LLM grader is configured, else the offline templates."""
    if getattr(settings, "use_llm_grader", False):
        from bot.grading.pipeline.build import make_chat_model

        return LLMRephraser((chat_model or make_chat_model)(settings), prompts_dir=settings.prompts_dir)
    return OfflineRephraser()
