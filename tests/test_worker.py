"""The LLM grader in a worker process: same grades, streaming, and no grade lost when it dies."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.grading.base import Grade
from bot.grading.pipeline.worker import GraderPool, GraderWorker
from tests.fake_openai import FakeOpenAI, Reply
from tests.test_llm_grader import REQ, reply

pytestmark = pytest.mark.slow  # starts a Python process that imports LangChain


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch, isolated_state: Path) -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        for k, v in {**fake.env(), "INTERVIEW_GRADER": "llm", "INTERVIEW_LLM_MODEL": "gpt-4o-mini"}.items():
            monkeypatch.setenv(k, v)
        yield fake


@pytest.fixture
def worker(model: FakeOpenAI, local_embedder: Any) -> Iterator[GraderWorker]:
    from bot.grading.pipeline import build_grader
    from bot.settings import Settings

    w = GraderWorker(build_grader(Settings(), local_embedder)).start()
    yield w
    w.stop()


async def test_grades_and_streams_through_the_worker_process(model: FakeOpenAI, worker: GraderWorker) -> None:
    model.chat.default = lambda req: Reply.json(json_reply())
    await worker.wait_ready()
    grade = await worker.agrade(REQ)
    assert grade.graded and grade.grader == "llm:gpt-4o-mini" and grade.score == 6.5
    items = [item async for item in worker.astream(REQ)]
    assert isinstance(items[-1], Grade) and items[-1].score == 6.5
    deltas = "".join(i.text for i in items[:-1])
    assert deltas == "Good: you named the mechanism and the purpose."
    assert worker.fallbacks == 0
    assert len(model.requests("chat")) == 2  # both went to the model, from the worker process
    answers = await asyncio.gather(*(worker.agrade(REQ) for _ in range(20)))  # concurrent requests
    assert all(g.score == 6.5 for g in answers) and worker.fallbacks == 0


async def test_a_dead_worker_costs_no_grade_and_is_restarted(model: FakeOpenAI, worker: GraderWorker) -> None:
    model.chat.default = lambda req: Reply.json(json_reply())
    await worker.wait_ready()
    assert (await worker.agrade(REQ)).graded
    assert worker._proc is not None
    os.kill(worker._proc.pid, signal.SIGKILL)
    worker._proc.wait(10)
    grade = await worker.agrade(REQ)  # the worker is gone: graded in-process while a new one boots
    assert grade.graded and grade.score == 6.5 and worker.fallbacks >= 1
    await worker.wait_ready()
    before = worker.fallbacks
    again = await worker.agrade(REQ)
    assert again.graded and worker._proc.poll() is None and worker.fallbacks == before  # the new worker answers


async def test_grades_in_process_while_the_worker_boots(model: FakeOpenAI, worker: GraderWorker) -> None:
    model.chat.default = lambda req: Reply.json(json_reply())
    worker.stop()
    worker._proc = None
    grade = await worker.agrade(REQ)  # the worker was just (re)started and does not accept yet
    assert grade.graded and grade.score == 6.5 and worker.fallbacks == 1


async def test_the_worker_exits_with_the_app_connection(model: FakeOpenAI, worker: GraderWorker) -> None:
    model.chat.default = lambda req: Reply.json(json_reply())
    await worker.wait_ready()
    await worker.agrade(REQ)
    assert worker._writer is not None and worker._proc is not None
    worker._writer.close()
    await asyncio.get_running_loop().run_in_executor(None, worker._proc.wait, 10)
    assert worker._proc.returncode == 0 and not worker.socket_path.exists()


def json_reply() -> Any:
    import json

    return json.loads(reply(("hit", "missed"), correctness=3, depth=1))


async def test_stopping_the_worker_leaves_no_folder_behind(model: FakeOpenAI, worker: GraderWorker) -> None:
    """Issue 14 (9): empty /tmp/interview-grader-* folders were left behind."""
    await worker.wait_ready()
    folder = worker.socket_path.parent
    assert folder.name.startswith("interview-grader-") and folder.is_dir()
    worker.stop()
    assert not folder.exists()


def test_a_worker_never_started_leaves_no_folder_behind(tmp_path: Path) -> None:
    worker = GraderWorker(object(), socket_dir=tmp_path)  # type: ignore[arg-type]
    worker.stop()
    assert list(tmp_path.iterdir()) == []


def test_the_pool_sends_each_grade_to_the_worker_with_the_fewest_in_flight(tmp_path: Path) -> None:
    pool = GraderPool(object(), 3, socket_dir=tmp_path)  # type: ignore[arg-type]
    a, b, c = pool.workers
    a._pending.update({1: asyncio.Queue(), 2: asyncio.Queue()})
    b._pending.update({3: asyncio.Queue()})
    c._pending.update({4: asyncio.Queue(), 5: asyncio.Queue()})
    assert pool._pick() is b
    b._pending.update({6: asyncio.Queue(), 7: asyncio.Queue()})
    assert pool._pick() is a  # a tie goes to the first
    with pytest.raises(ValueError, match="at least one"):
        GraderPool(object(), 0, socket_dir=tmp_path)  # type: ignore[arg-type]
    pool.stop()
    assert list(tmp_path.iterdir()) == []


async def test_a_pool_of_two_workers_shares_a_burst_of_grades(model: FakeOpenAI, local_embedder: Any) -> None:
    from bot.grading.pipeline import build_grader
    from bot.settings import Settings

    model.chat.default = lambda req: Reply.slow(0.2, Reply.json(json_reply()))
    pool = GraderPool(build_grader(Settings(), local_embedder), 2).start()
    try:
        await pool.wait_ready()
        seen: list[int] = []
        for w in pool.workers:
            run = w._run

            def counted(request: Any, *, stream: bool, w: GraderWorker = w, run: Any = run) -> Any:
                seen.append(pool.workers.index(w))
                return run(request, stream=stream)

            w._run = counted  # type: ignore[method-assign]
        grades = await asyncio.gather(*(pool.agrade(REQ) for _ in range(10)))
        assert all(g.graded and g.score == 6.5 for g in grades) and pool.fallbacks == 0
        assert sorted(seen) == [0] * 5 + [1] * 5  # while all are in flight, they alternate
        assert len(model.requests("chat")) == 10
    finally:
        pool.stop()
