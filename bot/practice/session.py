"""A drill session: which questions, in what order, what the user did, what comes next.

Framework-free: the Chainlit app and the terminal both drive an :class:`InterviewSession` and
render the :mod:`events <bot.practice.events>` it yields. Grading, retrieval, follow-up writing and
persistence come in as :class:`SessionDeps`; clock and randomness are parameters.

Flow: a question is asked → the user answers (or uses a command) → the answer is graded and
recorded → in interview mode up to ``max_follow_ups`` follow-ups probe missed key points, each
follow-up answer re-grading the question on everything said so far → the next question follows
without waiting. ``retry`` and ``appeal`` act on the question graded last; ``hint``, ``skip``,
``reveal`` and ``next`` on the question being asked.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.grading.base import Grade, Grader, GradeRequest
from bot.grading.calibration import RUBRIC_EDITED, CalibrationExample
from bot.grading.rubric import Rubric
from bot.grading.safety import MAX_ANSWER_CHARS, visible_text
from bot.knowledge.cards import Card
from bot.practice.attempts import Attempt, AttemptKind, QuestionOutcome, Recorder
from bot.practice.commands import COMMAND_HELP, Command, CommandHandlers, parse_command
from bot.practice.events import (
    Asked,
    Closed,
    Event,
    Feedback,
    Finished,
    FollowUpAsked,
    Graded,
    Grading,
    Notice,
    Retrieved,
)
from bot.practice.state import Phase, QuestionState
from bot.retrieval.store import Retrieval

__all__ = [
    "Calibration",
    "FollowUpWriter",
    "InterviewSession",
    "Mode",
    "SessionConfig",
    "SessionDeps",
    "choose_cards",
]


class Mode(StrEnum):
    STUDY = "study"  # the reference is shown after every answer
    INTERVIEW = "interview"  # references stay hidden until the report; follow-ups probe gaps


@dataclass(frozen=True)
class SessionConfig:
    mode: Mode = Mode.STUDY
    n_questions: int = 5
    topics: tuple[str, ...] = ()  # empty = all topics
    important_first: bool = True
    follow_ups: bool = True  # interview mode only
    max_follow_ups: int = 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "n_questions": self.n_questions,
            "topics": list(self.topics),
            "important_first": self.important_first,
            "follow_ups": self.follow_ups,
            "max_follow_ups": self.max_follow_ups,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SessionConfig:
        """A config from :meth:`as_dict` (a stored session) or from the chat settings panel; a
        missing or empty value means the default."""
        data, default = data or {}, cls()
        return cls(
            mode=Mode(data.get("mode") or default.mode),
            n_questions=int(data.get("n_questions") or default.n_questions),
            topics=tuple(data.get("topics") or ()),
            important_first=bool(data.get("important_first", default.important_first)),
            follow_ups=bool(data.get("follow_ups", default.follow_ups)),
            max_follow_ups=int(data.get("max_follow_ups", default.max_follow_ups)),
        )


def choose_cards(cards: Sequence[Card], config: SessionConfig, rng: random.Random) -> list[Card]:
    """Filter by topic, shuffle with ``rng``, put important cards first if asked, cap the count."""
    pool = [c for c in cards if not config.topics or c.topic in config.topics]
    pool = sorted(pool, key=lambda c: c.id)  # independent of store order
    rng.shuffle(pool)
    if config.important_first:
        pool.sort(key=lambda c: not c.important)  # stable: shuffled order kept within each group
    return pool[: max(0, config.n_questions)]


# --- dependencies -----------------------------------------------------------------------------


class FollowUpWriter(Protocol):
    """Writes an interviewer's follow-up question aimed at key points the answer missed."""

    async def write(self, card: Card, answer: str, missed: Sequence[str]) -> str: ...


class Calibration(Protocol):
    """Corrections that teach the grader (see :mod:`bot.grading.calibration`): kept after an upheld appeal
    or a re-grade against edited key points; the most similar ones go with each grade request."""

    async def keep(self, example: CalibrationExample, *, original_score: float | None, grader: str) -> None: ...

    async def candidates(self, card: Card) -> list[CalibrationExample]:
        """The kept corrections that may go with a grade of ``card`` (its own, then its topic's). The
        session reads them when the question is asked, not when the answer is in."""
        ...

    def choose(
        self, candidates: Sequence[CalibrationExample], card: Card, question: str, answer: str
    ) -> list[CalibrationExample]:
        """The few of ``candidates`` most similar to this answer (no I/O: it runs as the answer arrives)."""
        ...


log = logging.getLogger(__name__)


@dataclass
class SessionDeps:
    grader: Grader
    retrieve: Callable[[Card], Awaitable[Retrieval]]
    follow_ups: FollowUpWriter
    recorder: Recorder | None = None
    # Stores the user's edit of a card's key points (``interview rubric --edit`` in chat); None: not offered.
    edit_rubric: Callable[[Card, Rubric], Awaitable[Rubric]] | None = None
    # Keeps corrections and finds graded examples for the grader (the history, per user); None: neither.
    calibration: Calibration | None = None


MAX_INPUT_CHARS = MAX_ANSWER_CHARS


class InterviewSession:
    """One session's state machine. Feed it user messages and commands; render what it yields."""

    def __init__(
        self,
        cards: Sequence[Card],
        config: SessionConfig,
        deps: SessionDeps,
        *,
        session_id: str | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.deps = deps
        self.id = session_id or uuid.uuid4().hex
        self.clock = clock or (lambda: datetime.now(UTC))
        self.questions = [QuestionState(card=c, number=i + 1) for i, c in enumerate(cards)]
        self.index = 0
        self.phase = Phase.NOT_STARTED
        self.started_at = self.clock()
        self.finished_at: datetime | None = None
        self._target: QuestionState | None = None  # retry/appeal target
        self._resume_phase = Phase.ASKING
        self._last_graded: QuestionState | None = None
        self.leeches: dict[str, str] = {}  # card id → suggestion, for cards this user keeps failing
        self._retrievals: dict[str, asyncio.Future[Retrieval]] = {}  # prefetched while the user types
        # Kept corrections per card, read with the retrieval; forgotten when this session keeps one.
        self._shots: dict[str, asyncio.Future[list[CalibrationExample]]] = {}
        self._commands = CommandHandlers(self)

    @classmethod
    def start(
        cls,
        cards: Sequence[Card],
        config: SessionConfig,
        deps: SessionDeps,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
        session_id: str | None = None,
    ) -> InterviewSession:
        """Choose the cards (topic filter, shuffle, important first, cap) and build the session."""
        chosen = choose_cards(cards, config, rng or random.Random())
        return cls(chosen, config, deps, clock=clock, session_id=session_id)

    @classmethod
    def restore(
        cls,
        cards: Sequence[Card],
        config: SessionConfig,
        deps: SessionDeps,
        *,
        session_id: str,
        attempts: Sequence[Attempt],
        finished_card_ids: Sequence[str],
        started_at: datetime | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> tuple[InterviewSession, int]:
        """Rebuild a stored session (after a reload or a crash) and return it with the index of the
        question to ask next. Earlier attempts are kept for the report; an unfinished question
        (e.g. killed during a follow-up) is asked again from the start."""
        session = cls(cards, config, deps, session_id=session_id, clock=clock)
        if started_at is not None:
            session.started_at = started_at
        finished = set(finished_card_ids)
        by_card = {q.card.id: q for q in session.questions}
        for attempt in attempts:
            q = by_card.get(attempt.card_id)
            if q is None:
                continue  # the card was removed from the notes since
            q.attempts.append(attempt)
            if attempt.kind is AttemptKind.SKIP:
                q.skipped = True
            elif attempt.kind in (AttemptKind.ANSWER, AttemptKind.FOLLOW_UP) and q.card.id in finished:
                q.answers.append(attempt.answer)
            elif attempt.kind is AttemptKind.RETRY and q.card.id in finished:
                q.answers = [attempt.answer]
        resume_at = next((i for i, q in enumerate(session.questions) if q.card.id not in finished), session.total)
        for q in session.questions:
            q.done = q.card.id in finished
        if resume_at > 0:
            session._last_graded = next(
                (q for q in reversed(session.questions[:resume_at]) if q.final is not None), None
            )
        return session, resume_at

    # -- read-only views --------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self.questions)

    @property
    def finished(self) -> bool:
        return self.phase is Phase.FINISHED

    @property
    def current(self) -> QuestionState | None:
        return self.questions[self.index] if self.index < self.total else None

    @property
    def grader_name(self) -> str:
        return self.deps.grader.name

    def find(self, card_id: str | None) -> QuestionState | None:
        return next((q for q in self.questions if q.card.id == card_id), None) if card_id else None

    # -- driving ----------------------------------------------------------------------------

    async def begin(self, *, resume_at: int = 0) -> AsyncIterator[Event]:
        """Ask the first question (or the one at ``resume_at`` when resuming a stored session)."""
        for q in self.questions[:resume_at]:
            q.done = True
        self.index = resume_at
        if resume_at and self.current is not None:
            # the question being resumed starts clean (its earlier attempts stay for the report)
            self.current.answers, self.current.follow_ups, self.current.probed = [], [], []
        async for event in self._ask_current():
            yield event

    async def handle(self, text: str) -> AsyncIterator[Event]:
        """A chat message: a command, an answer, an appeal argument."""
        parsed = parse_command(text)
        if parsed is not None:
            async for event in self.command(parsed[0], parsed[1]):
                yield event
            return
        stripped = visible_text(text).strip()  # zero-width characters alone are an empty answer
        if stripped.startswith("/") and " " not in stripped:
            yield Notice(
                f"Unknown command `{stripped[:40]}`. {COMMAND_HELP}",
                "warning",
            )
            return
        if self.phase is Phase.FINISHED:
            yield Notice("This session is over. Start a new one to keep practising.")
            return
        if not stripped:
            yield Notice("Your answer was empty. Type what you know, even a partial answer, or /skip.", "warning")
            return
        if len(text) > MAX_INPUT_CHARS:
            yield Notice(
                f"That message is {len(text):,} characters; only the first {MAX_INPUT_CHARS:,} are graded.",
                "warning",
            )
            text = text[:MAX_INPUT_CHARS]
        if self.phase is Phase.APPEAL:
            async for event in self._appeal(text):
                yield event
        elif self.phase is Phase.POINTS:
            async for event in self._commands.edit_points(text):
                yield event
        elif self.phase is Phase.RETRY:
            async for event in self._answer(text, AttemptKind.RETRY):
                yield event
        elif self.phase is Phase.FOLLOW_UP:
            async for event in self._answer(text, AttemptKind.FOLLOW_UP):
                yield event
        elif self.phase is Phase.ASKING:
            async for event in self._answer(text, AttemptKind.ANSWER):
                yield event
        else:
            yield Notice("No question is open. Start a session first.")

    async def command(self, command: Command, arg: str = "", *, card_id: str | None = None) -> AsyncIterator[Event]:
        """A command from a button (``card_id`` = the message it was attached to) or typed
        (see :mod:`bot.practice.commands`)."""
        async for event in self._commands.run(command, arg, card_id=card_id):
            yield event

    # -- answering --------------------------------------------------------------------------

    async def _answer(self, text: str, kind: AttemptKind) -> AsyncIterator[Event]:
        q = self._target if kind is AttemptKind.RETRY else self.current
        assert q is not None
        prompt = q.follow_ups[-1] if kind is AttemptKind.FOLLOW_UP else q.card.display_question
        started = q.asked_at or self.clock()
        previous = q.final if kind is AttemptKind.RETRY else None
        q.answers.append(text)
        graded_text = "\n\n".join(q.answers)
        out: list[Grade] = []
        async for event in self._grade(q, kind, graded_text, "", out):
            yield event
        grade = out[0]
        attempt = self._attempt(q, kind, prompt, text, grade, started)
        # The attempt is written while its grade is shown (50 answers at once would otherwise queue
        # their grades behind each other's writes); nothing moves on until it is stored.
        recording = asyncio.ensure_future(self._record(attempt))
        q.attempts.append(attempt)
        self._last_graded = q
        follow = (
            kind in (AttemptKind.ANSWER, AttemptKind.FOLLOW_UP)
            and self.config.mode is Mode.INTERVIEW
            and self.config.follow_ups
            and len(q.follow_ups) < self.config.max_follow_ups
            and grade.graded
            and bool(self._unprobed(q))
        )
        try:
            yield Graded(
                card=q.card,
                attempt=attempt,
                grade=grade,
                show_reference=self.config.mode is Mode.STUDY,
                previous=previous,
                follow_up_next=follow,
            )
        finally:
            await recording
        if follow:
            missed = self._unprobed(q)
            text_fu = await self.deps.follow_ups.write(q.card, graded_text, missed)
            q.probed.append(missed[0])
            q.follow_ups.append(text_fu)
            q.asked_at = self.clock()
            self.phase = Phase.FOLLOW_UP
            yield FollowUpAsked(card=q.card, text=text_fu, number=len(q.follow_ups), of=self.config.max_follow_ups)
            return
        if kind is AttemptKind.RETRY:
            # A retry is practice right after feedback: the schedule keeps the first attempt's rating.
            if closed := await self._close(q):
                yield closed
            async for event in self._resume():
                yield event
            return
        async for event in self._finish_question(q):
            yield event

    async def _appeal(self, argument: str, kind: AttemptKind = AttemptKind.APPEAL) -> AsyncIterator[Event]:
        """Grade the target question's answer again: with the user's argument (an appeal), or as it
        is after the user edited the card's key points (``kind`` REGRADE, ``argument`` what changed)."""
        q = self._target
        assert q is not None
        previous = q.final
        started = self.clock()
        out: list[Grade] = []
        appeal = argument if kind is AttemptKind.APPEAL else ""
        async for event in self._grade(q, kind, "\n\n".join(q.answers), appeal, out):
            yield event
        grade = out[0]
        attempt = self._attempt(q, kind, q.card.display_question, argument, grade, started)
        await self._record(attempt)
        q.attempts.append(attempt)
        await self._keep_correction(q, kind, previous, grade, argument)
        yield Graded(
            card=q.card,
            attempt=attempt,
            grade=grade,
            show_reference=self.config.mode is Mode.STUDY,
            previous=previous,
        )
        if q.done and (closed := await self._close(q, regrade=True)):
            yield closed  # an appeal corrects the grade: the card is re-rated
        self._target = None
        async for event in self._resume():
            yield event

    async def _keep_correction(
        self, q: QuestionState, kind: AttemptKind, previous: Grade | None, grade: Grade, argument: str
    ) -> None:
        """An upheld appeal (the re-grade scored higher) or a re-grade after a rubric edit is kept as a
        calibration example. Never fails the session: a correction that cannot be stored is only logged."""
        if self.deps.calibration is None or not grade.graded or grade.score is None or grade.band is None:
            return
        before = previous.score if previous is not None and previous.graded else None
        if kind is AttemptKind.APPEAL:
            if before is None or grade.score <= before:
                return
            why, example_kind = argument, "appeal"
        elif kind is AttemptKind.REGRADE:
            why, example_kind = RUBRIC_EDITED, "rubric_edit"
        else:
            return
        example = CalibrationExample(
            card_id=q.card.id,
            topic=q.card.topic,
            question=q.card.display_question,
            answer="\n\n".join(q.answers),
            score=grade.score,
            band=grade.band.value,
            why=why,
            kind=example_kind,
        )
        self._shots.clear()  # read again for the next grade, with this correction among them
        try:
            await self.deps.calibration.keep(example, original_score=before, grader=grade.grader)
        except Exception as exc:
            log.warning("correction for card %s not kept: %s: %s", q.card.id, type(exc).__name__, exc)

    async def _examples(self, card: Card, request: GradeRequest, answer: str) -> GradeRequest:
        """``request`` with the most similar kept corrections as graded examples (none when there are none,
        or they cannot be read: a grade never waits on them failing)."""
        calibration = self.deps.calibration
        if calibration is None:
            return request
        task = self._shots.get(card.id)
        try:
            try:
                found = await task if task is not None else await calibration.candidates(card)
            except Exception:
                if task is None:
                    raise
                self._shots.pop(card.id, None)  # a failed read ahead is tried once more, now
                found = await calibration.candidates(card)
            examples = calibration.choose(found, card, request.question, answer)
        except Exception as exc:
            log.warning("graded examples for card %s not read: %s: %s", card.id, type(exc).__name__, exc)
            return request
        return request.model_copy(update={"examples": examples}) if examples else request

    async def _grade(
        self, q: QuestionState, kind: AttemptKind, answer: str, appeal: str, out: list[Grade]
    ) -> AsyncIterator[Event]:
        """Retrieve, grade (streaming feedback when the grader streams) and put the grade in ``out``."""
        yield Grading(card=q.card, kind=kind)
        retrieval = await self._retrieval(q.card)
        yield Retrieved(card=q.card, retrieval=retrieval)
        request = await self._examples(q.card, retrieval.request(answer).model_copy(update={"appeal": appeal}), answer)
        graded: list[Grade] = []
        async for feedback in self._call_grader(q.card, request, graded):
            yield feedback
        grade = graded[0]
        if q.hints:
            n = len(q.hints)
            grade = grade.model_copy(update={"notes": [*grade.notes, f"{n} hint{'s' if n > 1 else ''} used"]})
        if q.revealed_before_answer and kind not in (AttemptKind.APPEAL, AttemptKind.REGRADE):
            grade = grade.model_copy(update={"notes": [*grade.notes, "reference seen before answering"]})
        out.append(grade)

    async def _call_grader(self, card: Card, request: GradeRequest, out: list[Grade]) -> AsyncIterator[Feedback]:
        """The one place the session calls the grader: streamed feedback in study mode, else one
        ``agrade`` call; the grade goes in ``out``."""
        grade: Grade | None = None
        # Interview mode shows no live feedback (a follow-up may come first): don't pay for streaming.
        if self.config.mode is Mode.STUDY:
            async for item in self.deps.grader.astream(request):
                if isinstance(item, Grade):
                    grade = item
                else:
                    yield Feedback(card=card, text=item.text)
        else:
            grade = await self.deps.grader.agrade(request)
        assert grade is not None
        out.append(grade)

    def _attempt(
        self, q: QuestionState, kind: AttemptKind, prompt: str, answer: str, grade: Grade, started: datetime
    ) -> Attempt:
        return Attempt(
            session_id=self.id,
            card_id=q.card.id,
            topic=q.card.topic,
            kind=kind,
            prompt=prompt,
            answer=answer,
            grade=grade,
            hints_used=len(q.hints),
            started_at=started,
            answered_at=self.clock(),
        )

    def _unprobed(self, q: QuestionState) -> list[str]:
        return [p for p in q.missed_points() if p not in q.probed]

    # -- moving on --------------------------------------------------------------------------

    async def _record(self, attempt: Attempt) -> None:
        if self.deps.recorder is not None:
            await self.deps.recorder.record_attempt(attempt)

    async def _close(self, q: QuestionState, *, regrade: bool = False) -> Closed | None:
        """Mark a question done and hand its outcome to the recorder (the scheduler rates it).

        ``regrade``: an appeal changed the final grade of a question already done.
        """
        if q.done and not regrade:
            return None
        q.done = True
        receipt = None
        if self.deps.recorder is not None:
            receipt = await self.deps.recorder.question_finished(
                QuestionOutcome(
                    session_id=self.id,
                    card_id=q.card.id,
                    topic=q.card.topic,
                    final=q.final,
                    hints_used=len(q.hints),
                    revealed_before_answer=q.revealed_before_answer,
                    skipped=q.passed,
                    finished_at=self.clock(),
                    regrade=regrade,
                )
            )
        return Closed(card=q.card, receipt=receipt)

    def _held_grade(self, q: QuestionState) -> list[Event]:
        """Interview mode holds a question's grade back while follow-ups are pending; when the
        question ends without another answer (next, skip, end), the grade so far is shown."""
        last = next((a for a in reversed(q.attempts) if a.grade is not None), None)
        if last is None or last.grade is None:
            return []
        return [Graded(card=q.card, attempt=last, grade=last.grade, show_reference=self.config.mode is Mode.STUDY)]

    async def _finish_question(self, q: QuestionState) -> AsyncIterator[Event]:
        if closed := await self._close(q):
            yield closed
        self.index += 1
        async for event in self._ask_current():
            yield event

    async def _ask_current(self) -> AsyncIterator[Event]:
        q = self.current
        if q is None:
            async for event in self._finish():
                yield event
            return
        q.asked_at = self.clock()
        self.phase = Phase.ASKING
        self._prefetch(q.card)
        yield Asked(number=q.number, total=self.total, card=q.card, leech=self.leeches.get(q.card.id, ""))

    def _prefetch(self, card: Card) -> None:
        """Start retrieving the reference (and reading the kept corrections that may go with the grade)
        while the user thinks (minutes, usually), not after."""
        if card.id not in self._retrievals:
            self._retrievals[card.id] = asyncio.ensure_future(self.deps.retrieve(card))
        if self.deps.calibration is not None and card.id not in self._shots:
            self._shots[card.id] = asyncio.ensure_future(self.deps.calibration.candidates(card))

    def _forget_shots(self) -> None:
        for task in self._shots.values():
            task.cancel()
        self._shots.clear()

    async def _retrieval(self, card: Card) -> Retrieval:
        task = self._retrievals.pop(card.id, None)
        if task is not None:
            try:
                return await task
            except Exception:  # a failed prefetch is retried once, on demand
                pass
        return await self.deps.retrieve(card)

    async def _resume(self) -> AsyncIterator[Event]:
        """Back to where the user was before a retry or appeal detour."""
        self._target = None
        phase = self._resume_phase
        q = self.current
        if q is None:
            async for event in self._finish():
                yield event
            return
        if phase is Phase.FOLLOW_UP and q.follow_ups:
            self.phase = Phase.FOLLOW_UP
            yield FollowUpAsked(
                card=q.card, text=q.follow_ups[-1], number=len(q.follow_ups), of=self.config.max_follow_ups
            )
            return
        self.phase = Phase.ASKING
        yield Asked(number=q.number, total=self.total, card=q.card, resumed=True)

    async def _finish(self) -> AsyncIterator[Event]:
        for task in self._retrievals.values():
            task.cancel()
        self._retrievals.clear()
        self._forget_shots()
        self.phase = Phase.FINISHED
        self.finished_at = self.clock()
        if self.deps.recorder is not None:
            await self.deps.recorder.session_finished(self.id, self.finished_at)
        yield Finished(session=self)
