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
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["serve", "unblock_chainlit_constructors"]


class _TimeWithoutSleep:
    """The ``time`` module, except that ``sleep`` returns at once."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        return None


def unblock_chainlit_constructors() -> None:
    """Drop the 1 ms blocking sleep from ``chainlit.Message`` and ``chainlit.Step`` construction."""
    import importlib

    # by module path: ``chainlit.step`` the attribute is the @step decorator, not the module
    for name in ("chainlit.message", "chainlit.step"):
        module = importlib.import_module(name)
        if getattr(module, "time", None) is time:
            module.time = _TimeWithoutSleep()  # type: ignore[attr-defined]


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
    target = app_path or Path(__file__).with_name("chainlit_app.py")
    config.run.host = host
    config.run.port = port
    config.run.headless = True
    config.run.module_name = str(target)
    load_module(config.run.module_name)
    if not (config.code.on_message and config.code.on_chat_start):
        raise RuntimeError(f"{target} defines no Chainlit handlers")
    ensure_jwt_secret()  # type: ignore[no-untyped-call]
    init_markdown(config.root)
    uvicorn.run(app, host=host, port=port, log_level="error", ws_per_message_deflate=False, loop="auto")
