"""Where a session stands: its :class:`Phase` and the :class:`QuestionState` of each card.

Shared by the session (:mod:`bot.practice.session`) and its command handlers
(:mod:`bot.practice.commands`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.grading.base import ClaimStatus, Grade
from bot.knowledge.cards import Card
from bot.practice.attempts import Attempt, AttemptKind

__all__ = ["Phase", "QuestionState"]


class Phase(StrEnum):
    NOT_STARTED = "not_started"
    ASKING = "asking"  # waiting for an answer to the current question
    FOLLOW_UP = "follow_up"  # waiting for an answer to a follow-up on the current question
    RETRY = "retry"  # waiting for a new answer to an earlier (already graded) question
    APPEAL = "appeal"  # waiting for the argument of an appeal
    POINTS = "points"  # waiting for the user's edited key points of a graded question
    FINISHED = "finished"


@dataclass
class QuestionState:
    """Everything that happened to one card in this session."""

    card: Card
    number: int
    asked_at: datetime | None = None
    attempts: list[Attempt] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # main answer + follow-up answers (what is graded)
    follow_ups: list[str] = field(default_factory=list)
    probed: list[str] = field(default_factory=list)  # missed key points a follow-up aimed at
    hints: list[str] = field(default_factory=list)
    revealed_before_answer: bool = False
    revealed: bool = False
    skipped: bool = False
    done: bool = False

    @property
    def final(self) -> Grade | None:
        """The grade that counts: the latest graded attempt (a follow-up, retry or appeal replaces
        the earlier one; all are kept in ``attempts``)."""
        for attempt in reversed(self.attempts):
            if attempt.grade is not None and attempt.grade.graded:
                return attempt.grade
        for attempt in reversed(self.attempts):
            if attempt.grade is not None:
                return attempt.grade
        return None

    @property
    def answered(self) -> bool:
        return any(a.kind is not AttemptKind.SKIP for a in self.attempts)

    @property
    def passed(self) -> bool:
        """Skipped without any answer: what the report counts as 0 and the scheduler as Again."""
        return self.skipped and not self.answered

    def missed_points(self) -> list[str]:
        grade = self.final
        if grade is None or not grade.graded:
            return []
        return [c.point for c in grade.claims if c.status is not ClaimStatus.HIT]
