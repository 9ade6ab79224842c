"""Markdown for the chat and terminal, and the one dispatch of session events: framework-free,
so every adapter shows the same thing. Text from notes, answers and models is made inert (no
image, no link: ``bot.adapters.inert``); what the app writes here has neither."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Generic, TypeVar, assert_never

from bot.adapters.inert import inert
from bot.grading.base import Grade
from bot.knowledge.cards import Card
from bot.practice.events import (
    AppealRequested,
    Asked,
    Closed,
    Event,
    Feedback,
    Finished,
    FollowUpAsked,
    Graded,
    Grading,
    Hint,
    Notice,
    Reference,
    Retrieved,
    Skipped,
)

__all__ = [
    "SessionRenderer",
    "follow_up_md",
    "grade_md",
    "graded_md",
    "hint_md",
    "question_md",
    "reference_md",
    "schedule_md",
    "source_line",
    "when",
]


def source_line(card: Card) -> str:
    s = card.source
    if s.page_start is not None:
        end = s.page_end or s.page_start
        return f"{s.path}, page {s.page_start}" if end == s.page_start else f"{s.path}, pages {s.page_start}–{end}"
    lines = f"line {s.line_start}" if s.line_start == s.line_end else f"lines {s.line_start}–{s.line_end}"
    return f"{s.path}, {lines}"


def question_md(card: Card, k: int, n: int, *, retry: bool = False, resumed: bool = False, leech: str = "") -> str:
    star = " · ⭐ important" if card.important else ""
    lead = "Retry — " if retry else ("Back to " if resumed else "")
    note = (
        "" if card.has_answer else "\n\n_Your notes have no answer for this one; I'll grade it from general knowledge._"
    )
    if leech:
        note += f"\n\n⚠️ _Leech: {leech}_"
    if "rephrased" in card.flags:  # bot.practice.rephrase.FLAG_REPHRASED
        note += "\n\n_Back for review, asked in other words._"
    return inert(f"**{lead}Question {k} of {n}** · _{card.topic}_{star}\n\n### {card.display_question}{note}")


def follow_up_md(text: str, number: int, of: int) -> str:
    return inert(f"**Follow-up {number} of {of}** — {text}")


def hint_md(hint: str, used: int) -> str:
    return inert(f"💡 Hint {used}: {hint}")


def graded_md(grade: Grade, card: Card, *, show_reference: bool, previous: Grade | None = None, kind: str = "") -> str:
    """The message shown after an answer: the grade, what it replaced, and (study mode) the reference."""
    head = ""
    if previous is not None and previous.graded and grade.graded:
        what = {"appeal": "Appeal", "regrade": "With your key points"}.get(kind, "Retry")
        head = f"_{what}: {previous.score:.1f} → {grade.score:.1f} (both grades are kept)._\n\n"
    body = head + grade_md(grade)
    if show_reference:
        body += "\n\n" + reference_md(card)
    return body


def quote(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


def reference_md(card: Card) -> str:
    if not card.has_answer:
        return f"_Your notes have no answer for this question ({inert(source_line(card))})._"
    return inert(f"**From your notes** ({source_line(card)}):\n\n{quote(card.answer)}")


_MARK = {"hit": "✅", "missed": "⬜", "contradicted": "❌"}


def grade_md(grade: Grade) -> str:
    """A grade as Markdown: score and band, checklist, feedback, notes."""
    if not grade.graded:
        return inert(f"**Ungraded** — {grade.ungraded_reason}\n\n_({grade.grader})_")
    lines = [f"**Score: {grade.score:.1f}/10 · {grade.band.value if grade.band else ''}**"]
    if grade.graded_without_reference:
        lines.append("_Graded without a reference from your notes._")
    if grade.claims:
        lines.append("")
        lines.extend(
            f"- {_MARK[c.status.value]} {c.point}" + (f" — _“{c.evidence}”_" if c.evidence else "")
            for c in grade.claims
        )
    if grade.misconceptions:
        lines += ["", "**Misconceptions:** " + "; ".join(grade.misconceptions)]
    if grade.feedback:
        lines += ["", grade.feedback]
    if grade.model_answer:
        lines += ["", "**A strong answer:** " + grade.model_answer]
    if grade.reference_issue:
        lines += ["", "**About your note:** " + grade.reference_issue]
    extra = list(grade.notes)
    if grade.fallback_reason:
        extra.insert(0, f"LLM grader unavailable ({grade.fallback_reason}); offline grade shown")
    if extra:
        lines += ["", *(f"_Note: {n}_" for n in extra)]
    lines += ["", f"_graded by {grade.grader}{f' · {grade.prompt_version}' if grade.prompt_version else ''}_"]
    return inert("\n".join(lines))


def when(due: datetime, now: datetime) -> str:
    """ "in 10 minutes", "in 3 days", "now" — how far ``due`` is from ``now`` (rounded)."""
    seconds = (due - now).total_seconds()
    if seconds < 30:
        return "now"
    for unit, size, limit in (("minute", 60, 60), ("hour", 3600, 24), ("day", 86400, None)):
        n = max(1, round(seconds / size))
        if limit is None or n < limit:
            return f"in {n} {unit}{'s' if n != 1 else ''}"
    return "now"  # pragma: no cover - the last unit has no limit


def schedule_md(receipt: Any, now: datetime) -> str:
    """One line about how a finished question was scheduled (a review from the history), or ""."""
    if receipt is None or not hasattr(receipt, "rating"):
        return ""
    if receipt.rating is None:
        return "_Not scheduled: this question has no grade, so your review plan is unchanged._"
    name = getattr(receipt.rating, "name", str(receipt.rating)).capitalize()
    due = getattr(receipt, "due", None)
    tail = f" · next review {when(due, now)}" if due is not None else ""
    return f"_Rated **{name}**{tail}._"


R = TypeVar("R")


class SessionRenderer(ABC, Generic[R]):
    """How an adapter shows a session: one method per event. :meth:`show` is the one dispatch all
    adapters share (the terminal's methods return None, the chat's are coroutines to await)."""

    def show(self, event: Event) -> R:
        match event:
            case Asked():
                return self.asked(event)
            case FollowUpAsked():
                return self.follow_up_asked(event)
            case Retrieved():
                return self.retrieved(event)
            case Grading():
                return self.grading(event)
            case Feedback():
                return self.feedback(event)
            case Graded():
                return self.graded(event)
            case Hint():
                return self.hint(event)
            case Reference():
                return self.reference(event)
            case Skipped():
                return self.skipped(event)
            case AppealRequested():
                return self.appeal_requested(event)
            case Notice():
                return self.notice(event)
            case Closed():
                return self.closed(event)
            case Finished():
                return self.finished(event)
            case _:
                assert_never(event)

    @abstractmethod
    def asked(self, event: Asked) -> R: ...

    @abstractmethod
    def follow_up_asked(self, event: FollowUpAsked) -> R: ...

    @abstractmethod
    def retrieved(self, event: Retrieved) -> R: ...

    @abstractmethod
    def grading(self, event: Grading) -> R: ...

    @abstractmethod
    def feedback(self, event: Feedback) -> R: ...

    @abstractmethod
    def graded(self, event: Graded) -> R: ...

    @abstractmethod
    def hint(self, event: Hint) -> R: ...

    @abstractmethod
    def reference(self, event: Reference) -> R: ...

    @abstractmethod
    def skipped(self, event: Skipped) -> R: ...

    @abstractmethod
    def appeal_requested(self, event: AppealRequested) -> R: ...

    @abstractmethod
    def notice(self, event: Notice) -> R: ...

    @abstractmethod
    def closed(self, event: Closed) -> R: ...

    @abstractmethod
    def finished(self, event: Finished) -> R: ...
