"""The session core's async ``Recorder`` backed by a :class:`~bot.history.repository.History`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from fsrs import Rating

from bot.grading.calibration import CalibrationExample, select_examples
from bot.history.records import Review
from bot.history.repository import History
from bot.knowledge.cards import Card
from bot.practice.attempts import Attempt, QuestionOutcome
from bot.practice.schedule import CardScheduler, RatingThresholds, rating_for

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = ["HistoryCalibration", "HistoryRecorder"]


class HistoryRecorder:
    """The session core's ``Recorder`` for one user: stores attempts, schedules finished cards.

    The blocking database calls run in a worker thread, never on the event loop.
    """

    def __init__(
        self,
        history: History,
        user_id: int,
        scheduler: CardScheduler,
        thresholds: RatingThresholds | None = None,
    ) -> None:
        self.history = history
        self.user_id = user_id
        self.scheduler = scheduler
        self.thresholds = thresholds or RatingThresholds()
        self.last_review: Review | None = None

    @classmethod
    def from_settings(cls, history: History, user_id: int, settings: Settings) -> HistoryRecorder:
        return cls(history, user_id, CardScheduler.from_settings(settings), RatingThresholds.from_settings(settings))

    async def record_attempt(self, attempt: Attempt) -> None:
        await self.history.arun(self.history.record_attempt, self.user_id, attempt)

    async def question_finished(self, outcome: QuestionOutcome) -> Review:
        """Rate the outcome, review the card with FSRS; the :class:`Review` says when it is due."""
        rating = rating_for(outcome, self.thresholds)
        self.last_review = await self.history.arun(
            self.history.finish_question, self.user_id, outcome, rating, self.scheduler
        )
        return self.last_review

    async def session_finished(self, session_id: str, finished_at: datetime) -> None:
        await self.history.arun(self.history.finish_session, self.user_id, session_id, finished_at)

    async def rerate(self, session_id: str, card_id: str, rating: Rating) -> Review:
        """The user overrides the rating of a card finished in ``session_id``."""
        review = await self.history.arun(self.history.rerate, self.user_id, session_id, card_id, rating, self.scheduler)
        self.last_review = review
        return review


class HistoryCalibration:
    """The session core's ``Calibration`` for one user: corrections kept in the history database, and the
    ``k`` most similar of them (same card first, then same topic) for each grade request. Reading runs on
    the history's threads, never on the event loop, when the question is asked; ranking (a few word
    sets) when the answer is in. ``k`` 0 keeps corrections but sends none (the offline grader has no use
    for them)."""

    def __init__(self, history: History, user_id: int, k: int) -> None:
        self.history = history
        self.user_id = user_id
        self.k = k

    async def keep(self, example: CalibrationExample, *, original_score: float | None, grader: str) -> None:
        await self.history.arun(self._keep, example, original_score, grader)

    def _keep(self, example: CalibrationExample, original_score: float | None, grader: str) -> None:
        self.history.add_calibration(self.user_id, example, original_score=original_score, grader=grader)

    async def candidates(self, card: Card) -> list[CalibrationExample]:
        if self.k <= 0:
            return []
        return await self.history.arun(self._candidates, card)

    def _candidates(self, card: Card) -> list[CalibrationExample]:
        return self.history.calibration_examples(self.user_id, card_id=card.id, topic=card.topic)

    def choose(
        self, candidates: Sequence[CalibrationExample], card: Card, question: str, answer: str
    ) -> list[CalibrationExample]:
        return select_examples(candidates, card_id=card.id, question=question, answer=answer, k=self.k)
