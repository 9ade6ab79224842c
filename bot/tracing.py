"""LangSmith tracing of grading runs (only when ``LANGSMITH_TRACING`` is on).

Every grade becomes a ``grade`` run carrying metadata — grader, prompt version, card id, topic and
where it came from (``mode``: cli, study, interview, eval) — with the LLM call nested inside it.
No secrets are attached: the metadata is built here from non-secret fields only, and LangChain
serialises API keys as masked secrets.
"""

from __future__ import annotations

import os
from typing import Any

from bot.grading import Grade, GradeRequest

__all__ = ["TracedGrader", "maybe_traced", "tracing_enabled"]


def tracing_enabled() -> bool:
    for var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes"):
            return True
    return False


class TracedGrader:
    """Wraps any grader so each ``agrade`` is a LangSmith run with grading metadata."""

    def __init__(self, inner: Any, *, mode: str) -> None:
        self._inner = inner
        self._mode = mode

    @property
    def name(self) -> str:
        return str(self._inner.name)

    @property
    def inner(self) -> Any:
        return self._inner

    def metadata(self, request: GradeRequest) -> dict[str, str]:
        return {
            "grader": self.name,
            "prompt_version": str(getattr(self._inner, "prompt_version", "")),
            "card_id": request.card_id or "",
            "topic": request.topic,
            "mode": self._mode,
        }

    async def agrade(self, request: GradeRequest) -> Grade:
        from langsmith import traceable

        traced = traceable(run_type="chain", name="grade")(self._inner.agrade)
        result: Grade = await traced(
            request, langsmith_extra={"metadata": self.metadata(request), "tags": ["interview-coach", self._mode]}
        )
        return result

    def __getattr__(self, item: str) -> Any:  # grade_many, astream, mode… stay available
        return getattr(self._inner, item)


def maybe_traced(grader: Any, *, mode: str) -> Any:
    return TracedGrader(grader, mode=mode) if tracing_enabled() else grader
