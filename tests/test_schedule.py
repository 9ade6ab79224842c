"""Grade → rating mapping, exact FSRS schedules, the review queue and leeches (bot/practice/schedule.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fsrs import Rating, State

from bot.grading.base import Claim, ClaimStatus, Grade
from bot.knowledge.cards import FLAG_IMPORTANT, Card, Source
from bot.practice.schedule import (
    CardScheduler,
    RatingThresholds,
    coverage,
    find_leeches,
    fsrs_card_id,
    rating_for,
    select_review,
)
from tests.db_fixtures import make_grade, make_outcome

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
DEFAULT = RatingThresholds()


def outcome(**kwargs: Any) -> Any:
    return make_outcome("s", "c", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"score": 0.0}, Rating.Again),
        ({"score": 3.9}, Rating.Again),
        ({"score": 4.0}, Rating.Hard),
        ({"score": 6.4}, Rating.Hard),
        ({"score": 6.5}, Rating.Good),
        ({"score": 8.4}, Rating.Good),
        ({"score": 8.5}, Rating.Easy),
        ({"score": 10.0}, Rating.Easy),
        ({"score": 10.0, "hints": 1}, Rating.Good),
        ({"score": 10.0, "hints": 2}, Rating.Hard),
        ({"score": 10.0, "hints": 3}, Rating.Again),
        ({"score": 7.0, "hints": 9}, Rating.Again),  # floor
        ({"score": 10.0, "skipped": True}, Rating.Again),
        ({"score": 10.0, "revealed": True}, Rating.Again),
        ({"final": None}, Rating.Again),  # never graded (e.g. the user moved on)
        ({"score": None}, None),  # ungraded: the grader failed, no review at all
        ({"score": None, "revealed": True}, Rating.Again),  # peeking is on the user
    ],
)
def test_rating_for(kwargs: dict[str, Any], expected: Rating | None) -> None:
    assert rating_for(outcome(**kwargs), DEFAULT) == expected


def test_contradictions_and_low_coverage_fail_whatever_the_score() -> None:
    contradicted = make_grade(9.0, hits=5, missed=0, contradicted=1)
    assert rating_for(outcome(final=contradicted)) is Rating.Again
    low = make_grade(9.0, hits=1, missed=4)  # 20 % of the key points
    assert coverage(low) == pytest.approx(0.2)
    assert rating_for(outcome(final=low)) is Rating.Again
    assert rating_for(outcome(final=low), RatingThresholds(min_coverage=0.2)) is Rating.Easy
    no_checklist = Grade(score=9.0, grader="llm:test")  # nothing to measure coverage on
    assert coverage(no_checklist) is None and rating_for(outcome(final=no_checklist)) is Rating.Easy
    graded_claims = [Claim(point="p", status=ClaimStatus.HIT)]
    assert coverage(Grade(score=9.0, claims=graded_claims, grader="x")) == 1.0


def test_thresholds_are_configurable_and_validated() -> None:
    strict = RatingThresholds(again_below=6.0, hard_below=8.0, easy_from=9.5)
    assert rating_for(outcome(score=5.0), strict) is Rating.Again
    assert rating_for(outcome(score=9.0), strict) is Rating.Good
    assert rating_for(outcome(score=9.0), DEFAULT) is Rating.Easy
    with pytest.raises(ValueError, match="again_below"):
        RatingThresholds(again_below=7.0, hard_below=6.0)
    with pytest.raises(ValueError, match="min_coverage"):
        RatingThresholds(min_coverage=1.5)


def test_thresholds_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings

    monkeypatch.setenv("INTERVIEW_AGAIN_BELOW", "5")
    monkeypatch.setenv("INTERVIEW_MIN_COVERAGE", "0.5")
    monkeypatch.setenv("INTERVIEW_DESIRED_RETENTION", "0.8")
    settings = Settings()
    assert RatingThresholds.from_settings(settings) == RatingThresholds(again_below=5.0, min_coverage=0.5)
    assert CardScheduler.from_settings(settings).fsrs.desired_retention == 0.8
    monkeypatch.setenv("INTERVIEW_HARD_BELOW", "4")
    with pytest.raises(ValueError, match="INTERVIEW_AGAIN_BELOW"):
        Settings()


def test_exact_schedule_for_a_fixed_sequence() -> None:
    """Each review happens when the card comes due; figures are py-fsrs 6.3.2's, fuzzing off."""
    scheduler = CardScheduler()
    expected = [
        (Rating.Easy, datetime(2026, 1, 13, 8, 0), 8.2956, 1.0, State.Review),
        (Rating.Good, datetime(2026, 2, 21, 8, 0), 38.90514998232684, 1.0, State.Review),
        (Rating.Good, datetime(2026, 7, 24, 8, 0), 153.00006571733257, 1.0, State.Review),
        (Rating.Hard, datetime(2027, 7, 26, 8, 0), 367.42932830375526, 4.010608969296839, State.Review),
        (Rating.Again, datetime(2027, 7, 26, 8, 10), 5.9879096572498405, 8.016556265363716, State.Relearning),
        (Rating.Good, datetime(2027, 8, 1, 8, 10), 5.9879096572498405, 8.00376807839519, State.Review),
    ]
    state, when = None, T0
    for rating, due, stability, difficulty, fsrs_state in expected:
        state = scheduler.review(state, "card-1", rating, when)
        assert state.due == due.replace(tzinfo=UTC)
        assert state.stability == pytest.approx(stability, rel=1e-12)
        assert state.difficulty == pytest.approx(difficulty, rel=1e-12)
        assert state.state is fsrs_state
        assert state.last_review == when and state.card_id == fsrs_card_id("card-1")
        when = state.due
    assert state is not None
    assert scheduler.retrievability(state, state.due) == pytest.approx(0.8998613632836214, rel=1e-12)
    later = state.due + timedelta(days=30)
    assert scheduler.retrievability(state, later) == pytest.approx(0.7425200065637453, rel=1e-12)
    assert scheduler.retrievability(None, later) == 0.0


def test_desired_retention_changes_the_intervals() -> None:
    relaxed = CardScheduler(desired_retention=0.8)
    first = relaxed.review(None, "card-1", Rating.Easy, T0)
    assert first.due == datetime(2026, 2, 2, 8, 0, tzinfo=UTC)
    second = relaxed.review(first, "card-1", Rating.Good, first.due)
    assert second.due == datetime(2026, 10, 6, 8, 0, tzinfo=UTC)
    assert second.stability == pytest.approx(74.32595185121225, rel=1e-12)


def test_new_card_learning_steps_and_naive_times_taken_as_utc() -> None:
    scheduler = CardScheduler()
    state = scheduler.review(None, "c", Rating.Again, T0.replace(tzinfo=None))
    assert state.due == T0 + timedelta(minutes=1) and state.state is State.Learning and state.step == 0
    state = scheduler.review(state, "c", Rating.Good, state.due)
    assert state.due == T0 + timedelta(minutes=11) and state.step == 1


def card(card_id: str, *, important: bool = False) -> Card:
    return Card(
        id=card_id,
        question=f"{card_id}?",
        display_question=f"What is {card_id}?",
        topic="NLP",
        flags=[FLAG_IMPORTANT] if important else [],
        source=Source(path="notes.txt", line_start=3, line_end=4),
    )


def test_select_review_due_first_most_overdue_then_new_important_first() -> None:
    scheduler = CardScheduler()
    now = T0 + timedelta(days=30)
    cards = [card(f"c{i}", important=i in (5, 7)) for i in range(9)]
    states = {
        "c0": scheduler.review(None, "c0", Rating.Easy, T0),  # due Jan 13: overdue 22 days
        "c1": scheduler.review(None, "c1", Rating.Easy, T0 + timedelta(days=15)),  # due Jan 28
        "c2": scheduler.review(None, "c2", Rating.Easy, T0 + timedelta(days=29)),  # not due yet
        "c3": scheduler.review(None, "c3", Rating.Again, T0),  # due 1 minute later: most overdue
    }
    picked = select_review(cards, states, now, 6, random.Random(1))
    ids = [c.id for c in picked]
    assert ids[:3] == ["c3", "c0", "c1"]
    assert set(ids[3:5]) == {"c5", "c7"} and ids[5] in {"c4", "c6", "c8"}
    assert "c2" not in ids
    assert [c.id for c in select_review(cards, states, now, 6, random.Random(1))] == ids  # reproducible
    orders = {tuple(c.id for c in select_review(cards, states, now, 9, random.Random(s))) for s in range(20)}
    assert len(orders) > 1  # new cards are shuffled by the given rng
    assert len(select_review(cards, states, now, 100, random.Random(0))) == 8
    assert select_review(cards, states, now, 0, random.Random(0)) == []


def test_leeches() -> None:
    cards = {"a": card("a"), "b": card("b")}
    leeches = find_leeches({"a": 6, "b": 9, "c": 5, "d": 7}, threshold=6, cards=cards)
    assert [(leech.card_id, leech.failures) for leech in leeches] == [("b", 9), ("d", 7), ("a", 6)]
    assert "What is b?" in leeches[0].suggestion and "notes.txt:3" in leeches[0].suggestion
    assert "rewrite" in leeches[1].suggestion
    assert find_leeches({"a": 5}) == [] and [x.card_id for x in find_leeches({"a": 2}, threshold=2)] == ["a"]
