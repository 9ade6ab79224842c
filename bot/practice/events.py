"""What an :class:`~bot.practice.session.InterviewSession` yields: the events adapters render.

Each is a small frozen dataclass; :data:`Event` is their union. The Chainlit app and the terminal
match on these types and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.grading.base import Grade
from bot.knowledge.cards import Card
from bot.practice.attempts import Attempt, AttemptKind
from bot.retrieval.store import Retrieval

if TYPE_CHECKING:
    from bot.practice.session import InterviewSession

__all__ = [
    "AppealRequested",
    "Asked",
    "Closed",
    "Event",
    "Feedback",
    "Finished",
    "FollowUpAsked",
    "Graded",
    "Grading",
    "Hint",
    "Notice",
    "Reference",
    "Retrieved",
    "Skipped",
]


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
    point: str  # the hint as shown: a key point named by its rubric label, not its content
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
