"""The coach: per-process resources every adapter shares, and how a session is started.

Framework-free. The Chainlit app and the terminal both build one :class:`Coach` (off the event
loop: it opens the store and loads models) and ask it for sessions; neither holds session logic.
"""

from __future__ import annotations

import asyncio
import functools
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from bot.grading.base import Grader
from bot.grading.rubric import Rubric
from bot.grading.rubric_book import RubricBook
from bot.history.users import LOCAL_USER
from bot.knowledge.cards import Card
from bot.knowledge.library import Library
from bot.knowledge.topics import match_topics
from bot.practice.rephrase import Rephraser, make_rephraser
from bot.practice.session import InterviewSession, Mode, SessionConfig, SessionDeps
from bot.retrieval.store import CardStore, Retrieval
from bot.settings import Settings

__all__ = ["Coach", "StartRequest", "names_topic", "parse_start"]

MAX_QUESTIONS = 50
RETRIEVAL_CACHE = 4096  # cards; a retrieval is a few KB


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StartRequest:
    """What a first message asks for: a session (with its config) or the progress view."""

    kind: str  # "session" | "progress" | "resume"
    config: SessionConfig
    review: bool = False
    note: str = ""  # e.g. an unknown topic, shown to the user


_START = re.compile(r"^/(drill|study|interview|review|progress|resume|start|new)\b\s*(.*)$", re.I | re.S)


def names_topic(text: str) -> bool:
    """Whether ``text`` is a start command naming a topic (``/interview rag``): only then does
    :func:`parse_start` read the topics, so an answer in a session never waits for them."""
    m = _START.match(text.strip())
    if not m or m.group(1).lower() in ("progress", "resume"):
        return False
    rest = m.group(2).strip()
    return bool(rest) and not rest.isdigit()


def parse_start(text: str, defaults: SessionConfig, topics: list[str]) -> StartRequest | None:
    """``/drill [N]``, ``/interview [topic]``, ``/review [N]``, ``/progress``, ``/resume``, ``/start``;
    None for anything else."""
    m = _START.match(text.strip())
    if not m:
        return None
    verb, rest = m.group(1).lower(), m.group(2).strip()
    if verb in ("progress", "resume"):
        return StartRequest(kind=verb, config=defaults)
    config, note = defaults, ""
    if rest.isdigit():
        config = replace(config, n_questions=max(1, min(MAX_QUESTIONS, int(rest))))
        rest = ""
    if verb in ("drill", "study"):
        config = replace(config, mode=Mode.STUDY)
    elif verb == "interview":
        config = replace(config, mode=Mode.INTERVIEW)
    if rest:
        match = match_topics(rest, topics)
        if match:
            config = replace(config, topics=(match[0],))
        else:
            note = f"No topic matches “{rest[:60]}”; using all topics. Topics: {', '.join(topics)}."
    return StartRequest(kind="session", config=config, review=verb == "review", note=note)


class Coach:
    """Store, grader, follow-up writer (and history, when configured) for one process."""

    def __init__(
        self, settings: Settings, store: CardStore, grader: Grader, follow_ups: Any, history: Any = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.grader = grader
        self.follow_ups = follow_ups
        self.history = history
        self._cards: dict[frozenset[str] | None, list[Card]] = {}
        self._topics: dict[frozenset[str] | None, list[str]] = {}
        self._retrieved: dict[tuple[str, str, frozenset[str] | None], Retrieval] = {}
        self._library: Library | None = None
        self._rephraser: Rephraser | None = None
        from bot.grading.pipeline.build import make_rubric_book

        self.rubrics: RubricBook = make_rubric_book(settings)  # distilled by the LLM when one is configured
        self._stamp: str | None = None  # the store's stamp when the cards were last read

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        ingest_if_empty: bool = True,
        history: bool = True,
        mode: str = "terminal",
        worker: bool = False,
        wrap: Callable[[Grader], Grader] | None = None,
    ) -> Coach:
        """Blocking: open the store (ingesting the knowledge folder when empty), the grader pipeline
        and the history database. ``mode`` names the adapter in traces; ``worker``: LLM grading in a
        worker process; ``wrap``: the adapter's own layer around the grader (the web app's load control)."""
        from bot.grading.pipeline import build_grader, make_follow_up_writer
        from bot.retrieval.store import open_store

        store = open_store(settings)
        store.backfill_owner()  # a store written before owners existed: its cards are everyone's
        if ingest_if_empty and store.count() == 0:
            from bot.knowledge.ingest import ingest
            from bot.retrieval.lock import data_lock

            with data_lock(settings, wait=settings.lock_wait):  # a write: the folder's owner only
                ingest([settings.knowledge_dir], store, settings.knowledge_dir, max_cards=settings.max_cards_per_file)
        grader = build_grader(settings, store.embedder, mode=mode, worker=worker)
        if wrap is not None:
            grader = wrap(grader)
        db = None
        if history:
            from bot.history.repository import History

            db = History.from_settings(settings)
        return cls(settings, store, grader, make_follow_up_writer(settings), db)

    # -- cards -------------------------------------------------------------------------------

    @property
    def library(self) -> Library:
        """Who sees which notes; each user's uploaded notes files."""
        if self._library is None:
            from bot.knowledge.prose import make_prose_questions

            self._library = Library(self.settings.data_dir, self.store, prose=make_prose_questions(self.settings))
        return self._library

    def owners(self, user: str | None) -> frozenset[str] | None:
        """Whose cards ``user`` sees (None: everyone's, for the terminal and the CLI)."""
        return None if user is None else self.library.owners(user)

    def invalidate(self) -> None:
        """Forget cached cards, topics and retrievals (notes were added or removed)."""
        self._cards.clear()
        self._topics.clear()
        self._retrieved.clear()

    def cards(self, user: str | None = None) -> list[Card]:
        """The cards ``user`` sees (all cards when None), cached until :meth:`invalidate`."""
        owners = self.owners(user)
        if owners not in self._cards:
            if not self._cards:
                self._stamp = self.store.stamp()
            self._cards[owners] = self.store.all_cards(owners)
        return self._cards[owners]

    def refresh(self) -> bool:
        """Forget the cached cards if the store changed since they were read (another process
        ingested); True if so. Cheap: one small read, done at each session start."""
        if not self._cards or self.store.stamp() == self._stamp:
            return False
        self.invalidate()
        return True

    def topics(self, user: str | None = None) -> list[str]:
        """Topics, largest first (computed once: every chat message consults them)."""
        owners = self.owners(user)
        if owners not in self._topics:
            counts: dict[str, int] = {}
            for c in self.cards(user):
                counts[c.topic] = counts.get(c.topic, 0) + 1
            self._topics[owners] = sorted(counts, key=lambda t: (-counts[t], t))
        return self._topics[owners]

    async def retrieve(self, card: Card, *, owners: frozenset[str] | None = None, user: str = LOCAL_USER) -> Retrieval:
        """The card's reference, related passages (from ``owners``' cards; cached per card version for
        this process) and the rubric ``user``'s answers are graded against."""
        key = (card.id, card.content_hash(), owners)
        retrieval = self._retrieved.get(key)
        if retrieval is None:
            retrieval = await asyncio.to_thread(self.store.related, card, self.settings.related_k, owners)
            if len(self._retrieved) >= RETRIEVAL_CACHE:
                self._retrieved.pop(next(iter(self._retrieved)))
            self._retrieved[key] = retrieval
        if not card.has_answer:
            return retrieval
        rubric = await asyncio.to_thread(self.rubrics.for_user, card, user)
        return replace(retrieval, rubric=rubric)

    # -- text --------------------------------------------------------------------------------

    def grader_line(self) -> str:
        name = self.grader.name
        if name == "offline":
            return (
                "Grading: **offline grader** (no model configured). For an LLM grader set `OPENAI_API_KEY`, "
                "or point `OPENAI_BASE_URL` at an OpenAI-compatible server such as Ollama "
                "(`http://localhost:11434/v1`) and set `INTERVIEW_LLM_MODEL`."
            )
        return f"Grading: **{name}** (falls back to the offline grader if the model fails)."

    # -- sessions ----------------------------------------------------------------------------

    async def edit_rubric(self, card: Card, rubric: Rubric, user: str = LOCAL_USER) -> Rubric:
        """Store ``user``'s edit of the card's key points (see :class:`RubricBook`)."""
        return await asyncio.to_thread(self.rubrics.edit, card, user, rubric)

    def _deps(self, recorder: Any, user: str | None = None) -> SessionDeps:
        """What a session of ``user`` (None: the terminal and CLI, all cards) needs from the coach."""
        name = user or LOCAL_USER
        calibration = None
        if recorder is not None and self.history is not None:
            from bot.history.recorder import HistoryCalibration

            # Corrections are kept whatever the grader; only the LLM grader is sent graded examples.
            k = self.settings.calibration_examples if self.settings.use_llm_grader else 0
            calibration = HistoryCalibration(self.history, recorder.user_id, k)
        return SessionDeps(
            grader=self.grader,
            retrieve=functools.partial(self.retrieve, owners=self.owners(user), user=name),
            follow_ups=self.follow_ups,
            recorder=recorder,
            edit_rubric=functools.partial(self.edit_rubric, user=name),
            calibration=calibration,
        )

    def _recorder(self, user_id: int) -> Any:
        from bot.history.recorder import HistoryRecorder

        return HistoryRecorder.from_settings(self.history, user_id, self.settings)

    async def start(
        self,
        config: SessionConfig,
        *,
        user: str = LOCAL_USER,
        review: bool = False,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> InterviewSession:
        """A new session for ``user``, stored in the history (when there is one) before the first
        question. ``review``: due cards first (most overdue first), then new ones, important first."""
        rng = rng or random.Random()
        now = (clock or _now)()
        await asyncio.to_thread(self.refresh)
        if self.history is None:
            return self.new_session(config, rng=rng, clock=clock, user=user)
        uid = await self.history.arun(self.history.ensure_user, user)
        cards = None
        if review:
            from bot.practice.schedule import select_review

            states = await self.history.arun(self.history.card_states, uid)
            pool = [c for c in self.cards(user) if not config.topics or c.topic in config.topics]
            cards = select_review(pool, states, now, config.n_questions, rng)
            cards = await self._reworded(uid, cards, set(states))
        session = self.new_session(config, recorder=self._recorder(uid), rng=rng, clock=clock, cards=cards, user=user)
        session.leeches = await self.leeches(uid)
        await self.history.arun(
            functools.partial(
                self.history.start_session,
                uid,
                mode=config.mode.value,
                config={**config.as_dict(), "review": review},
                card_ids=[q.card.id for q in session.questions],
                now=now,
                session_id=session.id,
            )
        )
        return session

    @property
    def rephraser(self) -> Rephraser:
        if self._rephraser is None:
            self._rephraser = make_rephraser(self.settings)
        return self._rephraser

    async def _reworded(self, user_id: int, cards: list[Card], seen: set[str]) -> list[Card]:
        """Cards coming back for review are asked in other words (new ones as written)."""
        back = [c for c in cards if c.id in seen]
        if not back:
            return cards
        reviews = await self.history.arun(self.history.reviews, user_id)
        counts = Counter(r.card_id for r in reviews)
        new_words = {c.id: c for c in await self.rephraser.rephrase(back, dict(counts))}
        return [new_words.get(c.id, c) for c in cards]

    async def leeches(self, user_id: int) -> dict[str, str]:
        """Cards this user failed at least ``INTERVIEW_LEECH_THRESHOLD`` times, with a suggestion."""
        from bot.practice.schedule import find_leeches

        counts = await self.history.arun(self.history.again_counts, user_id)
        by_id = {c.id: c for c in self.cards()}
        found = find_leeches(counts, self.settings.leech_threshold, by_id)
        return {leech.card_id: leech.suggestion for leech in found}

    async def resumable(self, user: str = LOCAL_USER) -> Any:
        """The user's latest unfinished session with questions left (``SessionInfo``), or None."""
        if self.history is None:
            return None
        uid = await self.history.arun(self.history.user_id, user)
        if uid is None:
            return None
        info = await self.history.arun(self.history.unfinished_session, uid)
        if info is None or not info.remaining_card_ids:
            return None
        known = {c.id for c in self.cards(user)}
        return info if any(cid in known for cid in info.remaining_card_ids) else None

    async def resume(
        self, user: str = LOCAL_USER, *, clock: Callable[[], datetime] | None = None
    ) -> tuple[InterviewSession, int] | None:
        """Rebuild the user's unfinished session at its next question (browser reload, new process)."""
        await asyncio.to_thread(self.refresh)
        info = await self.resumable(user)
        if info is None:
            return None
        by_id = {c.id: c for c in self.cards(user)}
        cards = [by_id[cid] for cid in info.card_ids if cid in by_id]
        if info.config.get("review"):  # asked in the same other words as before the reload
            states = await self.history.arun(self.history.card_states, info.user_id)
            cards = await self._reworded(info.user_id, cards, set(states))
        deps = self._deps(self._recorder(info.user_id), user)
        attempts = [a.as_attempt() for a in info.attempts]
        session, resume_at = InterviewSession.restore(
            cards,
            SessionConfig.from_dict(info.config),
            deps,
            session_id=info.id,
            attempts=attempts,
            finished_card_ids=info.finished_card_ids,
            started_at=info.started_at,
            clock=clock,
        )
        session.leeches = await self.leeches(info.user_id)
        return session, resume_at

    def new_session(
        self,
        config: SessionConfig,
        *,
        recorder: Any = None,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] | None = None,
        cards: list[Card] | None = None,
        user: str | None = None,
    ) -> InterviewSession:
        """A session over ``cards`` (already ordered, e.g. by the review scheduler) or chosen from all."""
        deps = self._deps(recorder, user)
        if cards is not None:
            return InterviewSession(cards[: config.n_questions], config, deps, clock=clock)
        return InterviewSession.start(self.cards(user), config, deps, rng=rng, clock=clock)
