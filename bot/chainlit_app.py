"""Chainlit adapter: wires chat events to the core. No session logic lives here.

Run with ``interview web`` (or ``make run``).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import chainlit as cl

from bot.cards import Card
from bot.grading import Grade
from bot.render import grade_md, question_md, reference_md
from bot.session import DrillSession, SessionConfig
from bot.settings import get_settings
from bot.store import CardStore


class _Resources:
    """Per-process store and grader. (Chainlit runs this file outside sys.modules: no dataclasses here.)"""

    def __init__(self, store: CardStore, grader: Any) -> None:
        self.store = store
        self.grader = grader


_lock = asyncio.Lock()
_resources: _Resources | None = None


async def _get_resources() -> _Resources:
    """Open the store and grader once per process, off the event loop; ingest if the store is empty."""
    global _resources
    async with _lock:
        if _resources is None:
            from bot.ingest import ingest
            from bot.providers import make_grader, open_store

            settings = get_settings()
            store = await asyncio.to_thread(open_store, settings)
            if await asyncio.to_thread(store.count) == 0:
                await asyncio.to_thread(ingest, [settings.knowledge_dir], store, settings.knowledge_dir)
            grader = await asyncio.to_thread(lambda: make_grader(settings, store.embedder, mode="study"))
            _resources = _Resources(store=store, grader=grader)
        return _resources


def _grader_line(grader: Any) -> str:
    if grader.name == "offline":
        return (
            "Grading: **offline grader** (no model configured). For an LLM grader set `OPENAI_API_KEY`, "
            "or point `OPENAI_BASE_URL` at an OpenAI-compatible server such as Ollama "
            "(`http://localhost:11434/v1`) and set `INTERVIEW_LLM_MODEL`."
        )
    return f"Grading: **{grader.name}** (falls back to the offline grader if the model fails)."


async def _ask(session: DrillSession) -> None:
    card = session.current()
    if card is None:
        await cl.Message(content=f"That's all {session.total} questions. Start a new chat to drill again.").send()
        return
    await cl.Message(content=question_md(card, session.index + 1, session.total)).send()


@cl.on_chat_start
async def start() -> None:
    res = await _get_resources()
    cards: list[Card] = await asyncio.to_thread(res.store.all_cards)
    if not cards:
        await cl.Message(content="No questions found in your notes. Add .txt/.md notes to `knowledge/`.").send()
        return
    session = DrillSession.start(cards, SessionConfig(n_questions=5), rng=random.Random())
    cl.user_session.set("session", session)
    await cl.Message(
        content=(
            f"Hi! I'll ask you {session.total} questions from your notes ({len(cards)} cards). "
            "Type your answer as a normal message; I grade it and show the reference answer "
            f"from your notes.\n\n{_grader_line(res.grader)}"
        )
    ).send()
    await _ask(session)


async def _grade(res: _Resources, card: Card, answer: str) -> Grade:
    settings = get_settings()
    async with cl.Step(name="Retrieve reference", type="retrieval") as step:
        retrieval = await asyncio.to_thread(res.store.related, card, settings.related_k)
        step.output = "\n".join(f"- {h.score:.2f} {h.card.display_question}" for h in retrieval.passages)
    request = retrieval.request(answer)
    async with cl.Step(name="Grade", type="llm") as step:
        grade: Grade = await res.grader.agrade(request)
        step.output = f"{grade.grader}: {grade.score if grade.graded else 'ungraded'}"
    return grade


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
    res = await _get_resources()
    card = session.current()
    assert card is not None
    grade = await _grade(res, card, text)
    session.answer(text)
    await cl.Message(content=grade_md(grade) + "\n\n" + reference_md(card)).send()
    await _ask(session)
