"""What a drill session hands to persistence: one record per answer, one outcome per question.

Framework-free and storage-free. The session core (:mod:`bot.practice.session`) produces these; a
:class:`Recorder` (SQLAlchemy history in :mod:`bot.history.repository`, or nothing) stores them. An attempt is
recorded *before* its grade is shown, so a killed process never loses a graded answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.grading.base import Grade

__all__ = ["Attempt", "AttemptKind", "QuestionOutcome", "Recorder"]


class AttemptKind(StrEnum):
    ANSWER = "answer"  # first answer to a question
    FOLLOW_UP = "follow_up"  # answer to an interviewer follow-up on the same card
    RETRY = "retry"  # the same question answered again
    APPEAL = "appeal"  # "I think I was right": re-grade with the user's argument
    REGRADE = "regrade"  # the same answer graded again after the user edited the card's key points
    SKIP = "skip"  # no answer given (skip / next before answering)


@dataclass(frozen=True)
class Attempt:
    """One thing the user typed for a card, and its grade (``None`` only for skips)."""

    session_id: str
    card_id: str
    topic: str
    kind: AttemptKind
    prompt: str  # the text that was asked: the card's question or a follow-up question
    answer: str  # what the user typed (an appeal: the argument)
    grade: Grade | None
    hints_used: int  # hints revealed on this card before this attempt
    started_at: datetime  # when the prompt was shown
    answered_at: datetime

    @property
    def time_taken_s(self) -> float:
        return max(0.0, (self.answered_at - self.started_at).total_seconds())


@dataclass(frozen=True)
class QuestionOutcome:
    """How a card ended in a session: what the scheduler rates."""

    session_id: str
    card_id: str
    topic: str
    final: Grade | None  # the grade that counts (None: skipped or never graded)
    hints_used: int
    revealed_before_answer: bool  # the user asked for the reference before answering
    skipped: bool
    finished_at: datetime
    regrade: bool = False  # an appeal changed the final grade after the question was done


class Recorder(Protocol):
    """Where a session's attempts go. Every call must have committed when it returns."""

    async def record_attempt(self, attempt: Attempt) -> None: ...

    async def question_finished(self, outcome: QuestionOutcome) -> Any:
        """Store the outcome and schedule the card; the return value is shown to the user if not None
        (e.g. the next review date)."""

    async def session_finished(self, session_id: str, finished_at: datetime) -> None: ...
