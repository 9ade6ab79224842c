"""Progress statistics, figures and renderers (bot/history/progress.py), and ``interview stats``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import fsrs
import pytest
from click.testing import CliRunner
from fsrs import Rating

from bot.adapters.cli import cli
from bot.history.progress import (
    Stats,
    activity_figure,
    compute_stats,
    print_stats,
    readiness_figure,
    stats_for,
    stats_markdown,
    streak,
    weakest_figure,
)
from bot.history.repository import History
from bot.knowledge.cards import FLAG_IMPORTANT, Card, Source
from bot.practice.schedule import CardScheduler
from tests.db_fixtures import make_attempt, make_outcome

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
SCHED = CardScheduler()


def card(card_id: str, topic: str, *, important: bool = False, answer: str = "An answer.") -> Card:
    return Card(
        id=card_id,
        question=f"{card_id}?",
        display_question=f"What is {card_id}?",
        answer=answer,
        topic=topic,
        flags=[FLAG_IMPORTANT] if important else [],
        source=Source(path="notes.txt", line_start=1, line_end=2),
    )


CARDS = [card("a1", "NLP"), card("a2", "NLP"), card("b1", "RNN", important=True), card("b2", "RNN", answer="")]


def seed(history: History, user: str = "alice") -> int:
    """Three sessions: 3 days ago, yesterday and today; b1 failed every time."""
    uid = history.ensure_user(user)
    plan = [
        (NOW - timedelta(days=3), [("a1", 8.0, Rating.Good), ("b1", 2.0, Rating.Again)]),
        (NOW - timedelta(days=1), [("b1", 3.0, Rating.Again), ("a2", 5.0, Rating.Hard)]),
        (NOW - timedelta(hours=2), [("b1", 1.0, Rating.Again)]),
    ]
    for day, (start, items) in enumerate(plan):
        sid = history.start_session(
            uid, mode="drill", config={}, card_ids=[c for c, _, _ in items], now=start, session_id=f"{user}-s{day}"
        )
        for i, (card_id, score, rating) in enumerate(items):
            at = start + timedelta(minutes=i)
            topic = "NLP" if card_id.startswith("a") else "RNN"
            history.record_attempt(uid, make_attempt(sid, card_id, score=score, at=at, topic=topic))
            history.finish_question(uid, make_outcome(sid, card_id, score=score, at=at, topic=topic), rating, SCHED)
        history.finish_session(uid, sid, start + timedelta(minutes=5))
    return uid


@pytest.fixture
def seeded_history(tmp_path: Path) -> Iterator[History]:
    h = History(f"sqlite:///{tmp_path / 'h.sqlite3'}")
    seed(h, "alice")
    bob = h.ensure_user("bob")  # another user's rows must not count
    sid = h.start_session(bob, mode="drill", config={}, card_ids=["a1"], now=NOW - timedelta(days=20))
    h.record_attempt(bob, make_attempt(sid, "a1", score=10.0, at=NOW - timedelta(days=20)))
    h.finish_question(bob, make_outcome(sid, "a1", score=10.0, at=NOW - timedelta(days=20)), Rating.Easy, SCHED)
    yield h
    h.close()


def test_streak() -> None:
    today = date(2026, 3, 10)
    assert streak([], today) == 0
    assert streak([today], today) == 1
    assert streak([today - timedelta(days=1), today - timedelta(days=2)], today) == 2  # ends yesterday
    assert streak([today, today - timedelta(days=1), today - timedelta(days=3)], today) == 2
    assert streak([today - timedelta(days=2)], today) == 0


def test_stats_exact(seeded_history: History) -> None:
    stats = stats_for(seeded_history, "alice", CARDS, SCHED, NOW, leech_threshold=3)
    assert (stats.attempts, stats.graded, stats.sessions) == (5, 5, 3)
    assert stats.mean_score == pytest.approx((8 + 2 + 3 + 5 + 1) / 5)
    assert stats.streak == 2 and stats.practised_today  # 3 days ago is not part of it

    # Readiness: mean FSRS recall over the topic's cards, new cards count 0 (b2 never asked).
    states = seeded_history.card_states(seeded_history.user_id("alice") or 0)
    raw = fsrs.Scheduler(enable_fuzzing=False)
    recall = {cid: raw.get_card_retrievability(states[cid], NOW) for cid in ("a1", "a2", "b1")}
    nlp, rnn = stats.topics
    assert (nlp.topic, nlp.cards, nlp.reviewed) == ("NLP", 2, 2)
    assert nlp.readiness == pytest.approx((recall["a1"] + recall["a2"]) / 2, rel=1e-12)
    assert (rnn.topic, rnn.cards, rnn.reviewed) == ("RNN", 2, 1)
    assert rnn.readiness == pytest.approx(recall["b1"] / 2, rel=1e-12)
    assert 0 < rnn.readiness < nlp.readiness < 1
    assert stats.readiness == pytest.approx(sum(recall.values()) / 4, rel=1e-12)
    assert stats.new_cards == 1
    assert stats.due_now == sum(states[c].due <= NOW for c in ("a1", "a2", "b1"))

    # One row per day from the first practice day to today, gaps included.
    assert [(d.day, d.attempts, d.mean_score) for d in stats.days] == [
        (date(2026, 3, 7), 2, 5.0),
        (date(2026, 3, 8), 0, None),
        (date(2026, 3, 9), 2, 4.0),
        (date(2026, 3, 10), 1, 1.0),
    ]

    # Weakest first; b1 failed three times: a leech at threshold 3.
    assert [c.card_id for c in stats.weakest()] == ["b1", "a2"]
    b1 = stats.cards[0]
    assert (b1.failures, b1.leech, b1.last_rating, b1.recent_score) == (3, True, "Again", 2.0)
    assert b1.question == "What is b1?" and b1.topic == "RNN"
    a1 = next(c for c in stats.cards if c.card_id == "a1")
    assert not a1.weak and a1.last_score == 8.0
    assert [leech.card_id for leech in stats.leeches] == ["b1"]
    assert "notes.txt:1" in stats.leeches[0].suggestion
    assert stats_for(seeded_history, "alice", CARDS, SCHED, NOW).leeches == []  # default threshold 6

    json.dumps(stats.as_dict())  # JSON-ready
    assert stats.as_dict()["days"][0]["day"] == "2026-03-07"


def test_other_users_and_unknown_users(seeded_history: History) -> None:
    bob = stats_for(seeded_history, "bob", CARDS, SCHED, NOW)
    assert bob.attempts == 1 and bob.mean_score == 10.0 and bob.streak == 0 and bob.weakest() == []
    nobody = stats_for(seeded_history, "carol", CARDS, SCHED, NOW)
    assert nobody.attempts == 0 and nobody.days == [] and nobody.readiness == 0.0 and nobody.new_cards == 4


def test_without_notes_the_history_defines_the_cards(seeded_history: History) -> None:
    stats = stats_for(seeded_history, "alice", [], SCHED, NOW)
    assert [(t.topic, t.cards) for t in stats.topics] == [("NLP", 2), ("RNN", 1)]
    assert stats.cards[0].question == "Question for b1?"


def test_time_zone_decides_the_day() -> None:
    from zoneinfo import ZoneInfo

    late = datetime(2026, 3, 9, 23, 30, tzinfo=UTC)  # already the 10th in Berlin
    stats_utc = compute_stats(
        user="u", cards=[], attempts=[_stored(late)], reviews=[], states={}, scheduler=SCHED, now=NOW
    )
    stats_berlin = compute_stats(
        user="u",
        cards=[],
        attempts=[_stored(late)],
        reviews=[],
        states={},
        scheduler=SCHED,
        now=NOW,
        tz=ZoneInfo("Europe/Berlin"),
    )
    assert stats_utc.days[0].day == date(2026, 3, 9) and stats_utc.streak == 1 and not stats_utc.practised_today
    assert stats_berlin.days[0].day == date(2026, 3, 10) and stats_berlin.practised_today


def _stored(at: datetime) -> Any:
    from bot.history.records import StoredAttempt
    from bot.practice.attempts import AttemptKind
    from tests.db_fixtures import make_grade

    return StoredAttempt(
        id=1,
        user_id=1,
        session_id="s",
        card_id="c",
        topic="T",
        kind=AttemptKind.ANSWER,
        prompt="Q?",
        answer="A",
        grade=make_grade(6.0),
        hints_used=0,
        time_taken_s=3.0,
        started_at=at,
        answered_at=at,
        recorded_at=at,
    )


@pytest.fixture
def stats(seeded_history: History) -> Stats:
    return stats_for(seeded_history, "alice", CARDS, SCHED, NOW, leech_threshold=3)


def test_figures(stats: Stats) -> None:
    import plotly.graph_objects as go

    fig = readiness_figure(stats)
    assert isinstance(fig, go.Figure)
    bar = fig.data[0]
    assert list(bar.y) == ["RNN", "NLP"]  # weakest topic first (bottom)
    assert list(bar.x) == [round(100 * t.readiness, 1) for t in reversed(stats.topics)]
    activity = activity_figure(stats)
    assert [t.name for t in activity.data] == ["attempts", "mean score"]
    assert list(activity.data[0].y) == [2, 0, 2, 1]
    assert list(activity.data[1].y) == [5.0, None, 4.0, 1.0]
    assert activity.data[1].yaxis == "y2"
    weak = weakest_figure(stats)
    assert list(weak.data[0].y) == ["What is a2?", "What is b1?"] and list(weak.data[0].x) == [5.0, 2.0]
    json.loads(fig.to_json())


def test_renderers(stats: Stats) -> None:
    from rich.console import Console

    console = Console(record=True, width=120)
    print_stats(stats, console)
    text = console.export_text()
    assert "Readiness by topic" in text and "NLP" in text and "What is b1? (leech)" in text
    assert "streak 2 day(s)" in text and "2026-03-08" in text
    md = stats_markdown(stats)
    assert "| NLP | 2 | 2 |" in md and "| 2026-03-08 | 0 | – |" in md
    assert "| What is b1? (leech) | RNN | 2.0 | 3 |" in md and "**Leech:**" in md


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_interview_stats_cli(isolated_state: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "n.txt").write_text("NLP:\nWhat is a token?\nA piece of text.\n", encoding="utf-8")
    monkeypatch.setenv("INTERVIEW_KNOWLEDGE_DIR", str(notes))
    code, out, _ = run("stats", "--json", "--now", NOW.isoformat())
    assert code == 0 and json.loads(out)["attempts"] == 0 and json.loads(out)["new_cards"] == 1
    from bot.settings import Settings

    with History.from_settings(Settings()) as h:
        seed(h, "local")
    code, out, _ = run("stats", "--json", "--now", NOW.isoformat())
    data = json.loads(out)
    assert code == 0 and data["user"] == "local" and data["attempts"] == 5 and data["streak"] == 2
    assert data["cards"][0]["card_id"] == "b1"
    code, out, _ = run("stats", "--now", NOW.isoformat())
    assert code == 0 and "local: 5 answers in 3 sessions" in out and "Weakest cards" in out
    code, _, err = run("stats", "--user", "bob")
    assert code == 2 and "INTERVIEW_USERS is empty" in err
