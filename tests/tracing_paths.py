"""Drives the web and terminal grading paths in one process, for tests/test_tracing.py.

Run as ``python -m tests.tracing_paths`` with tracing, the fake OpenAI server and a seeded data
dir in the environment. Prints one JSON object: how many grades each path produced (and how many
of them were appeals), so the test can compare with the ``grade`` runs LangSmith received.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

from bot.adapters.load import LoadAwareGrader
from bot.grading.base import Grader
from bot.grading.pipeline.worker import GraderPool
from bot.practice.coach import Coach
from bot.practice.session import Graded, InterviewSession, Mode, SessionConfig
from bot.settings import get_settings


async def drive(session: InterviewSession, messages: list[str], counts: Counter[str], path: str) -> None:
    events: list[Any] = [e async for e in session.begin()]
    for text in messages:
        events += [e async for e in session.handle(text)]
    for event in events:
        if isinstance(event, Graded):
            counts[path] += 1
            counts[f"{path}:{event.attempt.kind.value}"] += 1


async def main() -> None:
    settings = get_settings()
    counts: Counter[str] = Counter()
    loads: list[LoadAwareGrader] = []

    def load_control(grader: Grader) -> Grader:
        loads.append(LoadAwareGrader(grader, settings.max_streams))
        return loads[-1]

    web = Coach.open(settings, mode="web", worker=True, wrap=load_control)
    process = loads[0].inner
    assert isinstance(process, GraderPool), "the web app grades in worker processes here"
    await process.wait_ready()
    study = SessionConfig(n_questions=2, mode=Mode.STUDY)
    session = await web.start(study, rng=random.Random(1))
    await drive(
        session,
        ["Dropout switches off random neurons.", "/appeal I did name it.", "It is fine."],
        counts,
        "web",
    )
    counts["web:worker_fallbacks"] = process.fallbacks

    terminal = Coach.open(settings, mode="terminal")
    interview = SessionConfig(n_questions=2, mode=Mode.INTERVIEW, max_follow_ups=1)
    session = await terminal.start(interview, rng=random.Random(2))
    await drive(
        session,
        ["It switches off neurons.", "And it curbs overfitting.", "/appeal Both points are there."],
        counts,
        "terminal",
    )
    print(json.dumps(counts))


if __name__ == "__main__":
    asyncio.run(main())
