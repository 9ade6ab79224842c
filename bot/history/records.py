"""What the history returns: stored attempts, reviews and sessions (plain frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fsrs
from fsrs import Rating

from bot.grading.base import Grade
from bot.practice.attempts import Attempt, AttemptKind

__all__ = ["Review", "SessionInfo", "StoredAttempt", "UnknownSession"]


class UnknownSession(LookupError):
    """No such session for this user (or no review of that card in it)."""


@dataclass(frozen=True)
class StoredAttempt:
    """An attempt as read back from the history."""

    id: int
    user_id: int
    session_id: str
    card_id: str
    topic: str
    kind: AttemptKind
    prompt: str
    answer: str
    grade: Grade | None
    hints_used: int
    time_taken_s: float
    started_at: datetime
    answered_at: datetime
    recorded_at: datetime

    @property
    def score(self) -> float | None:
        return self.grade.score if self.grade is not None and self.grade.graded else None

    def as_attempt(self) -> Attempt:
        """The attempt as the session core knows it (for resuming a stored session)."""
        return Attempt(
            session_id=self.session_id,
            card_id=self.card_id,
            topic=self.topic,
            kind=self.kind,
            prompt=self.prompt,
            answer=self.answer,
            grade=self.grade,
            hints_used=self.hints_used,
            started_at=self.started_at,
            answered_at=self.answered_at,
        )


@dataclass(frozen=True)
class Review:
    """A finished question and what the scheduler made of it (``rating`` None: not reviewed)."""

    id: int
    session_id: str
    card_id: str
    topic: str
    rating: Rating | None
    auto_rating: Rating | None
    overridden: bool
    final_score: float | None
    skipped: bool
    revealed: bool
    hints_used: int
    finished_at: datetime
    state_before: fsrs.Card | None
    state_after: fsrs.Card | None

    @property
    def due(self) -> datetime | None:
        return self.state_after.due if self.state_after is not None else None


@dataclass(frozen=True)
class SessionInfo:
    """What the session core needs to resume: config, card order, what is finished, attempts."""

    id: str
    user_id: int
    mode: str
    config: dict[str, Any]
    card_ids: list[str]
    finished_card_ids: list[str]
    started_at: datetime
    finished_at: datetime | None
    attempts: list[StoredAttempt] = field(default_factory=list)

    @property
    def remaining_card_ids(self) -> list[str]:
        done = set(self.finished_card_ids)
        return [c for c in self.card_ids if c not in done]

    @property
    def next_card_id(self) -> str | None:
        remaining = self.remaining_card_ids
        return remaining[0] if remaining else None
