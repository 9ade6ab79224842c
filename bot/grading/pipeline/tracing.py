"""LangSmith tracing of grading runs (only when ``LANGSMITH_TRACING`` is on).

Every grade becomes a ``grade`` run carrying metadata — grader, prompt version, card id, topic and
where it came from (``mode``: cli, study, interview, eval) — with the LLM call nested inside it.
No secrets are attached: the metadata is built here from non-secret fields only, and LangChain
serialises API keys as masked secrets.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from functools import lru_cache
from typing import Any

from bot.grading.base import Grade, GradeRequest

__all__ = ["TracedGrader", "endpoint_reachable", "maybe_traced", "tracing_enabled"]


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


_DEFAULT_ENDPOINT = "https://api.smith.langchain.com"


def _endpoint() -> str:
    return (os.environ.get("LANGSMITH_ENDPOINT") or os.environ.get("LANGCHAIN_ENDPOINT") or _DEFAULT_ENDPOINT).rstrip(
        "/"
    )


@lru_cache(maxsize=1)
def endpoint_reachable(timeout: float = 2.0) -> bool:
    """One quick probe of ``/info``: an unreachable endpoint would otherwise delay exit by minutes."""
    try:
        with urllib.request.urlopen(f"{_endpoint()}/info", timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (OSError, ValueError):
        return False


def _disable_tracing(reason: str) -> None:
    for var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        os.environ[var] = "false"
    print(f"warning: LangSmith tracing is off for this run: {reason}", file=sys.stderr)


def maybe_traced(grader: Any, *, mode: str) -> Any:
    """Wrap the grader for tracing when tracing is on and the endpoint answers; otherwise warn and go on."""
    if not tracing_enabled():
        return grader
    if not (os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY")):
        _disable_tracing("LANGSMITH_TRACING is set but LANGSMITH_API_KEY is not")
        return grader
    if not endpoint_reachable():
        _disable_tracing(f"{_endpoint()} did not answer (check LANGSMITH_ENDPOINT and your network)")
        return grader
    return TracedGrader(grader, mode=mode)
