"""Chainlit handlers run inside a real ChainlitContext with a mocked session and emitter."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, Mock

import pytest


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, seeded: Path, local_embedder: Any) -> Any:
    import bot.providers

    real_open = bot.providers.open_store
    monkeypatch.setattr(bot.providers, "open_store", lambda s, e=None: real_open(s, local_embedder))
    module = importlib.import_module("bot.chainlit_app")
    monkeypatch.setattr(module, "_resources", None)
    return module


@asynccontextmanager
async def chat(session_id: str = "s1") -> AsyncIterator[list[str]]:
    from chainlit.context import ChainlitContext, context_var
    from chainlit.emitter import BaseChainlitEmitter
    from chainlit.session import WebsocketSession

    session = Mock(spec=WebsocketSession)
    session.id = session_id
    session.thread_id = f"thread-{session_id}"
    session.user_env = {}
    session.chat_settings = {}
    session.user = None
    session.chat_profile = None
    session.http_referer = None
    session.client_type = "webapp"
    session.languages = ["en"]
    session.has_first_interaction = True
    session.emit = AsyncMock()
    emitter = Mock(spec=BaseChainlitEmitter)
    sent: list[str] = []

    async def send_step(step: dict[str, Any]) -> None:
        sent.append(step.get("output", ""))

    emitter.send_step = AsyncMock(side_effect=send_step)
    emitter.update_step = AsyncMock()
    emitter.session = session
    token = context_var.set(ChainlitContext(session, emitter))
    try:
        yield sent
    finally:
        context_var.reset(token)


async def test_minimal_loop_question_reference_next(app: Any) -> None:
    import chainlit as cl

    async with chat() as sent:
        await app.start()
        assert "I'll ask you 5 questions" in sent[0] and "offline grader" in sent[0]
        assert sent[1].startswith("**Question 1 of 5**")
        session = cl.user_session.get("session")
        first = session.current()
        await app.on_message(cl.Message(content="my answer"))
        assert session.turns[0].answer == "my answer"
        reference = next(m for m in sent if "Score:" in m or "Ungraded" in m)
        if first.has_answer:
            assert "From your notes" in reference and first.answer.splitlines()[0][:30] in reference
        else:
            assert "no answer" in reference
        assert sent[-1].startswith("**Question 2 of 5**")
        for _ in range(4):
            await app.on_message(cl.Message(content="x"))
        assert "That's all 5 questions" in sent[-1]
        await app.on_message(cl.Message(content="more?"))
        assert "session is over" in sent[-1]


async def test_empty_answer_is_not_recorded(app: Any) -> None:
    import chainlit as cl

    async with chat("s2") as sent:
        await app.start()
        await app.on_message(cl.Message(content="   "))
        assert "empty" in sent[-1]
        assert cl.user_session.get("session").turns == []


async def test_important_questions_come_first(app: Any) -> None:
    import chainlit as cl

    async with chat("s3"):
        await app.start()
        session = cl.user_session.get("session")
        assert all(c.important for c in session.cards)  # the notes hold 5 important cards
