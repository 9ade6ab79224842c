"""LangSmith tracing of grading runs (only when ``LANGSMITH_TRACING`` is on).

Every grade becomes a ``grade`` run carrying metadata — grader, prompt version, card id, topic and
where it came from (``mode``: web, terminal, cli, eval) and whether it is an appeal — with the LLM
call nested inside it.
No secrets are attached: the metadata is built here from non-secret fields only, and LangChain
serialises API keys as masked secrets.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bot.grading.base import DEFAULT_CONCURRENCY, Grade, GradeEvent, Grader, GradeRequest, grade_each

if TYPE_CHECKING:
    from langsmith.run_helpers import LangSmithExtra

__all__ = [
    "DEFAULT_ENDPOINT",
    "TracedGrader",
    "endpoint",
    "endpoint_reachable",
    "maybe_traced",
    "probe_endpoint",
    "tracing_enabled",
]


def tracing_enabled() -> bool:
    for var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes"):
            return True
    return False


def _final_grade(items: Sequence[Any]) -> dict[str, Any]:
    """The output of a streamed ``grade`` run: the grade it ended with, not every delta."""
    grades = [item for item in items if isinstance(item, Grade)]
    return {"output": grades[-1].model_dump(mode="json")} if grades else {}


class TracedGrader:
    """A grader whose every grade is one LangSmith ``grade`` run with grading metadata, whichever
    way it was asked for: ``agrade``, ``astream`` or ``agrade_many``."""

    def __init__(self, inner: Grader, *, mode: str) -> None:
        self._inner = inner
        self._mode = mode

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def prompt_version(self) -> str:
        return self._inner.prompt_version

    @property
    def batched(self) -> bool:
        return self._inner.batched

    def metadata(self, request: GradeRequest) -> dict[str, str]:
        return {
            "grader": self.name,
            "prompt_version": self.prompt_version,
            "card_id": request.card_id or "",
            "topic": request.topic,
            "mode": self._mode,
            "appeal": "yes" if request.appeal.strip() else "no",
        }

    def _extra(self, request: GradeRequest) -> LangSmithExtra:
        return {"metadata": self.metadata(request), "tags": ["interview-coach", self._mode]}

    async def agrade(self, request: GradeRequest) -> Grade:
        from langsmith import traceable

        traced = traceable(run_type="chain", name="grade")(self._inner.agrade)
        result: Grade = await traced(request, langsmith_extra=self._extra(request))
        return result

    async def astream(self, request: GradeRequest) -> AsyncIterator[GradeEvent]:
        from langsmith import traceable

        async def grade(request: GradeRequest) -> AsyncIterator[GradeEvent]:
            async for item in self._inner.astream(request):
                yield item

        traced = traceable(run_type="chain", name="grade", reduce_fn=_final_grade)(grade)
        async for item in traced(request, langsmith_extra=self._extra(request)):
            yield item

    async def agrade_many(
        self, requests: Sequence[GradeRequest], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[Grade]:
        """A batch grader grades the batch in one go, then each grade is recorded as its own run;
        any other grader is asked one answer at a time, so the model call nests inside its run."""
        if not self._inner.batched:
            return await grade_each(self, requests, concurrency)
        from langsmith import trace

        grades = await self._inner.agrade_many(requests, concurrency=concurrency)
        for request, grade in zip(requests, grades, strict=True):
            inputs = {"request": request.model_dump(mode="json")}
            tags = ["interview-coach", self._mode]
            with trace("grade", run_type="chain", inputs=inputs, metadata=self.metadata(request), tags=tags) as run:
                run.metadata["batch_size"] = len(requests)
                run.end(outputs={"output": grade.model_dump(mode="json")})
        return grades


DEFAULT_ENDPOINT = "https://api.smith.langchain.com"


def endpoint() -> str:
    """The LangSmith API address from the environment (the public service when unset)."""
    return (os.environ.get("LANGSMITH_ENDPOINT") or os.environ.get("LANGCHAIN_ENDPOINT") or DEFAULT_ENDPOINT).rstrip(
        "/"
    )


def probe_endpoint(url: str, *, timeout: float = 2.0) -> str:
    """``GET {url}/info`` within ``timeout`` seconds: ``""`` when it answers, else why not
    (``"HTTP 503 to /info"`` or the connection error)."""
    request = urllib.request.Request(url.rstrip("/") + "/info", headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            json.loads(resp.read() or b"{}")
            return ""
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} to /info"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "reason", exc)) or type(exc).__name__


@lru_cache(maxsize=1)
def endpoint_reachable(timeout: float = 2.0) -> bool:
    """One quick probe: an unreachable endpoint would otherwise delay exit by minutes."""
    return not probe_endpoint(endpoint(), timeout=timeout)


def _disable_tracing(reason: str) -> None:
    for var in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
        os.environ[var] = "false"
    print(f"warning: LangSmith tracing is off for this run: {reason}", file=sys.stderr)


def maybe_traced(grader: Grader, *, mode: str) -> Grader:
    """Wrap the grader for tracing when tracing is on and the endpoint answers; otherwise warn and go on."""
    if not tracing_enabled():
        return grader
    if not (os.environ.get("LANGSMITH_API_KEY") or os.environ.get("LANGCHAIN_API_KEY")):
        _disable_tracing("LANGSMITH_TRACING is set but LANGSMITH_API_KEY is not")
        return grader
    if not endpoint_reachable():
        _disable_tracing(f"{endpoint()} did not answer (check LANGSMITH_ENDPOINT and your network)")
        return grader
    return TracedGrader(grader, mode=mode)
