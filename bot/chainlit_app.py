"""Chainlit adapter: wires chat events to the core. No session logic lives here.

Run with ``interview web`` (or ``make run``).
"""

from __future__ import annotations

import asyncio
import random

import chainlit as cl

from bot.cards import Card
from bot.render import question_md, reference_md
from bot.session import DrillSession, SessionConfig
from bot.settings import get_settings
from bot.store import CardStore

_store_lock = asyncio.Lock()
_store: CardStore | None = None


async def _get_store() -> CardStore:
    """Open the store once per process, off the event loop; ingest the notes if it is empty."""
    global _store
    async with _store_lock:
        if _store is None:
            from bot.ingest import ingest
            from bot.providers import open_store

            settings = get_settings()
            store = await asyncio.to_thread(open_store, settings)
            if await asyncio.to_thread(store.count) == 0:
                await asyncio.to_thread(ingest, [settings.knowledge_dir], store, settings.knowledge_dir)
            _store = store
        return _store


async def _ask(session: DrillSession) -> None:
    card = session.current()
    if card is None:
        await cl.Message(content=f"That's all {session.total} questions. Start a new chat to drill again.").send()
        return
    await cl.Message(content=question_md(card, session.index + 1, session.total)).send()


@cl.on_chat_start
async def start() -> None:
    store = await _get_store()
    cards: list[Card] = await asyncio.to_thread(store.all_cards)
    if not cards:
        await cl.Message(content="No questions found in your notes. Add .txt/.md notes to `knowledge/`.").send()
        return
    session = DrillSession.start(cards, SessionConfig(n_questions=5), rng=random.Random())
    cl.user_session.set("session", session)
    await cl.Message(
        content=(
            f"Hi! I'll ask you {session.total} questions from your notes ({len(cards)} cards). "
            "Type your answer as a normal message; after each one I show the reference answer "
            "from your notes."
        )
    ).send()
    await _ask(session)


@cl.on_message
async def on_message(message: cl.Message) -> None:
    session: DrillSession | None = cl.user_session.get("session")
    if session is None or session.finished:
        await cl.Message(content="This session is over. Start a new chat to drill again.").send()
        return
    text = (message.content or "").strip()
    if not text:
        await cl.Message(content="Your answer was empty. Type what you know, even a partial answer.").send()
        return
    turn = session.answer(text)
    await cl.Message(content=reference_md(turn.card)).send()
    await _ask(session)
