"""The LLM grader in a worker process, so a burst of answers doesn't queue on the app's event loop.

Each LLM grade costs a few milliseconds of CPU in the client stack (LangChain, the OpenAI SDK,
httpx) before and after the model call. In the web app that CPU is taken from the one event loop
every user shares; with 50 answers arriving together the last grade waited ~0.4 s just for the
others' requests to be built. The worker runs the same grader (same settings, same offline
fallback, same tracing) in its own process, so that work lands on another core.

Protocol: one Unix socket, one JSON object per line. The app sends
``{"id": n, "stream": bool, "request": GradeRequest}``; the worker answers with any number of
``{"id": n, "delta": "..."}`` and then ``{"id": n, "grade": Grade}`` (or ``{"id": n, "error": "..."}``).
If the worker is missing, dies or errors, the app grades in-process instead: a grade is never lost.
The worker exits when the app closes the connection or the app process goes away.

A :class:`GraderPool` runs several workers (``INTERVIEW_GRADER_WORKERS``, one per core up to 2 by
default) and hands each grade to the one with the fewest grades in flight: one worker builds and
parses 50 simultaneous requests one after another (~6 ms of client CPU each), two halve that queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from bot.grading.base import DEFAULT_CONCURRENCY, FeedbackDelta, Grade, GradeEvent, Grader, GradeRequest, grade_each

__all__ = ["GraderPool", "GraderWorker", "main"]

LINE_LIMIT = 16 * 1024 * 1024  # a 200 KB paste is far below this
START_TIMEOUT_S = 60.0


class _InFrontOf:
    """A grader in front of ``fallback`` (the in-process pipeline): its name and prompt version; grades
    one request at a time (``batched`` False)."""

    fallback: Grader

    @property
    def name(self) -> str:
        return self.fallback.name

    @property
    def prompt_version(self) -> str:
        return self.fallback.prompt_version

    @property
    def batched(self) -> bool:
        return False


class GraderWorker(_InFrontOf):
    """App side: a grader whose ``agrade``/``astream`` run in the worker process."""

    def __init__(self, fallback: Grader, *, socket_dir: Path | None = None) -> None:
        self.fallback = fallback  # the same grader, in-process: used whenever the worker can't answer
        self._dir = Path(tempfile.mkdtemp(prefix="interview-grader-", dir=socket_dir))
        self.socket_path = self._dir / "grader.sock"
        self._proc: subprocess.Popen[bytes] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._lock: asyncio.Lock | None = None
        self.fallbacks = 0  # grades done in-process because the worker could not

    # -- process -----------------------------------------------------------------------------

    def start(self) -> GraderWorker:
        """Spawn the worker (non-blocking); the first grade connects to it."""
        if self._proc is None or self._proc.poll() is not None:
            self._dir.mkdir(exist_ok=True)  # a worker that exited removed it
            self.socket_path.unlink(missing_ok=True)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "bot.grading.pipeline.worker", str(self.socket_path), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        _remove_socket(self.socket_path)

    async def _connect(self) -> asyncio.StreamWriter:
        """The connection to the worker; raises ``OSError`` while it is still starting (the caller
        grades in-process meanwhile: the first answers never wait for the worker to boot)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._writer is not None and not self._writer.is_closing():
                return self._writer
            self.start()
            reader, writer = await asyncio.open_unix_connection(str(self.socket_path), limit=LINE_LIMIT)
            self._writer = writer
            self._reader_task = asyncio.create_task(self._read(reader))
            return writer

    async def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until the worker accepts grades (tests, and callers who want no in-process grades)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self._connect()
                return
            except OSError:
                if time.monotonic() > deadline or (self._proc is not None and self._proc.poll() is not None):
                    raise
                await asyncio.sleep(0.05)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                msg = json.loads(line)
                queue = self._pending.get(int(msg.get("id", 0)))
                if queue is not None:
                    queue.put_nowait(msg)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writer = None
            for queue in self._pending.values():
                queue.put_nowait({"error": "the grader worker exited"})

    # -- grading -----------------------------------------------------------------------------

    async def agrade(self, request: GradeRequest) -> Grade:
        grade: Grade | None = None
        async for item in self._run(request, stream=False):
            if isinstance(item, Grade):
                grade = item
        assert grade is not None
        return grade

    async def astream(self, request: GradeRequest) -> AsyncIterator[GradeEvent]:
        async for item in self._run(request, stream=True):
            yield item

    async def agrade_many(
        self, requests: Sequence[GradeRequest], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[Grade]:
        return await grade_each(self, requests, concurrency)

    async def _run(self, request: GradeRequest, *, stream: bool) -> AsyncIterator[GradeEvent]:
        rid = next(self._ids)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._pending[rid] = queue
        problem = ""
        try:
            try:
                writer = await self._connect()
                line = json.dumps({"id": rid, "stream": stream, "request": request.model_dump(mode="json")})
                writer.write(line.encode() + b"\n")
                await writer.drain()
            except (OSError, ConnectionError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            while not problem:
                msg = await queue.get()
                if "delta" in msg:
                    yield FeedbackDelta(str(msg["delta"]))
                elif "grade" in msg:
                    yield Grade.model_validate(msg["grade"])
                    return
                else:
                    problem = str(msg.get("error", "bad message from the grader worker"))
        finally:
            self._pending.pop(rid, None)
        self.fallbacks += 1  # the worker could not answer: grade here, the user never loses a grade
        if stream:
            async for item in self.fallback.astream(request):
                yield item
        else:
            yield await self.fallback.agrade(request)

    @property
    def in_flight(self) -> int:
        """Grades sent to this worker and not answered yet."""
        return len(self._pending)


class GraderPool(_InFrontOf):
    """Several :class:`GraderWorker` processes behind one grader: each grade goes to the worker with the
    fewest grades in flight (the first on a tie); each worker keeps its own in-process fallback."""

    def __init__(self, fallback: Grader, size: int, *, socket_dir: Path | None = None) -> None:
        if size < 1:
            raise ValueError("a grader pool needs at least one worker")
        self.fallback = fallback
        self.workers = [GraderWorker(fallback, socket_dir=socket_dir) for _ in range(size)]

    @property
    def fallbacks(self) -> int:
        """Grades done in-process because a worker could not answer, all workers together."""
        return sum(w.fallbacks for w in self.workers)

    def start(self) -> GraderPool:
        for w in self.workers:
            w.start()
        return self

    def stop(self) -> None:
        for w in self.workers:
            w.stop()

    async def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        await asyncio.gather(*(w.wait_ready(timeout) for w in self.workers))

    def _pick(self) -> GraderWorker:
        return min(self.workers, key=lambda w: w.in_flight)

    async def agrade(self, request: GradeRequest) -> Grade:
        return await self._pick().agrade(request)

    async def astream(self, request: GradeRequest) -> AsyncIterator[GradeEvent]:
        async for item in self._pick().astream(request):
            yield item

    async def agrade_many(
        self, requests: Sequence[GradeRequest], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[Grade]:
        return await grade_each(self, requests, concurrency)


# --- the worker process ---------------------------------------------------------------------


async def _serve(socket_path: str, parent_pid: int) -> None:
    from bot.grading.pipeline.build import build_grader
    from bot.settings import get_settings

    grader = build_grader(get_settings(), mode="web")
    gc.freeze()  # the loaded libraries live as long as the worker: full collections skip them
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        write_lock = asyncio.Lock()
        tasks: set[asyncio.Task[None]] = set()

        async def send(obj: dict[str, Any]) -> None:
            async with write_lock:
                writer.write(json.dumps(obj).encode() + b"\n")
                await writer.drain()

        async def one(msg: dict[str, Any]) -> None:
            rid = msg.get("id")
            try:
                request = GradeRequest.model_validate(msg["request"])
                if msg.get("stream"):
                    async for item in grader.astream(request):
                        if isinstance(item, Grade):
                            await send({"id": rid, "grade": item.model_dump(mode="json")})
                        else:
                            await send({"id": rid, "delta": item.text})
                else:
                    grade = await grader.agrade(request)
                    await send({"id": rid, "grade": grade.model_dump(mode="json")})
            except Exception as exc:  # the app falls back to grading in-process
                await send({"id": rid, "error": f"{type(exc).__name__}: {exc}"[:500]})

        try:
            while line := await reader.readline():
                task = asyncio.create_task(one(json.loads(line)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            done.set()  # the app closed the connection: this worker is no longer needed

    server = await asyncio.start_unix_server(handle, socket_path, limit=LINE_LIMIT)

    async def watch_parent() -> None:
        while os.getppid() == parent_pid:
            await asyncio.sleep(1.0)
        done.set()

    # Stopped by the app (SIGTERM): finish like a closed connection, so queued trace runs are sent.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
    watcher = asyncio.create_task(watch_parent())
    async with server:
        await done.wait()
    watcher.cancel()


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    socket_path, parent_pid = args[0], int(args[1])
    try:
        asyncio.run(_serve(socket_path, parent_pid))
    except KeyboardInterrupt:
        pass
    finally:
        _remove_socket(Path(socket_path))


def _remove_socket(path: Path) -> None:
    """Remove the socket and its private folder (only if empty: never anything else)."""
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()


if __name__ == "__main__":
    main()
