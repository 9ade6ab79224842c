"""Spaced repetition: grade → FSRS rating, one FSRS scheduler, the review queue, leeches.

The scheduling itself is py-fsrs (:class:`fsrs.Scheduler`); this module only decides what a
question's outcome is worth and which cards to ask. Clock and randomness are parameters.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import fsrs
from fsrs import Rating

from bot.grading.base import BANDS, ClaimStatus, Grade
from bot.knowledge.cards import Card
from bot.practice.attempts import QuestionOutcome

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = [
    "CardScheduler",
    "Leech",
    "RatingThresholds",
    "coverage",
    "find_leeches",
    "fsrs_card_id",
    "rating_for",
    "select_review",
    "to_utc",
]


@dataclass(frozen=True)
class RatingThresholds:
    """Score bands (0–10) for each rating, and the coverage below which an answer is a fail."""

    again_below: float = BANDS.partial  # the weak/wrong bands
    hard_below: float = BANDS.good  # partial
    easy_from: float = BANDS.excellent  # excellent; good in between
    min_coverage: float = 0.25  # share of key points hit

    def __post_init__(self) -> None:
        if not 0 <= self.again_below <= self.hard_below <= self.easy_from <= 10:
            raise ValueError("thresholds must satisfy 0 <= again_below <= hard_below <= easy_from <= 10")
        if not 0 <= self.min_coverage <= 1:
            raise ValueError("min_coverage must be within 0..1")

    @classmethod
    def from_settings(cls, settings: Settings) -> RatingThresholds:
        return cls(
            again_below=settings.again_below,
            hard_below=settings.hard_below,
            easy_from=settings.easy_from,
            min_coverage=settings.min_coverage,
        )


def coverage(grade: Grade) -> float | None:
    """Share of the reference's key points the answer hit (None without a checklist)."""
    if not grade.claims:
        return None
    return sum(c.status is ClaimStatus.HIT for c in grade.claims) / len(grade.claims)


def rating_for(outcome: QuestionOutcome, thresholds: RatingThresholds = RatingThresholds()) -> Rating | None:
    """The FSRS rating a finished question earns, or None when it must not be reviewed at all.

    Skipped, never graded, or reference revealed before answering → Again. An ``ungraded``
    final grade (our failure, not the user's) → None. A contradicted key point or coverage below
    ``min_coverage`` → Again. Otherwise the score's band, lowered one step per hint (floor Again).
    """
    if outcome.skipped or outcome.revealed_before_answer or outcome.final is None:
        return Rating.Again
    grade = outcome.final
    if not grade.graded or grade.score is None:
        return None
    if any(c.status is ClaimStatus.CONTRADICTED for c in grade.claims):
        return Rating.Again
    hit_share = coverage(grade)
    if hit_share is not None and hit_share < thresholds.min_coverage:
        return Rating.Again
    score = grade.score
    if score < thresholds.again_below:
        rating = Rating.Again
    elif score < thresholds.hard_below:
        rating = Rating.Hard
    elif score < thresholds.easy_from:
        rating = Rating.Good
    else:
        rating = Rating.Easy
    return Rating(max(int(Rating.Again), int(rating) - max(0, outcome.hints_used)))


def to_utc(moment: datetime) -> datetime:
    """An aware UTC datetime (naive input is taken to be UTC already)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def fsrs_card_id(card_id: str) -> int:
    """A stable integer for fsrs (its ids are ints; ours are content hashes)."""
    return int(hashlib.sha1(card_id.encode("utf-8")).hexdigest()[:12], 16)


class CardScheduler:
    """py-fsrs with fuzzing off, so schedules are exact functions of ratings and times."""

    def __init__(
        self,
        desired_retention: float = 0.9,
        *,
        learning_steps: Sequence[timedelta] = (timedelta(minutes=1), timedelta(minutes=10)),
        relearning_steps: Sequence[timedelta] = (timedelta(minutes=10),),
        maximum_interval: int = 36500,
    ) -> None:
        self.fsrs = fsrs.Scheduler(
            desired_retention=desired_retention,
            learning_steps=tuple(learning_steps),
            relearning_steps=tuple(relearning_steps),
            maximum_interval=maximum_interval,
            enable_fuzzing=False,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> CardScheduler:
        return cls(desired_retention=settings.desired_retention)

    def new_state(self, card_id: str, now: datetime) -> fsrs.Card:
        return fsrs.Card(card_id=fsrs_card_id(card_id), due=to_utc(now))

    def review(self, state: fsrs.Card | None, card_id: str, rating: Rating, now: datetime) -> fsrs.Card:
        """The card's state after a review at ``now`` (``state`` None = a new card)."""
        when = to_utc(now)
        current = state if state is not None else self.new_state(card_id, when)
        updated, _log = self.fsrs.review_card(current, rating, review_datetime=when)
        return updated

    def retrievability(self, state: fsrs.Card | None, now: datetime) -> float:
        """Predicted recall probability at ``now``; 0 for a card never reviewed."""
        if state is None:
            return 0.0
        return float(self.fsrs.get_card_retrievability(state, current_datetime=to_utc(now)))


def select_review(
    cards: Sequence[Card],
    states: Mapping[str, fsrs.Card],
    now: datetime,
    n: int,
    rng: random.Random,
) -> list[Card]:
    """Due cards first (most overdue first), then new cards (important first, shuffled), at most ``n``."""
    when = to_utc(now)
    due = sorted(
        (c for c in cards if c.id in states and to_utc(states[c.id].due) <= when),
        key=lambda c: (to_utc(states[c.id].due), c.id),
    )
    new = sorted((c for c in cards if c.id not in states), key=lambda c: c.id)
    rng.shuffle(new)
    new.sort(key=lambda c: not c.important)  # stable: the shuffle is kept within each group
    return (due + new)[: max(0, n)]


@dataclass(frozen=True)
class Leech:
    """A card failed again and again: the note probably needs rewriting."""

    card_id: str
    failures: int
    suggestion: str


def find_leeches(
    again_counts: Mapping[str, int], threshold: int = 6, cards: Mapping[str, Card] | None = None
) -> list[Leech]:
    """Cards rated Again at least ``threshold`` times, most failed first."""
    leeches = []
    for card_id, failures in sorted(again_counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if failures < threshold:
            continue
        card = (cards or {}).get(card_id)
        where = f" “{card.display_question}” ({card.source.describe()})" if card else ""
        suggestion = (
            f"Failed {failures} times: rewrite the note{where}: split it into smaller questions "
            "or make the answer shorter and more concrete."
        )
        leeches.append(Leech(card_id=card_id, failures=failures, suggestion=suggestion))
    return leeches
