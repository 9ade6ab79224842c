"""Serve the Chainlit app: the server ``chainlit run`` starts, tuned for many concurrent users.

``chainlit run`` applies nest_asyncio at import (every task and future becomes pure Python, on
the one event loop all users share), pins the stock asyncio loop, compresses every websocket
message, and reads a bare ``CI`` environment variable as "fake an OpenAI key". This starts the
same ASGI app with uvicorn directly: uvloop when installed, no per-message deflate (the browser
is usually on the same machine or LAN), nothing re-entrant. The app never runs sync code that
needs a re-entrant loop.

Chainlit's ``Message`` and ``Step`` constructors also call ``time.sleep(0.001)`` (to space out
their timestamps), which blocks the shared event loop for every user, six or seven times per
answer. Timestamps have microsecond resolution, so the sleep is dropped here (measured with
``bench/bench_app.py``: 50 concurrent answers wait ~0.4 s less).

Chainlit keeps each session's files (the report download, the task list) under one
``<app root>/.files`` and deletes that whole folder when a server stops, so stopping one app broke
every other app started from the same folder. Each server gets a private files folder instead
(:func:`use_private_files_directory`), which Chainlit still removes when that server stops.

Chainlit also reads ``DATABASE_URL`` as "store threads in this database with my own data layer"
(asyncpg, its own tables). Here ``DATABASE_URL`` is the practice history's: Chainlit is given
no data layer, so pointing the history at PostgreSQL does not break the app.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
import types
from pathlib import Path
from typing import Any

__all__ = [
    "guard",
    "limit_message_size",
    "serve",
    "unblock_chainlit_constructors",
    "use_private_files_directory",
    "watch_sockets",
]


def _no_sleep(seconds: float) -> None:
    """Return at once."""


def _time_without_sleep() -> types.ModuleType:
    """A copy of the ``time`` module whose ``sleep`` returns at once."""
    clone = types.ModuleType(time.__name__, time.__doc__)
    clone.__dict__.update({k: v for k, v in vars(time).items() if not k.startswith("__")} | {"sleep": _no_sleep})
    return clone


def unblock_chainlit_constructors() -> None:
    """Drop the 1 ms blocking sleep from ``chainlit.Message`` and ``chainlit.Step`` construction.

    Both modules call ``time.sleep`` through their module global ``time``, which is swapped for a
    copy without the sleep. ``tests/test_chainlit_app.py`` checks against the pinned Chainlit that
    the constructors still sleep without this and no longer do with it.
    """
    import importlib

    # by module path: ``chainlit.step`` the attribute is the @step decorator, not the module
    for name in ("chainlit.message", "chainlit.step"):
        module = importlib.import_module(name)
        if getattr(module, "time", None) is time:
            module.time = _time_without_sleep()  # type: ignore[attr-defined]


def use_private_files_directory() -> Path:
    """Point Chainlit at a new folder of this process's own for session files; returns it.

    ``chainlit.config.FILES_DIRECTORY`` is read by sessions at use, and ``chainlit.server`` copied
    it at import (its shutdown removes that copy): both are replaced.
    """
    import chainlit.config
    import chainlit.server

    folder = Path(tempfile.mkdtemp(prefix="interview-files-"))
    chainlit.config.FILES_DIRECTORY = folder
    chainlit.server.FILES_DIRECTORY = folder  # type: ignore[attr-defined]
    return folder


def _no_data_layer() -> None:
    """Chainlit's data layer: none (the history is the app's own, see the module docstring)."""
    return None


def serve(host: str, port: int, *, app_path: Path | None = None) -> None:
    """Blocking: load ``bot/adapters/chainlit_app.py`` into Chainlit and serve it until interrupted."""
    os.environ["CHAINLIT_HOST"] = host
    os.environ["CHAINLIT_PORT"] = str(port)
    import uvicorn
    from chainlit.auth import ensure_jwt_secret
    from chainlit.config import config, load_module
    from chainlit.markdown import init_markdown
    from chainlit.server import app

    unblock_chainlit_constructors()
    use_private_files_directory()
    target = app_path or Path(__file__).with_name("chainlit_app.py")
    config.run.host = host
    config.run.port = port
    config.run.headless = True
    config.run.module_name = str(target)
    load_module(config.run.module_name)
    if not (config.code.on_message and config.code.on_chat_start):
        raise RuntimeError(f"{target} defines no Chainlit handlers")
    if config.code.data_layer is None:
        config.code.data_layer = _no_data_layer  # not Chainlit's own from DATABASE_URL
    ensure_jwt_secret()  # type: ignore[no-untyped-call]
    init_markdown(config.root)
    guarded = guard(app)
    uvicorn.run(guarded, host=host, port=port, log_level="error", ws_per_message_deflate=False, loop="auto")


def guard(app: Any) -> Any:
    """Chainlit's app behind :class:`~bot.adapters.security.SecurityMiddleware`, with the sign-in
    rules of ``bot.adapters.auth`` and the message size limit applied."""
    from chainlit.server import get_html_template, sio
    from chainlit.session import WebsocketSession

    from bot.adapters import auth
    from bot.adapters.security import SecurityMiddleware, content_security_policy, inline_script_hashes
    from bot.history.users import auth_enabled
    from bot.settings import get_settings

    settings = get_settings()
    limit_message_size(sio, int(settings.max_message_mb * 1_000_000))
    policy = content_security_policy(inline_script_hashes(get_html_template("")))  # type: ignore[no-untyped-call]

    def session_exists(session_id: str) -> bool:
        return WebsocketSession.get_by_id(session_id) is not None

    if not auth_enabled(settings):
        return SecurityMiddleware(app, policy=policy, session_exists=session_exists)
    from bot.history.signouts import SignOuts

    sign_outs = SignOuts(settings.history_url)
    check = auth.install(settings, sign_outs)
    assert check.decode is not None
    sockets = auth.OpenSockets(check.decode, sio.disconnect)
    watch_sockets(sockets)

    async def sign_out(token: str) -> None:
        name = auth.token_user(token)
        if name is not None:
            await asyncio.to_thread(sign_outs.sign_out, name)
            logging.getLogger("interview.auth").info("%r signed out: their tokens are revoked", name)
            await sockets.close_user(name)

    from bot.history.signins import FailedSignIns

    # counted in the history database: every process on it counts together, a restart resets nothing
    throttle = auth.LoginThrottle(
        settings.login_attempts, settings.login_window_s, store=FailedSignIns(settings.history_url)
    )
    return SecurityMiddleware(app, policy=policy, throttle=throttle, sign_out=sign_out, session_exists=session_exists)


def watch_sockets(sockets: Any) -> None:
    """Run ``sockets.watch()`` while the app runs (started with Chainlit's app startup, after any
    startup hook of the app's own)."""
    from chainlit.config import config

    previous = config.code.on_app_startup
    tasks: set[asyncio.Task[None]] = set()

    async def startup() -> None:
        if previous is not None:
            await previous()
        task = asyncio.get_running_loop().create_task(sockets.watch())
        tasks.add(task)  # held: a task nobody references may be collected

    config.code.on_app_startup = startup


def limit_message_size(sio: Any, limit: int) -> None:
    """Accept socket messages up to ``limit`` bytes and answer a larger chat message with a clear
    message instead of dropping it: Engine.IO takes up to twice the limit (beyond that it still
    closes the connection), and a chat message over the limit is refused in the chat."""
    sio.eio.max_http_buffer_size = 2 * limit
    handlers = sio.handlers["/"]
    accept = handlers["client_message"]

    async def client_message(sid: str, payload: Any) -> Any:
        text = str(((payload or {}).get("message") or {}).get("output") or "")
        size = len(text.encode("utf-8"))
        if size <= limit:
            return await accept(sid, payload)
        await sio.emit("new_message", too_large_step(size, limit), to=sid)
        return None

    handlers["client_message"] = client_message


def too_large_step(size: int, limit: int) -> dict[str, Any]:
    """The assistant message that refuses a chat message of ``size`` bytes."""
    import uuid
    from datetime import UTC, datetime

    return {
        "id": str(uuid.uuid4()),
        "threadId": "",
        "parentId": None,
        "name": "Assistant",
        "type": "assistant_message",
        "isError": True,
        "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "output": f"That message is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB "
        "(INTERVIEW_MAX_MESSAGE_MB), so it was not sent to the grader. Your text is still above: "
        "shorten it and send it again.",
    }
