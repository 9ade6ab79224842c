"""A drill session: which questions, in what order, and what happened to each. Framework-free.

Clock and randomness are parameters so sessions are reproducible in tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.cards import Card

__all__ = ["DrillSession", "SessionConfig", "Turn", "choose_cards"]


@dataclass(frozen=True)
class SessionConfig:
    n_questions: int = 5
    topics: tuple[str, ...] = ()  # empty = all topics
    important_first: bool = True


@dataclass
class Turn:
    card: Card
    answer: str
    answered_at: datetime


def choose_cards(cards: Sequence[Card], config: SessionConfig, rng: random.Random) -> list[Card]:
    """Filter by topic, shuffle with ``rng``, put important cards first if asked, cap the count."""
    pool = [c for c in cards if not config.topics or c.topic in config.topics]
    pool = sorted(pool, key=lambda c: c.id)  # independent of store order
    rng.shuffle(pool)
    if config.important_first:
        pool.sort(key=lambda c: not c.important)  # stable: shuffled order kept within each group
    return pool[: max(0, config.n_questions)]


@dataclass
class DrillSession:
    """Ask the chosen cards one by one and keep every answer."""

    cards: list[Card]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    turns: list[Turn] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        cards: Sequence[Card],
        config: SessionConfig,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> DrillSession:
        chosen = choose_cards(cards, config, rng or random.Random())
        return cls(cards=chosen, clock=clock or (lambda: datetime.now(UTC)))

    @property
    def total(self) -> int:
        return len(self.cards)

    @property
    def index(self) -> int:
        """0-based index of the current question (== total when finished)."""
        return len(self.turns)

    @property
    def finished(self) -> bool:
        return self.index >= self.total

    def current(self) -> Card | None:
        return None if self.finished else self.cards[self.index]

    def answer(self, text: str) -> Turn:
        card = self.current()
        if card is None:
            raise RuntimeError("the session is finished")
        turn = Turn(card=card, answer=text, answered_at=self.clock())
        self.turns.append(turn)
        return turn
