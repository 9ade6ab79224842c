"""Load control for the web app: every user's grade shares one event loop.

Only the web adapter needs it, so it lives here and wraps the grader pipeline from
:func:`bot.grading.pipeline.build_grader` (``Coach.open(..., wrap=...)``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from bot.grading.base import DEFAULT_CONCURRENCY, Grade, GradeEvent, Grader, GradeRequest

__all__ = ["LoadAwareGrader"]


class LoadAwareGrader:
    """The app's grader, aware of load on the one event loop every user shares.

    * Feedback streams token by token only while fewer than ``max_streams`` grades are in flight;
      beyond that grades arrive whole (streaming costs CPU per token).
    * Grades first: between a grade coming back and its message reaching the user it counts as
      *delivering*; :meth:`settle` lets the work that follows a shown grade (scheduling, the next
      question) wait, briefly, until the other users' grades are out.
    """

    def __init__(self, inner: Grader, max_streams: int) -> None:
        self.inner = inner
        self.max_streams = max_streams
        self.in_flight = 0
        self.delivering = 0
        self._settled: asyncio.Condition | None = None

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def prompt_version(self) -> str:
        return self.inner.prompt_version

    @property
    def batched(self) -> bool:
        return self.inner.batched

    async def agrade(self, request: GradeRequest) -> Grade:
        self.in_flight += 1
        try:
            grade: Grade = await self.inner.agrade(request)
        finally:
            self.in_flight -= 1
        self.delivering += 1
        return grade

    async def astream(self, request: GradeRequest) -> AsyncIterator[GradeEvent]:
        if self.in_flight >= self.max_streams:
            yield await self.agrade(request)
            return
        self.in_flight += 1
        try:
            async for item in self.inner.astream(request):
                if isinstance(item, Grade):
                    self.delivering += 1
                yield item
        finally:
            self.in_flight -= 1

    async def agrade_many(
        self, requests: Sequence[GradeRequest], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[Grade]:
        self.in_flight += len(requests)
        try:
            grades = await self.inner.agrade_many(requests, concurrency=concurrency)
        finally:
            self.in_flight -= len(requests)
        self.delivering += len(grades)
        return grades

    def _condition(self) -> asyncio.Condition:
        if self._settled is None:
            self._settled = asyncio.Condition()
        return self._settled

    async def delivered(self) -> None:
        """A grade's message has been shown."""
        self.delivering = max(0, self.delivering - 1)
        if self.delivering == 0:
            async with self._condition():
                self._condition().notify_all()

    async def settle(self, timeout: float) -> None:
        """Wait (at most ``timeout`` s) until no other grade is waiting to be shown."""
        if self.delivering == 0:
            return
        cond = self._condition()
        async with cond:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cond.wait_for(lambda: self.delivering == 0), timeout)
