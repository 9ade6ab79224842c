"""End to end: start the real app (`interview web`) and drive a session over socket.io."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(seeded: Path, tmp_path: Path) -> Iterator[tuple[int, float]]:
    port = _free_port()
    env = {**os.environ, "INTERVIEW_DATA_DIR": str(seeded), "CHAINLIT_APP_ROOT": str(Path(__file__).parents[1])}
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("interview")), "web", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    deadline = started + 60
    ready = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                if r.status == 200:
                    ready = time.monotonic() - started
                    break
        except OSError:
            time.sleep(0.2)
    if ready is None:
        proc.kill()
        out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
        pytest.fail(f"the app did not start:\n{out[-3000:]}")
    try:
        yield port, ready
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _user_message(text: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "message": {
            "id": str(uuid.uuid4()),
            "threadId": "",
            "name": "User",
            "type": "user_message",
            "output": text,
            "createdAt": now,
            "parentId": None,
        },
        "fileReferences": [],
    }


async def test_question_answer_grade_next_over_socketio(server: tuple[int, float]) -> None:
    import socketio

    port, _ = server
    messages: list[str] = []
    got = asyncio.Event()
    client = socketio.AsyncClient(reconnection=False)

    @client.on("new_message")
    async def on_new(step: dict[str, Any]) -> None:
        if step.get("type") == "assistant_message":
            messages.append(step.get("output", ""))
            got.set()

    async def wait_for(predicate: Any, timeout: float = 60) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for m in messages:
                if predicate(m):
                    return m
            got.clear()
            try:
                await asyncio.wait_for(got.wait(), timeout=max(0.1, end - time.monotonic()))
            except TimeoutError:
                break
        raise AssertionError(f"no matching message; got {messages}")

    await client.connect(
        f"http://127.0.0.1:{port}",
        socketio_path="/ws/socket.io",
        transports=["websocket"],
        auth={"clientType": "webapp", "sessionId": str(uuid.uuid4()), "userEnv": "{}"},
    )
    try:
        await client.emit("connection_successful")
        await wait_for(lambda m: "offline grader" in m)
        await wait_for(lambda m: m.startswith("**Question 1 of 5**"))
        await client.emit("client_message", _user_message("It stops overfitting by randomly dropping neurons."))
        graded = await wait_for(lambda m: "Score:" in m or "Ungraded" in m)
        assert "graded by offline" in graded
        assert "From your notes" in graded or "no answer" in graded
        await wait_for(lambda m: m.startswith("**Question 2 of 5**"))
    finally:
        await client.disconnect()
