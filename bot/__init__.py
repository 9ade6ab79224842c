"""Interview Coach: a mock-interview coach drilled from your own notes.

The public API — what an embedding program needs; everything else lives in the subpackages
(``bot.knowledge``, ``bot.retrieval``, ``bot.grading``, ``bot.practice``, ``bot.history``,
``bot.evaluation``, ``bot.adapters``; see the README's Architecture section).
"""

from bot.grading.base import Grade, Grader, GradeRequest
from bot.grading.pipeline import build_grader
from bot.knowledge.cards import Card
from bot.practice.session import InterviewSession, SessionConfig
from bot.settings import Settings, get_settings

__all__ = [
    "Card",
    "Grade",
    "GradeRequest",
    "Grader",
    "InterviewSession",
    "SessionConfig",
    "Settings",
    "build_grader",
    "get_settings",
]
