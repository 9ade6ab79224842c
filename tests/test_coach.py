"""Starting sessions: the start commands and the coach's shared resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.practice.coach import Coach, names_topic, parse_start
from bot.practice.session import Mode, SessionConfig
from bot.settings import Settings

TOPICS = ["GenAI & LLMs", "NLP & embeddings", "Transformers & attention"]


@pytest.mark.parametrize(
    ("text", "kind", "mode", "n", "topics", "review"),
    [
        ("/drill", "session", Mode.STUDY, 5, (), False),
        ("/drill 12", "session", Mode.STUDY, 12, (), False),
        ("/drill 500", "session", Mode.STUDY, 50, (), False),
        ("/interview", "session", Mode.INTERVIEW, 5, (), False),
        ("/interview transformers", "session", Mode.INTERVIEW, 5, ("Transformers & attention",), False),
        ("/INTERVIEW nlp & embeddings", "session", Mode.INTERVIEW, 5, ("NLP & embeddings",), False),
        ("/review 8", "session", Mode.STUDY, 8, (), True),
        ("/progress", "progress", Mode.STUDY, 5, (), False),
    ],
)
def test_parse_start(text: str, kind: str, mode: Mode, n: int, topics: tuple[str, ...], review: bool) -> None:
    req = parse_start(text, SessionConfig(), TOPICS)
    assert req is not None
    assert (req.kind, req.config.mode, req.config.n_questions, req.config.topics, req.review) == (
        kind,
        mode,
        n,
        topics,
        review,
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("/interview rag", True),
        ("  /drill  deep learning ", True),
        ("/interview", False),
        ("/drill 5", False),
        ("/progress everything", False),
        ("/resume", False),
        ("dropout prevents overfitting", False),
        ("/hint", False),
    ],
)
def test_only_a_start_naming_a_topic_needs_the_topics(text: str, named: bool) -> None:
    assert names_topic(text) is named
    if not named:  # what it parses to does not depend on the topics
        assert parse_start(text, SessionConfig(), []) == parse_start(text, SessionConfig(), TOPICS)


def test_parse_start_unknown_topic_and_non_commands() -> None:
    req = parse_start("/interview quantum", SessionConfig(), TOPICS)
    assert req is not None and req.config.topics == () and "No topic matches" in req.note
    assert parse_start("dropout prevents overfitting", SessionConfig(), TOPICS) is None
    assert parse_start("/hint", SessionConfig(), TOPICS) is None


def test_match_topics_exact_name_before_parts() -> None:
    from bot.knowledge.topics import match_topics

    topics = ["NLP", "NLP & embeddings", "Transformers & attention"]
    assert match_topics(" nlp ", topics) == ["NLP"]
    assert match_topics("EMBED", topics) == ["NLP & embeddings"]
    assert match_topics("&", topics) == ["NLP & embeddings", "Transformers & attention"]
    assert match_topics("quantum", topics) == []


def test_session_config_from_stored_dict_and_settings_panel() -> None:
    config = SessionConfig(mode=Mode.INTERVIEW, n_questions=7, topics=("NLP",), follow_ups=False, max_follow_ups=1)
    assert SessionConfig.from_dict(config.as_dict()) == config
    assert SessionConfig.from_dict(None) == SessionConfig()
    panel = {"mode": None, "n_questions": None, "topics": None, "important_first": False}  # unset widgets
    assert SessionConfig.from_dict(panel) == SessionConfig(important_first=False)


def test_coach_opens_and_builds_sessions(seeded: Path) -> None:
    from bot.settings import Settings

    coach = Coach.open(Settings())
    assert len(coach.cards()) == 95 and coach.topics()[0] == "GenAI & LLMs"
    assert "offline grader" in coach.grader_line()
    session = coach.new_session(SessionConfig(n_questions=4, topics=("RNN & LSTM",)))
    assert session.total == 4 and {q.card.topic for q in session.questions} == {"RNN & LSTM"}
    given = coach.cards()[:3]
    assert [q.card for q in coach.new_session(SessionConfig(n_questions=2), cards=given).questions] == given[:2]


def test_follow_up_writer_follows_the_grader_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.grading.followups import LLMFollowUps, OfflineFollowUps
    from bot.grading.pipeline import make_follow_up_writer
    from bot.settings import Settings

    assert isinstance(make_follow_up_writer(Settings()), OfflineFollowUps)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    writer: Any = make_follow_up_writer(Settings())
    assert isinstance(writer, LLMFollowUps)


def test_review_sessions_ask_due_cards_first_then_new_important_ones(seeded: Path) -> None:
    import asyncio
    import random
    from datetime import UTC, datetime, timedelta

    from bot.settings import Settings

    coach = Coach.open(Settings())
    t0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    clock = {"now": t0}

    def now() -> datetime:
        return clock["now"]

    async def scenario() -> tuple[list[str], list[str]]:
        first = await coach.start(SessionConfig(n_questions=2), review=True, rng=random.Random(0), clock=now)
        [e async for e in first.begin()]
        [e async for e in first.handle("/skip")]  # Again: due again in minutes
        [e async for e in first.handle("/end")]
        skipped = first.questions[0].card.id
        clock["now"] = t0 + timedelta(days=1)
        second = await coach.start(SessionConfig(n_questions=3), review=True, rng=random.Random(0), clock=now)
        return [skipped], [q.card.id for q in second.questions]

    (skipped,), order = asyncio.run(scenario())
    assert order[0] == skipped  # the failed card is due: it comes first
    by_id = {c.id: c for c in coach.cards()}
    assert all(by_id[cid].important for cid in order[1:])  # then new cards, important first


def test_a_card_failed_again_and_again_is_flagged_as_a_leech(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import random
    from datetime import UTC, datetime, timedelta

    from bot.adapters.views import question_md
    from bot.practice.events import Asked
    from bot.settings import Settings

    monkeypatch.setenv("INTERVIEW_LEECH_THRESHOLD", "2")
    coach = Coach.open(Settings())
    clock = {"now": datetime(2026, 11, 24, 9, 0, tzinfo=UTC)}

    async def one_review() -> Asked:
        clock["now"] += timedelta(days=1)
        s = await coach.start(
            SessionConfig(n_questions=1), review=True, rng=random.Random(0), clock=lambda: clock["now"]
        )
        (asked,) = [e async for e in s.begin()]
        [e async for e in s.handle("/skip")]
        assert isinstance(asked, Asked)
        return asked

    async def scenario() -> list[Asked]:
        return [await one_review() for _ in range(3)]

    first, second, third = asyncio.run(scenario())
    assert first.card.id == second.card.id == third.card.id
    assert first.leech == second.leech == ""
    assert "Failed 2 times: rewrite the note" in third.leech
    assert "⚠️ _Leech: Failed 2 times" in question_md(third.card, 1, 1, leech=third.leech)


async def test_a_session_grades_against_its_users_rubric(seeded: Path) -> None:
    """Each user's answers are graded against their own edit of a card's rubric, else the compiled one."""
    from bot.grading.rubric import KeyPoint
    from bot.settings import Settings

    coach = Coach.open(Settings(), history=False)
    card = next(c for c in coach.cards() if c.display_question == "Why we use drop out?")
    compiled = coach.rubrics.compiled(card)
    mine = compiled.model_copy(
        update={"points": [KeyPoint(text="Dropout switches off random neurons while training.", label="dropout")]}
    )
    coach.rubrics.edit(card, "ann", mine)
    request = (await coach.retrieve(card, user="ann")).request("answer")
    assert request.rubric is not None and request.rubric.texts == [
        "Dropout switches off random neurons while training."
    ]
    other = (await coach.retrieve(card, user="bob")).request("answer")
    assert other.rubric == compiled
    session = coach.new_session(SessionConfig(n_questions=1), cards=[card], user="ann")
    retrieval = await session.deps.retrieve(card)
    assert retrieval.rubric is not None and retrieval.rubric.compiled_by == "user"


async def test_cards_another_process_ingests_are_asked_from_the_next_session(
    seeded: Path, tmp_path: Path, local_embedder: Any
) -> None:
    """Issue 14 (1): a running app never saw cards another process ingested."""
    from bot.knowledge.ingest import ingest
    from bot.retrieval.store import CardStore, make_chroma_client

    settings = Settings()
    coach = Coach.open(settings, history=False)
    before = {c.id for c in coach.cards()}
    assert not coach.refresh()  # nothing changed: the cache stays
    notes = tmp_path / "new.md"
    notes.write_text("What is a brand-new concept?\nOne added while the app runs.\n", encoding="utf-8")
    other = CardStore(make_chroma_client(settings), local_embedder, prefix=settings.collection)  # "another process"
    ingest([notes], other, tmp_path)
    session = await coach.start(SessionConfig(n_questions=len(before) + 1))
    assert {q.card.id for q in session.questions} - before  # the new card is in this session
    assert len(coach.cards()) == len(before) + 1
