"""The coach: per-process resources every adapter shares, and how a session is started.

Framework-free. The Chainlit app and the terminal both build one :class:`Coach` (off the event
loop: it opens the store and loads models) and ask it for sessions; neither holds session logic.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.cards import Card
from bot.session import InterviewSession, Mode, SessionConfig, SessionDeps
from bot.settings import Settings
from bot.store import CardStore, Retrieval

__all__ = ["Coach", "StartRequest", "parse_start"]

MAX_QUESTIONS = 50


@dataclass(frozen=True)
class StartRequest:
    """What a first message asks for: a session (with its config) or the progress view."""

    kind: str  # "session" | "progress"
    config: SessionConfig
    review: bool = False
    note: str = ""  # e.g. an unknown topic, shown to the user


_START = re.compile(r"^/(drill|study|interview|review|progress|start|new)\b\s*(.*)$", re.I | re.S)


def parse_start(text: str, defaults: SessionConfig, topics: list[str]) -> StartRequest | None:
    """``/drill [N]``, ``/interview [topic]``, ``/review [N]``, ``/progress``, ``/start``; None otherwise."""
    m = _START.match(text.strip())
    if not m:
        return None
    verb, rest = m.group(1).lower(), m.group(2).strip()
    if verb == "progress":
        return StartRequest(kind="progress", config=defaults)
    config, note = defaults, ""
    if rest.isdigit():
        config = replace(config, n_questions=max(1, min(MAX_QUESTIONS, int(rest))))
        rest = ""
    if verb in ("drill", "study"):
        config = replace(config, mode=Mode.STUDY)
    elif verb == "interview":
        config = replace(config, mode=Mode.INTERVIEW)
    if rest:
        wanted = rest.lower()
        match = [t for t in topics if t.lower() == wanted] or [t for t in topics if wanted in t.lower()]
        if match:
            config = replace(config, topics=(match[0],))
        else:
            note = f"No topic matches “{rest[:60]}”; using all topics. Topics: {', '.join(topics)}."
    return StartRequest(kind="session", config=config, review=verb == "review", note=note)


class Coach:
    """Store, grader, follow-up writer (and history, when configured) for one process."""

    def __init__(self, settings: Settings, store: CardStore, grader: Any, follow_ups: Any, history: Any = None):
        self.settings = settings
        self.store = store
        self.grader = grader
        self.follow_ups = follow_ups
        self.history = history
        self._cards: list[Card] | None = None

    @classmethod
    def open(cls, settings: Settings, *, ingest_if_empty: bool = True) -> Coach:
        """Blocking: open the store (ingesting the knowledge folder when empty) and the graders."""
        from bot.providers import make_follow_up_writer, make_grader, open_store

        store = open_store(settings)
        if ingest_if_empty and store.count() == 0:
            from bot.ingest import ingest

            ingest([settings.knowledge_dir], store, settings.knowledge_dir)
        grader = make_grader(settings, store.embedder, mode="app")
        return cls(settings, store, grader, make_follow_up_writer(settings))

    # -- cards -------------------------------------------------------------------------------

    def cards(self) -> list[Card]:
        if self._cards is None:
            self._cards = self.store.all_cards()
        return self._cards

    def topics(self) -> list[str]:
        counts: dict[str, int] = {}
        for c in self.cards():
            counts[c.topic] = counts.get(c.topic, 0) + 1
        return sorted(counts, key=lambda t: (-counts[t], t))

    async def retrieve(self, card: Card) -> Retrieval:
        return await asyncio.to_thread(self.store.related, card, self.settings.related_k)

    # -- text --------------------------------------------------------------------------------

    def grader_line(self) -> str:
        name = str(self.grader.name)
        if name == "offline":
            return (
                "Grading: **offline grader** (no model configured). For an LLM grader set `OPENAI_API_KEY`, "
                "or point `OPENAI_BASE_URL` at an OpenAI-compatible server such as Ollama "
                "(`http://localhost:11434/v1`) and set `INTERVIEW_LLM_MODEL`."
            )
        return f"Grading: **{name}** (falls back to the offline grader if the model fails)."

    # -- sessions ----------------------------------------------------------------------------

    def new_session(
        self,
        config: SessionConfig,
        *,
        recorder: Any = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
        cards: list[Card] | None = None,
    ) -> InterviewSession:
        """A session over ``cards`` (already ordered, e.g. by the review scheduler) or chosen from all."""
        deps = SessionDeps(grader=self.grader, retrieve=self.retrieve, follow_ups=self.follow_ups, recorder=recorder)
        if cards is not None:
            return InterviewSession(cards[: config.n_questions], config, deps, clock=clock)
        return InterviewSession.start(self.cards(), config, deps, rng=rng, clock=clock)
