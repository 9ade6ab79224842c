"""Chat commands: what ``/hint``, ``/skip``, ``/reveal``, ``/retry``, ``/appeal``, ``/points`` (edit the key
points of the answer graded last, then re-grade it), ``/next`` and ``/end`` (or their bare words and buttons)
do to a session.

:func:`parse_command` turns a message into a :class:`Command`; :class:`CommandHandlers` runs one
against an :class:`~bot.practice.session.InterviewSession`. The handlers are part of the session's
state machine, split out of ``session.py`` for size: they read and move the session's phase and
detour state (``_target``, ``_resume_phase``, ``_last_graded``) and reuse its private steps
(``_close``, ``_resume``, ``_finish_question`` …), so they live in the same package and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.grading.base import ClaimStatus
from bot.grading.followups import hint_text, point_label
from bot.grading.rubric import Rubric, compile_rubric, parse_rubric_text
from bot.knowledge.cards import Card
from bot.practice.attempts import Attempt, AttemptKind
from bot.practice.events import AppealRequested, Asked, Event, Hint, Notice, Reference, Skipped
from bot.practice.state import Phase, QuestionState

if TYPE_CHECKING:
    from bot.practice.session import InterviewSession

__all__ = ["COMMAND_HELP", "Command", "CommandHandlers", "parse_command"]


class Command(StrEnum):
    HINT = "hint"
    SKIP = "skip"
    REVEAL = "reveal"
    RETRY = "retry"
    APPEAL = "appeal"
    NEXT = "next"
    END = "end"
    POINTS = "points"  # edit the key points of the question graded last, then re-grade it


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
    "points": Command.POINTS,
    "keypoints": Command.POINTS,
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


COMMAND_HELP = "Commands: /hint /skip /reveal /retry /appeal /points /next /end."


class CommandHandlers:
    """Runs commands against one session (see the module docstring for why it reaches inside)."""

    def __init__(self, session: InterviewSession) -> None:
        self.session = session

    async def run(self, command: Command, arg: str = "", *, card_id: str | None = None) -> AsyncIterator[Event]:
        """A command from a button (``card_id`` = the message it was attached to) or typed."""
        s = self.session
        if s.phase is Phase.FINISHED:
            yield Notice("This session is over. Start a new one to keep practising.")
            return
        if s.phase is Phase.APPEAL and command is not Command.APPEAL:
            s.phase = s._resume_phase  # any other command cancels a pending appeal
            s._target = None
        if s.phase is Phase.POINTS and command is not Command.POINTS:
            s.phase = s._resume_phase  # … and a pending key-point edit
            s._target = None
        if command in (Command.HINT, Command.SKIP, Command.NEXT) and card_id is not None:
            open_q = self.open_question()
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
            Command.POINTS: self._start_points,
        }[command]
        async for event in handler(arg, card_id):
            yield event

    def open_question(self) -> QuestionState | None:
        """The question an answer would go to right now."""
        s = self.session
        if s.phase is Phase.RETRY:
            return s._target
        return s.current if s.phase in (Phase.ASKING, Phase.FOLLOW_UP) else None

    async def _hint(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        q = self.open_question()
        if q is None:
            yield Notice("There is no open question to give a hint for.")
            return
        if q.answered and q.final is not None and q.final.graded:
            claims = [c for c in q.final.claims if c.status is not ClaimStatus.HIT]
            candidates = [(c.point, c.label or point_label(q.card, c.point)) for c in claims]
        else:
            rubric = self._rubric(q.card)
            candidates = [(p.text, p.label) for p in rubric.points] if rubric is not None else []
        remaining = [(point, label) for point, label in candidates if point not in q.hints]
        if not q.card.has_answer and not candidates:
            yield Notice("Your notes have no answer for this question, so there is no key point to hint at.")
            return
        if not remaining:
            yield Notice("No hints left: you have seen every key point for this question.")
            return
        point, label = remaining[0]
        q.hints.append(point)
        yield Hint(card=q.card, point=hint_text(label), used=len(q.hints))

    def _rubric(self, card: Card) -> Rubric | None:
        """The rubric the card's answer will be graded against (prefetched with the retrieval), else the
        compiled one; None without an answer."""
        if not card.has_answer:
            return None
        task = self.session._retrievals.get(card.id)
        if task is not None and task.done() and not task.cancelled() and task.exception() is None:
            rubric = task.result().rubric
            if rubric is not None:
                return rubric
        return compile_rubric(card)

    async def _reveal(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        s = self.session
        q = s.find(card_id) or self.open_question() or s._last_graded
        if q is None:
            yield Notice("There is no question to reveal yet.")
            return
        if q.number > s.index + 1:  # a crafted button naming a question still to come
            yield Notice("That question has not been asked yet: its reference shows once it has been.")
            return
        if not q.answered and q is self.open_question():
            q.revealed_before_answer = True
        q.revealed = True
        yield Reference(card=q.card)

    async def _skip(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        s = self.session
        if s.phase is Phase.RETRY:
            yield Notice("Retry cancelled.")
            async for event in s._resume():
                yield event
            return
        q = s.current
        if q is None or s.phase not in (Phase.ASKING, Phase.FOLLOW_UP):
            yield Notice("There is no open question to skip.")
            return
        if s.phase is Phase.FOLLOW_UP:  # skipping a follow-up keeps the grade so far
            for held in s._held_grade(q):
                yield held
            async for event in s._finish_question(q):
                yield event
            return
        now = s.clock()
        attempt = Attempt(
            session_id=s.id,
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
        await s._record(attempt)
        q.attempts.append(attempt)
        q.skipped = True
        yield Skipped(card=q.card)
        async for event in s._finish_question(q):
            yield event

    async def _next(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        """Move on: drop a pending follow-up (or retry); before any answer it is a skip."""
        s = self.session
        if s.phase is Phase.RETRY:
            async for event in s._resume():
                yield event
            return
        q = s.current
        if q is None:
            yield Notice("There is no next question.")
            return
        if s.phase is Phase.ASKING and not q.answered:
            async for event in self._skip(arg, card_id):
                yield event
            return
        if s.phase is Phase.FOLLOW_UP:
            for held in s._held_grade(q):
                yield held
        async for event in s._finish_question(q):
            yield event

    async def _retry(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        s = self.session
        target = s.find(card_id) or (s.current if s.phase is Phase.FOLLOW_UP else None) or s._last_graded
        if target is None or not target.answered:
            yield Notice("Nothing to retry yet: answer a question first.")
            return
        if target is s.current and s.phase is Phase.FOLLOW_UP:
            s._resume_phase = Phase.ASKING
            if closed := await s._close(target):
                yield closed
            s.index += 1
        else:
            s._resume_phase = s.phase if s.phase is not Phase.RETRY else s._resume_phase
        s._target = target
        s.phase = Phase.RETRY
        target.answers = []
        target.asked_at = s.clock()
        yield Asked(number=target.number, total=s.total, card=target.card, retry=True)

    async def _start_appeal(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        s = self.session
        target = s.find(card_id) or (s._target if s.phase is Phase.APPEAL else None) or s._last_graded
        if target is None or target.final is None or not target.final.graded:
            yield Notice("There is no grade to appeal yet.")
            return
        if s.phase is not Phase.APPEAL:
            s._resume_phase = s.phase
        s._target = target
        if arg.strip():
            s.phase = Phase.APPEAL
            async for event in s._appeal(arg):
                yield event
            return
        s.phase = Phase.APPEAL
        yield AppealRequested(card=target.card)

    async def _start_points(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        """Show the key points the question graded last was graded against, in their editable form;
        the user's next message (or ``arg``) is the edited version."""
        s = self.session
        target = s.find(card_id) or (s._target if s.phase is Phase.POINTS else None) or s._last_graded
        if s.deps.edit_rubric is None:
            yield Notice("Editing key points is not available here; use `interview rubric CARD --edit`.")
            return
        if target is None or target.final is None or not target.final.graded or not target.card.has_answer:
            yield Notice("There are no key points to edit yet: answer a question from your notes first.")
            return
        if s.phase is not Phase.POINTS:
            s._resume_phase = s.phase
        s._target = target
        s.phase = Phase.POINTS
        if arg.strip():
            async for event in self.edit_points(arg):
                yield event
            return
        rubric = (await s._retrieval(target.card)).rubric or compile_rubric(target.card)
        lines = "\n".join(f"{p.weight} | {p.label} | {p.text}" for p in rubric.points)
        yield Notice(
            f"Key points for “{target.card.display_question}” (version {rubric.version}, {rubric.compiled_by}). "
            "Send them back edited, one per line as `weight | label | text` (weight: core or detail; "
            "the label may be empty), and your answer is graded again against them. Any command cancels.\n\n"
            f"```text\n{lines}\n```"
        )

    async def edit_points(self, text: str) -> AsyncIterator[Event]:
        """The user's edited key points: stored for this user, then the same answer is graded again."""
        s = self.session
        q = s._target
        assert q is not None and s.deps.edit_rubric is not None
        current = (await s._retrieval(q.card)).rubric or compile_rubric(q.card)
        try:
            edited = parse_rubric_text(text, current, q.card.display_question)
        except ValueError as exc:
            yield Notice(
                f"Those key points were not stored: {exc}. Send them again, or any command to cancel.", "warning"
            )
            return
        stored = await s.deps.edit_rubric(q.card, edited)
        yield Notice(f"Key points saved (version {stored.version}). Grading your answer again against them.")
        async for event in s._appeal(f"key points edited (version {stored.version})", AttemptKind.REGRADE):
            yield event

    async def _end(self, arg: str, card_id: str | None) -> AsyncIterator[Event]:
        s = self.session
        q = s.current
        if q is not None and s.phase is Phase.FOLLOW_UP:
            for held in s._held_grade(q):
                yield held
        if q is not None and q.answered and not q.done and (closed := await s._close(q)):
            yield closed
        async for event in s._finish():
            yield event
