"""A socket.io client for the running Chainlit 2.12 app, plus a helper that starts ``interview web``.

What the browser does, without the browser::

    with AppServer(data_dir=seeded) as app:               # `interview web` on a free loopback port
        async with ChainlitClient(app.url) as chat:       # connect + "connection_successful"
            await chat.send("/drill 5")                   # a "client_message" (what a starter sends)
            q = await chat.wait_for(lambda m: "Question 1 of" in m)
            await chat.click("hint")                      # HTTP POST /project/action
            ...

Protocol notes (Chainlit 2.12, ``chainlit/socket.py`` and ``chainlit/server.py``):

* The socket.io endpoint is ``/ws/socket.io``; the connect ``auth`` is
  ``{"clientType": "webapp", "sessionId": <uuid>, "userEnv": "{}"}``. The server creates the session
  on ``connect`` and runs ``on_chat_start`` when the client emits ``connection_successful``.
* The server emits ``new_message`` / ``update_message`` / ``delete_message`` with step dicts
  (``id``, ``type`` — ``assistant_message``, ``user_message`` or a step type such as ``tool`` —,
  ``output``, ``parentId``, ``isError``...), ``stream_start`` + ``stream_token`` while streaming,
  ``element`` (files, Plotly figures... with ``forId`` = the message id and a ``chainlitKey`` to fetch
  ``/project/file/<key>?session_id=<sessionId>``), ``chat_settings``, ``task_start``/``task_end``.
* Action buttons are NOT part of the message dict: each one arrives as its own ``action`` event
  (``{"id", "name", "payload", "label", "tooltip", "icon", "forId"}``, ``forId`` = the message id)
  and ``remove_action`` takes it away. Clicking one in the UI is an HTTP
  ``POST /project/action`` with JSON ``{"sessionId": <sessionId>, "action": <that dict>}``; the
  server looks the session up by id, runs the ``@cl.action_callback(name)`` in that session's
  context (its messages go out over the socket) and answers ``{"success": true, "response": ...}``
  only once the callback has returned (404 if no callback has that name).
* A user message is ``client_message`` with ``{"message": <step dict>, "fileReferences": []}``.
* Starters are not sent over the socket: the UI reads them from ``GET /project/settings``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["AppServer", "ChainlitClient", "Msg", "free_port", "user_message"]

ROOT = Path(__file__).resolve().parents[1]
Predicate = Callable[[str], bool] | str | re.Pattern[str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def user_message(text: str, *, command: str | None = None) -> dict[str, Any]:
    """The ``client_message`` payload the web UI sends when the user presses Enter."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    message: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "threadId": "",
        "name": "User",
        "type": "user_message",
        "output": text,
        "createdAt": now,
        "parentId": None,
    }
    if command:
        message["command"] = command
    return {"message": message, "fileReferences": []}


# --------------------------------------------------------------------------------------------- server


class AppServer:
    """``interview web --port P`` in its own process group; ``start()`` waits until ``/`` answers 200.

    ``ready_s`` is the time from spawning to the first 200 on ``/``. ``output()`` returns what the
    process printed (stdout and stderr), for failure messages.
    """

    def __init__(
        self,
        *,
        data_dir: Path | str | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        cwd: Path | str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.port = port or free_port()
        self.timeout = timeout
        self.cwd = str(cwd) if cwd is not None else None
        self.env = {**os.environ, "CHAINLIT_APP_ROOT": str(ROOT), **(env or {})}
        if data_dir is not None:
            self.env["INTERVIEW_DATA_DIR"] = str(data_dir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.ready_s: float | None = None
        self._log_path: Path | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> AppServer:
        """Start the process without waiting (``wait_ready`` waits)."""
        import tempfile

        exe = Path(sys.executable).with_name("interview")
        self._log = tempfile.NamedTemporaryFile(prefix="interview-web-", suffix=".log", delete=False)  # noqa: SIM115
        self._log_path = Path(self._log.name)
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [str(exe), "web", "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        return self

    def wait_ready(self) -> float:
        assert self.proc is not None, "spawn() first"
        deadline = self.started_at + self.timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as r:
                    if r.status == 200:
                        self.ready_s = time.monotonic() - self.started_at
                        return self.ready_s
            except OSError:
                time.sleep(0.05)
        code = self.proc.poll()
        self.stop()
        raise RuntimeError(
            f"`interview web` did not answer on {self.url} within {self.timeout:.0f} s (exit code {code}):\n"
            + self.output()[-4000:]
        )

    def start(self) -> AppServer:
        self.spawn()
        self.wait_ready()
        return self

    def output(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        self.stop()
        if self._log_path is not None:
            with contextlib.suppress(OSError):
                self._log_path.unlink()

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


# --------------------------------------------------------------------------------------------- client


@dataclass
class Msg:
    """One step/message as the UI would show it (latest state)."""

    id: str
    type: str
    output: str = ""
    name: str = ""
    parent_id: str | None = None
    is_error: bool = False
    deleted: bool = False
    seq: int = 0  # order of first appearance in this client
    first_seen: float = 0.0  # time.monotonic() of the first event about it
    updated_at: float = 0.0
    matched_at: float = 0.0  # set by wait_for when this message satisfied its predicate
    raw: dict[str, Any] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)
    elements: list[dict[str, Any]] = field(default_factory=list)

    def action(self, name: str) -> dict[str, Any] | None:
        return next((a for a in self.actions if a.get("name") == name), None)

    @property
    def action_names(self) -> list[str]:
        return [str(a.get("name")) for a in self.actions]

    def __str__(self) -> str:
        return self.output


def _matcher(predicate: Predicate) -> Callable[[str], bool]:
    if isinstance(predicate, str):
        return lambda text: predicate in text
    if isinstance(predicate, re.Pattern):
        return lambda text: predicate.search(text) is not None
    return predicate


class ChainlitClient:
    """Connects to a running Chainlit app like the web UI does and records everything it receives.

    ``events`` is every ``(event, payload, monotonic time)``; ``messages`` the steps by id (latest
    state, with their ``actions`` and ``elements``); ``errors`` the error messages and
    transport problems seen.
    """

    def __init__(self, url: str, *, session_id: str | None = None, transports: list[str] | None = None) -> None:
        import socketio

        self.url = url.rstrip("/")
        self.session_id = session_id or str(uuid.uuid4())
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any, float]] = []
        self.messages: dict[str, Msg] = {}
        self.pending_actions: dict[str, list[dict[str, Any]]] = {}
        self.pending_elements: dict[str, list[dict[str, Any]]] = {}
        self.errors: list[str] = []
        self.chat_settings: list[dict[str, Any]] | None = None
        self.busy = False
        self.connected_at = 0.0
        self._seq = 0
        self._changed = asyncio.Event()
        self._http: Any = None
        self._cookie = ""  # the sign-in cookie, sent with the socket's handshake
        self.sio.on("*", self._on_any)
        self.sio.on("disconnect", self._on_disconnect)

    # -- lifecycle ------------------------------------------------------------------------------------
    async def connect(self, *, timeout: float = 30.0) -> ChainlitClient:
        await self.sio.connect(
            self.url,
            socketio_path="/ws/socket.io",
            transports=self.transports,
            auth={"clientType": "webapp", "sessionId": self.session_id, "userEnv": "{}"},
            headers={"Cookie": self._cookie} if self._cookie else {},
            wait_timeout=timeout,
        )
        self.connected_at = time.monotonic()
        await self.sio.emit("connection_successful")
        return self

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> ChainlitClient:
        return await self.connect()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def sign_in(self, user: str, password: str) -> ChainlitClient:
        """Password sign-in (``POST /login``, as the login form does); call before :meth:`connect`."""
        r = await self.http("POST", "/login", data={"username": user, "password": password})
        if r.status_code != 200:
            raise AssertionError(f"sign-in as {user!r} failed: HTTP {r.status_code} {r.text[:300]}")
        self._cookie = "; ".join(f"{k}={v}" for k, v in self._http.cookies.items())
        return self

    # -- sending ---------------------------------------------------------------------------------------
    async def send(self, text: str, *, command: str | None = None, files: dict[str, bytes] | None = None) -> str:
        """Send a chat message as the user (Enter in the chat box), with ``files`` attached with
        the paperclip (uploaded first, as the UI does). Returns the message id."""
        payload = user_message(text, command=command)
        for name, content in (files or {}).items():
            r = await self.http(
                "POST", "/project/file", params={"session_id": self.session_id}, files={"file": (name, content)}
            )
            if r.status_code != 200:
                raise AssertionError(f"upload of {name!r}: HTTP {r.status_code} {r.text[:300]}")
            payload["fileReferences"].append({"id": r.json()["id"]})
        await self.sio.emit("client_message", payload)
        return str(payload["message"]["id"])

    async def set_settings(self, values: dict[str, Any]) -> None:
        """Submit the chat settings panel (``chat_settings_change``)."""
        await self.sio.emit("chat_settings_change", values)

    async def http(self, method: str, path: str, **kwargs: Any) -> Any:
        """An HTTP request to the app (``httpx.Response``)."""
        import httpx

        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.url, timeout=120)
        return await self._http.request(method, path, **kwargs)

    async def click(
        self, action_name: str, message: Msg | None = None, *, timeout: float = 60.0, wait: bool = True
    ) -> dict[str, Any]:
        """Click the button ``action_name`` on ``message`` (default: the newest message carrying one).

        Returns the server's JSON answer; raises if no such button is visible or the call fails.
        With ``wait=False`` the request runs in the background (the server only answers once the
        callback has returned) and ``{}`` is returned at once.
        """
        action = self.find_action(action_name, message)
        if action is None:
            shown = {m.output[:60]: m.action_names for m in self.ordered() if m.actions}
            raise AssertionError(f"no visible {action_name!r} button; buttons shown: {shown}")

        async def call() -> dict[str, Any]:
            r = await self.http(
                "POST", "/project/action", json={"sessionId": self.session_id, "action": action}, timeout=timeout
            )
            if r.status_code != 200:
                self.errors.append(f"action {action_name}: HTTP {r.status_code} {r.text[:300]}")
                raise AssertionError(f"POST /project/action {action_name!r}: HTTP {r.status_code} {r.text[:500]}")
            return dict(r.json())

        if not wait:
            asyncio.get_running_loop().create_task(call())
            return {}
        return await call()

    async def starters(self) -> list[dict[str, Any]]:
        """The starters the UI shows (``GET /project/settings``)."""
        r = await self.http("GET", "/project/settings", params={"language": "en-US"})
        r.raise_for_status()
        return list(r.json().get("starters") or [])

    async def fetch_element(self, element: dict[str, Any]) -> bytes:
        """Download an element's content (what the UI's download link fetches)."""
        if element.get("url"):
            r = await self.http("GET", str(element["url"]))
        else:
            r = await self.http(
                "GET", f"/project/file/{element['chainlitKey']}", params={"session_id": self.session_id}
            )
        r.raise_for_status()
        return bytes(r.content)

    # -- reading ---------------------------------------------------------------------------------------
    def ordered(self, *, type: str | None = "assistant_message") -> list[Msg]:
        """Messages in order of appearance (``type=None``: every step, user messages included)."""
        found = [m for m in self.messages.values() if not m.deleted and (type is None or m.type == type)]
        return sorted(found, key=lambda m: m.seq)

    def outputs(self, *, type: str | None = "assistant_message") -> list[str]:
        return [m.output for m in self.ordered(type=type)]

    def mark(self) -> int:
        """A position: ``wait_for(..., after=mark)`` ignores messages that appeared before it."""
        return self._seq

    def find_action(self, name: str, message: Msg | None = None) -> dict[str, Any] | None:
        candidates = [message] if message is not None else list(reversed(self.ordered(type=None)))
        for m in candidates:
            if m is not None and (a := m.action(name)) is not None:
                return a
        return None

    def find(self, predicate: Predicate, *, after: int = 0, type: str | None = "assistant_message") -> Msg | None:
        match = _matcher(predicate)
        for m in self.ordered(type=type):
            if m.seq > after and match(m.output):
                return m
        return None

    async def wait_for(
        self,
        predicate: Predicate,
        timeout: float = 60.0,
        *,
        after: int = 0,
        type: str | None = "assistant_message",
        actions: tuple[str, ...] = (),
        where: Callable[[Msg], bool] | None = None,
    ) -> Msg:
        """The first message (appearing after ``after``) whose output matches ``predicate``.

        ``predicate`` is a substring, a compiled regex or a function of the output text. With
        ``actions``, the message must also carry buttons with all those names (they arrive as
        separate events just after the message); ``where`` is any further test on the :class:`Msg`
        (its ``elements``, say). Sets ``matched_at`` on the message (monotonic).
        """
        match = _matcher(predicate)
        end = time.monotonic() + timeout
        while True:
            for m in self.ordered(type=type):
                if (
                    m.seq > after
                    and match(m.output)
                    and all(m.action(a) for a in actions)
                    and (where is None or where(m))
                ):
                    if not m.matched_at:
                        m.matched_at = time.monotonic()
                    return m
            left = end - time.monotonic()
            if left <= 0:
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=left)
        lines = "\n".join(
            f"  [{m.type}] {m.output[:200]!r} actions={m.action_names}" for m in self.ordered(type=None)[-12:]
        )
        raise AssertionError(
            f"no message matched within {timeout:.0f} s; last messages:\n{lines}\nerrors: {self.errors}"
        )

    async def wait_idle(self, timeout: float = 60.0) -> None:
        """Until the server's current task has ended (``task_end``)."""
        end = time.monotonic() + timeout
        while self.busy and time.monotonic() < end:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.01, end - time.monotonic()))
        if self.busy:
            raise AssertionError("the app is still busy")

    # -- receiving -------------------------------------------------------------------------------------
    def _upsert(self, step: dict[str, Any], now: float) -> Msg | None:
        sid = step.get("id")
        if not sid:
            return None
        msg = self.messages.get(sid)
        if msg is None:
            self._seq += 1
            msg = Msg(id=sid, type=str(step.get("type") or ""), seq=self._seq, first_seen=now)
            self.messages[sid] = msg
            msg.actions.extend(self.pending_actions.pop(sid, []))
            msg.elements.extend(self.pending_elements.pop(sid, []))
        msg.raw = {**msg.raw, **step}
        if step.get("type"):
            msg.type = str(step["type"])
        if "output" in step and step["output"] is not None:
            msg.output = str(step["output"])
        msg.name = str(step.get("name") or msg.name)
        msg.parent_id = step.get("parentId", msg.parent_id)
        if step.get("isError"):
            msg.is_error = True
            self.errors.append(f"error message: {msg.output[:300]}")
        msg.updated_at = now
        return msg

    async def _on_any(self, event: str, data: Any = None) -> None:
        now = time.monotonic()
        self.events.append((event, data, now))
        if event in ("new_message", "update_message", "stream_start") and isinstance(data, dict):
            self._upsert(data, now)
        elif event == "stream_token" and isinstance(data, dict):
            msg = self.messages.get(str(data.get("id")))
            if msg is not None:
                token = str(data.get("token") or "")
                msg.output = token if data.get("isSequence") else msg.output + token
                msg.updated_at = now
        elif event == "delete_message" and isinstance(data, dict):
            msg = self.messages.get(str(data.get("id")))
            if msg is not None:
                msg.deleted = True
        elif event == "action" and isinstance(data, dict):
            owner = self.messages.get(str(data.get("forId")))
            target = owner.actions if owner else self.pending_actions.setdefault(str(data.get("forId")), [])
            target[:] = [a for a in target if a.get("id") != data.get("id")] + [data]
        elif event == "remove_action" and isinstance(data, dict):
            for m in self.messages.values():
                m.actions[:] = [a for a in m.actions if a.get("id") != data.get("id")]
        elif event == "element" and isinstance(data, dict):
            owner = self.messages.get(str(data.get("forId")))
            target = owner.elements if owner else self.pending_elements.setdefault(str(data.get("forId")), [])
            target[:] = [e for e in target if e.get("id") != data.get("id")] + [data]
        elif event == "chat_settings":
            self.chat_settings = data if isinstance(data, list) else None
        elif event == "task_start":
            self.busy = True
        elif event == "task_end":
            self.busy = False
        self._changed.set()

    async def _on_disconnect(self, reason: Any = None) -> None:
        self.events.append(("disconnect", reason, time.monotonic()))
        self._changed.set()

    def dump(self) -> str:
        """Every message received, for a failure message."""
        return json.dumps(
            [
                {"type": m.type, "output": m.output[:300], "actions": m.action_names, "elements": len(m.elements)}
                for m in self.ordered(type=None)
            ],
            ensure_ascii=False,
            indent=1,
        )


def serve_seeded(template: Path, workdir: Path, *, knowledge: Path, env: dict[str, str] | None = None) -> Any:
    """Generator for a module fixture: one offline `interview web` on a private copy of the
    pre-ingested store in ``workdir``; stopped and cleaned up when the generator closes."""
    import shutil

    import pytest

    data, cwd = workdir / "data", workdir / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, data, dirs_exist_ok=True)
    server = AppServer(
        data_dir=data,
        env={"INTERVIEW_KNOWLEDGE_DIR": str(knowledge), "INTERVIEW_GRADER": "offline", **(env or {})},
        cwd=cwd,
    )
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.cleanup()
