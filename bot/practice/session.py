"""A drill session: which questions, in what order, what the user did, what comes next.

Framework-free: the Chainlit app and the terminal both drive an :class:`InterviewSession` and
render the :mod:`events <bot.practice.session>` it yields. Grading, retrieval, follow-up writing and
persistence come in as :class:`SessionDeps`; clock and randomness are parameters.

Flow: a question is asked → the user answers (or uses a command) → the answer is graded and
recorded → in interview mode up to ``max_follow_ups`` follow-ups probe missed key points, each
follow-up answer re-grading the question on everything said so far → the next question follows
without waiting. ``retry`` and ``appeal`` act on the question graded last; ``hint``, ``skip``,
``reveal`` and ``next`` on the question being asked.
"""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from bot.grading.base import ClaimStatus, Grade, GradeRequest
from bot.grading.keypoints import extract_key_points
from bot.grading.safety import MAX_ANSWER_CHARS
from bot.knowledge.cards import Card
from bot.practice.attempts import Attempt, AttemptKind, QuestionOutcome, Recorder
from bot.retrieval.store import Retrieval

__all__ = [
    "Closed",
    "Command",
    "Event",
    "InterviewSession",
    "Mode",
    "Phase",
    "QuestionState",
    "SessionConfig",
    "SessionDeps",
    "choose_cards",
    "parse_command",
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


# --- commands ---------------------------------------------------------------------------------


class Command(StrEnum):
    HINT = "hint"
    SKIP = "skip"
    REVEAL = "reveal"
    RETRY = "retry"
    APPEAL = "appeal"
    NEXT = "next"
    END = "end"


_ALIASES = {
    "hint": Command.HINT,
    "skip": Command.SKIP,
    "pass": Command.SKIP,
    "reveal": Command.REVEAL,
    "answer": Command.REVEAL,
    "retry": Command.RETRY,
    "again": Command.RETRY,
    "appeal": Command.APPEAL,
    "next": Command.NEXT,
    "end": Command.END,
    "stop": Command.END,
    "quit": Command.END,
}
_SLASH = re.compile(r"^/(\w+)\b\s*(.*)$", re.S)
_APPEAL_PHRASE = re.compile(r"^i think i was right\b[\s:,.!-]*(.*)$", re.I | re.S)


def parse_command(text: str) -> tuple[Command, str] | None:
    """``/hint``, ``/appeal my argument``, a bare ``hint`` / ``next`` …, or "I think I was right: …".

    A bare word counts only when it is the whole message, so an answer that happens to start with
    "next" is still an answer. Unknown ``/words`` return None (the caller says so).
    """
    stripped = text.strip()
    m = _SLASH.match(stripped)
    if m:
        cmd = _ALIASES.get(m.group(1).lower())
        return (cmd, m.group(2).strip()) if cmd else None
    word = stripped.lower().rstrip(".!")
    if word in _ALIASES:
        return _ALIASES[word], ""
    m = _APPEAL_PHRASE.match(stripped)
    if m:
        return Command.APPEAL, m.group(1).strip()
    return None


# --- dependencies -----------------------------------------------------------------------------


class GraderLike(Protocol):
    @property
    def name(self) -> str: ...

    async def agrade(self, request: GradeRequest) -> Grade: ...


class FollowUpWriter(Protocol):
    """Writes an interviewer's follow-up question aimed at key points the answer missed."""

    async def write(self, card: Card, answer: str, missed: Sequence[str]) -> str: ...


@dataclass
class SessionDeps:
    grader: GraderLike
    retrieve: Callable[[Card], Awaitable[Retrieval]]
    follow_ups: FollowUpWriter
    recorder: Recorder | None = None


# --- events (what adapters render) ------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """A question to show: the card's own question, or a retry of it."""

    number: int  # 1-based position in the session
    total: int
    card: Card
    retry: bool = False
    resumed: bool = False  # shown again after a retry/appeal detour
    leech: str = ""  # the card keeps being failed: a suggestion to rewrite its note


@dataclass(frozen=True)
class FollowUpAsked:
    card: Card
    text: str
    number: int  # 1 or 2
    of: int


@dataclass(frozen=True)
class Retrieved:
    card: Card
    retrieval: Retrieval


@dataclass(frozen=True)
class Grading:
    """Grading has started (adapters open a step / spinner)."""

    card: Card
    kind: AttemptKind


@dataclass(frozen=True)
class Feedback:
    """A streamed piece of the grader's feedback text."""

    card: Card
    text: str


@dataclass(frozen=True)
class Graded:
    card: Card
    attempt: Attempt
    grade: Grade
    show_reference: bool  # study mode: reveal the note's answer with the grade
    previous: Grade | None = None  # appeals and retries: the grade this one replaces (both kept)
    follow_up_next: bool = False  # interview mode: a follow-up comes next, the grade is provisional


@dataclass(frozen=True)
class Hint:
    card: Card
    point: str
    used: int  # hints used on this card so far, this one included


@dataclass(frozen=True)
class Reference:
    card: Card


@dataclass(frozen=True)
class Skipped:
    card: Card


@dataclass(frozen=True)
class AppealRequested:
    """The user wants to appeal but gave no argument yet: their next message is the argument."""

    card: Card


@dataclass(frozen=True)
class Notice:
    """A short message to the user (bad input, nothing to retry, …)."""

    text: str
    level: str = "info"  # info | warning


@dataclass(frozen=True)
class Closed:
    """A question is done; ``receipt`` is what the recorder returned (e.g. the scheduled review)."""

    card: Card
    receipt: Any = None


@dataclass(frozen=True)
class Finished:
    session: InterviewSession


Event = (
    Asked
    | FollowUpAsked
    | Retrieved
    | Grading
    | Feedback
    | Graded
    | Hint
    | Reference
    | Skipped
    | AppealRequested
    | Notice
    | Closed
    | Finished
)


# --- state ------------------------------------------------------------------------------------


class Phase(StrEnum):
    NOT_STARTED = "not_started"
    ASKING = "asking"  # waiting for an answer to the current question
    FOLLOW_UP = "follow_up"  # waiting for an answer to a follow-up on the current question
    RETRY = "retry"  # waiting for a new answer to an earlier (already graded) question
    APPEAL = "appeal"  # waiting for the argument of an appeal
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
        stripped = text.strip()
        if stripped.startswith("/") and " " not in stripped:
            yield Notice(
                f"Unknown command `{stripped[:40]}`. Commands: /hint /skip /reveal /retry /appeal /next /end.",
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
        """A command from a button (``card_id`` = the message it was attached to) or typed."""
        if self.phase is Phase.FINISHED:
            yield Notice("This session is over. Start a new one to keep practising.")
            return
        if self.phase is Phase.APPEAL and command is not Command.APPEAL:
            self.phase = self._resume_phase  # any other command cancels a pending appeal
            self._target = None
        if command in (Command.HINT, Command.SKIP, Command.NEXT) and card_id is not None:
            open_q = self._open()
            if open_q is None or open_q.card.id != card_id:
                yield Notice("That button belongs to an earlier question; use the buttons on the current one.")
                return
        handler = {
            Command.HINT: self._hint,
            Command.SKIP: self._skip,
            Command.REVEAL: self._reveal,
            Command.RETRY: self._retry,
            Command.APPEAL: self._start_appeal,
            Command.NEXT: self._next,
            Command.END: self._end,
        }[command]
        async for event in handler(arg, card_id):
            yield event

    # -- commands ---------------------------------------------------------------------------

    def _open(self) -> QuestionState | None:
        """The question an answer would go to right now."""
        if self.phase is Phase.RETRY:
            return self._target
        return self.current if self.phase in (Phase.ASKING, Phase.FOLLOW_UP) else None

    async def _hint(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        q = self._open()
        if q is None:
            yield Notice("There is no open question to give a hint for.")
            return
        if q.answered and q.final is not None and q.final.graded:
            candidates = q.missed_points()
        else:
            candidates = list(extract_key_points(q.card.answer, q.card.display_question)) if q.card.has_answer else []
        remaining = [p for p in candidates if p not in q.hints]
        if not q.card.has_answer and not candidates:
            yield Notice("Your notes have no answer for this question, so there is no key point to hint at.")
            return
        if not remaining:
            yield Notice("No hints left: you have seen every key point for this question.")
            return
        q.hints.append(remaining[0])
        yield Hint(card=q.card, point=remaining[0], used=len(q.hints))

    async def _reveal(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        q = self.find(card_id) or self._open() or self._last_graded
        if q is None:
            yield Notice("There is no question to reveal yet.")
            return
        if not q.answered and q is self._open():
            q.revealed_before_answer = True
        q.revealed = True
        yield Reference(card=q.card)

    async def _skip(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        if self.phase is Phase.RETRY:
            yield Notice("Retry cancelled.")
            async for event in self._resume():
                yield event
            return
        q = self.current
        if q is None or self.phase not in (Phase.ASKING, Phase.FOLLOW_UP):
            yield Notice("There is no open question to skip.")
            return
        if self.phase is Phase.FOLLOW_UP:  # skipping a follow-up keeps the grade so far
            for held in self._held_grade(q):
                yield held
            async for event in self._finish_question(q):
                yield event
            return
        now = self.clock()
        attempt = Attempt(
            session_id=self.id,
            card_id=q.card.id,
            topic=q.card.topic,
            kind=AttemptKind.SKIP,
            prompt=q.card.display_question,
            answer="",
            grade=None,
            hints_used=len(q.hints),
            started_at=q.asked_at or now,
            answered_at=now,
        )
        await self._record(attempt)
        q.attempts.append(attempt)
        q.skipped = True
        yield Skipped(card=q.card)
        async for event in self._finish_question(q):
            yield event

    async def _next(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        """Move on: drop a pending follow-up (or retry); before any answer it is a skip."""
        if self.phase is Phase.RETRY:
            async for event in self._resume():
                yield event
            return
        q = self.current
        if q is None:
            yield Notice("There is no next question.")
            return
        if self.phase is Phase.ASKING and not q.answered:
            async for event in self._skip(arg, card_id):
                yield event
            return
        if self.phase is Phase.FOLLOW_UP:
            for held in self._held_grade(q):
                yield held
        async for event in self._finish_question(q):
            yield event

    async def _retry(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        target = self.find(card_id) or (self.current if self.phase is Phase.FOLLOW_UP else None) or self._last_graded
        if target is None or not target.answered:
            yield Notice("Nothing to retry yet: answer a question first.")
            return
        if target is self.current and self.phase is Phase.FOLLOW_UP:
            self._resume_phase = Phase.ASKING
            if closed := await self._close(target):
                yield closed
            self.index += 1
        else:
            self._resume_phase = self.phase if self.phase is not Phase.RETRY else self._resume_phase
        self._target = target
        self.phase = Phase.RETRY
        target.answers = []
        target.asked_at = self.clock()
        yield Asked(number=target.number, total=self.total, card=target.card, retry=True)

    async def _start_appeal(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        target = self.find(card_id) or (self._target if self.phase is Phase.APPEAL else None) or self._last_graded
        if target is None or target.final is None or not target.final.graded:
            yield Notice("There is no grade to appeal yet.")
            return
        if self.phase is not Phase.APPEAL:
            self._resume_phase = self.phase
        self._target = target
        if arg.strip():
            self.phase = Phase.APPEAL
            async for event in self._appeal(arg):
                yield event
            return
        self.phase = Phase.APPEAL
        yield AppealRequested(card=target.card)

    async def _end(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        q = self.current
        if q is not None and self.phase is Phase.FOLLOW_UP:
            for held in self._held_grade(q):
                yield held
        if q is not None and q.answered and not q.done and (closed := await self._close(q)):
            yield closed
        async for event in self._finish():
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
        await self._record(attempt)
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
        yield Graded(
            card=q.card,
            attempt=attempt,
            grade=grade,
            show_reference=self.config.mode is Mode.STUDY,
            previous=previous,
            follow_up_next=follow,
        )
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

    async def _appeal(self, argument: str) -> AsyncIterator[Event]:
        q = self._target
        assert q is not None
        previous = q.final
        started = self.clock()
        out: list[Grade] = []
        async for event in self._grade(q, AttemptKind.APPEAL, "\n\n".join(q.answers), argument, out):
            yield event
        grade = out[0]
        attempt = self._attempt(q, AttemptKind.APPEAL, q.card.display_question, argument, grade, started)
        await self._record(attempt)
        q.attempts.append(attempt)
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

    async def _grade(
        self, q: QuestionState, kind: AttemptKind, answer: str, appeal: str, out: list[Grade]
    ) -> AsyncIterator[Event]:
        """Retrieve, grade (streaming feedback when the grader streams) and put the grade in ``out``."""
        yield Grading(card=q.card, kind=kind)
        retrieval = await self._retrieval(q.card)
        yield Retrieved(card=q.card, retrieval=retrieval)
        request = retrieval.request(answer).model_copy(update={"appeal": appeal})
        grade: Grade | None = None
        # Interview mode shows no live feedback (a follow-up may come first): don't pay for streaming.
        stream = getattr(self.deps.grader, "astream", None) if self.config.mode is Mode.STUDY else None
        if stream is not None:
            async for item in stream(request):
                if isinstance(item, Grade):
                    grade = item
                else:
                    yield Feedback(card=q.card, text=str(getattr(item, "text", item)))
        else:
            grade = await self.deps.grader.agrade(request)
        assert grade is not None
        if q.hints:
            n = len(q.hints)
            grade = grade.model_copy(update={"notes": [*grade.notes, f"{n} hint{'s' if n > 1 else ''} used"]})
        if q.revealed_before_answer and kind is not AttemptKind.APPEAL:
            grade = grade.model_copy(update={"notes": [*grade.notes, "reference seen before answering"]})
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
        """Start retrieving the reference while the user thinks (minutes, usually), not after."""
        if card.id not in self._retrievals:
            self._retrievals[card.id] = asyncio.ensure_future(self.deps.retrieve(card))

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
        self.phase = Phase.FINISHED
        self.finished_at = self.clock()
        if self.deps.recorder is not None:
            await self.deps.recorder.session_finished(self.id, self.finished_at)
        yield Finished(session=self)
