"""Cards that come back for review are asked in other words; the original is one click away."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.knowledge.cards import Card, Source
from bot.practice.coach import Coach
from bot.practice.rephrase import FLAG_REPHRASED, LLMRephraser, OfflineRephraser, template_variant
from bot.practice.session import SessionConfig


def card(question: str, cid: str = "c1", answer: str = "Some answer about the thing in the notes.") -> Card:
    return Card(
        id=cid,
        question=question,
        display_question=question,
        answer=answer,
        topic="t",
        source=Source(path="n.md", line_start=1, line_end=2),
    )


def test_template_variants_are_deterministic_and_change_with_each_review() -> None:
    q = "What is teacher forcing?"
    variants = {template_variant(q, "c1", n) for n in range(4)}
    assert len(variants) == 4 and q not in variants
    assert "How would you explain teacher forcing to a colleague?" in variants
    assert template_variant(q, "c1", 2) == template_variant(q, "c1", 2)
    assert template_variant(q, "c1", 1) == template_variant(q, "c1", 5)  # cycles
    assert "Walk me through precision and recall." in {
        template_variant("Explain precision and recall.", "c9", n) for n in range(3)
    }
    assert "How do perplexity and cross-entropy differ?" in {
        template_variant("Compare perplexity and cross-entropy.", "c2", n) for n in range(3)
    }
    assert "In your own words, what are embeddings?" in {
        template_variant("What are embeddings?", "c3", n) for n in range(4)
    }
    assert template_variant("Why does dropout help?", "c1", 0) is None  # asked as written


def test_offline_rephraser_flags_the_card_and_keeps_its_id() -> None:
    (out,) = asyncio.run(OfflineRephraser().rephrase([card("Describe beam search.")], {"c1": 1}))
    assert out.id == "c1" and FLAG_REPHRASED in out.flags and out.display_question != "Describe beam search."
    assert out.question == "Describe beam search."  # the notes' wording is kept
    (same,) = asyncio.run(OfflineRephraser().rephrase([card("Why does dropout help?")], {}))
    assert FLAG_REPHRASED not in same.flags and same.display_question == "Why does dropout help?"


def test_llm_rephraser_is_cached_per_card_version_and_falls_back(function_chat: Any) -> None:
    calls: list[str] = []

    def reply(messages: Any, info: Any) -> str:
        calls.append(str(messages[-1].content))
        return '"How would you describe what teacher forcing does during training?"'

    r = LLMRephraser(function_chat(function=reply))
    c = card("What is teacher forcing?")
    first = asyncio.run(r.rephrase([c], {}))[0]
    assert first.display_question == "How would you describe what teacher forcing does during training?"
    asyncio.run(r.rephrase([c], {"c1": 3}))
    assert len(calls) == 1  # cached per card version
    asyncio.run(r.rephrase([c.model_copy(update={"answer": "A new answer text in the notes."})], {}))
    assert len(calls) == 2  # a new version asks again
    assert "<reference_answer" in calls[0] and "teacher forcing" in calls[0]

    def down(messages: Any, info: Any) -> str:
        raise RuntimeError("model down")

    (fallback,) = asyncio.run(LLMRephraser(function_chat(function=down)).rephrase([c], {"c1": 0}))
    assert fallback.display_question == template_variant("What is teacher forcing?", "c1", 0)

    leaky = card("What is X?", answer="X is the thing that does exactly this very long specific action here.")
    (kept,) = asyncio.run(
        LLMRephraser(function_chat(function=lambda m, i: f"Tell me: {leaky.answer}")).rephrase([leaky], {})
    )
    assert leaky.answer not in kept.display_question  # an answer given away is not used


def test_a_card_back_for_review_is_asked_in_other_words(seeded: Path) -> None:
    from bot.settings import Settings

    coach = Coach.open(Settings())
    t0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    clock = {"now": t0}

    async def scenario() -> tuple[Card, Card, Card, Card]:
        first = await coach.start(
            SessionConfig(n_questions=1), review=True, rng=random.Random(0), clock=lambda: clock["now"]
        )
        [e async for e in first.begin()]
        [e async for e in first.handle("/skip")]
        seen = first.questions[0].card
        clock["now"] = t0 + timedelta(days=1)
        second = await coach.start(
            SessionConfig(n_questions=2), review=True, rng=random.Random(0), clock=lambda: clock["now"]
        )
        [e async for e in second.begin()]
        restored = await coach.resume(clock=lambda: clock["now"])  # a reload mid-session
        assert restored is not None
        return seen, second.questions[0].card, second.questions[1].card, restored[0].questions[0].card

    seen, back, new, resumed = asyncio.run(scenario())
    assert resumed.display_question == back.display_question
    assert back.id == seen.id and FLAG_REPHRASED in back.flags
    assert back.display_question == template_variant(seen.display_question, seen.id, 1)
    assert FLAG_REPHRASED not in new.flags  # a new card is asked as written


@pytest.mark.parametrize("llm", [False, True])
def test_make_rephraser(llm: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.practice.rephrase import make_rephraser
    from bot.settings import Settings

    if llm:
        monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    r = make_rephraser(Settings())
    assert isinstance(r, LLMRephraser if llm else OfflineRephraser)


async def test_the_app_offers_the_original_wording_one_click_away(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from bot.practice.rephrase import rephrased
    from tests.test_chainlit_app import chat, click

    monkeypatch.setattr(importlib.import_module("bot.adapters.chainlit_app"), "_coach", None)
    app = importlib.import_module("bot.adapters.chainlit_app")
    async with chat("o1") as sent:
        coach = await app.get_coach()
        original = coach.cards()[0]
        session = coach.new_session(SessionConfig(n_questions=1), cards=[rephrased(original, "Walk me through it.")])
        await app._render(session, session.begin())
        asked = sent.last("Walk me through it.")
        assert "asked in other words" in asked["output"]
        assert sent.action_names(asked) == ["hint", "skip", "reveal", "end", "original"]
        await click(app, sent, asked, "original")
        assert sent.texts()[-1] == f"Original wording, from your notes:\n\n> {original.display_question}"
