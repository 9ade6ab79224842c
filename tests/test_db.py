"""The practice history (bot/history: schema, repository, recorder) on SQLite and PostgreSQL: resume, FSRS."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fsrs import Rating, State

from bot.history.recorder import HistoryRecorder
from bot.history.records import UnknownSession
from bot.history.repository import History
from bot.practice.attempts import AttemptKind
from bot.practice.schedule import CardScheduler, RatingThresholds
from tests.db_fixtures import T0, make_attempt, make_grade, make_outcome

SCHED = CardScheduler()


def test_attempt_roundtrip_keeps_the_full_grade(history: History) -> None:
    uid = history.ensure_user("alice")
    assert history.ensure_user("alice") == uid and history.user_id("alice") == uid
    sid = history.start_session(uid, mode="drill", config={"n": 3, "topics": ["NLP"]}, card_ids=["a", "b"], now=T0)
    attempt = make_attempt(sid, "a", score=6.1, hints=1)
    aid = history.record_attempt(uid, attempt)
    skip = make_attempt(sid, "b", kind="skip", answer="", grade=None, at=T0 + timedelta(minutes=1))
    history.record_attempt(uid, skip)
    ungraded = make_attempt(sid, "b", grade=make_grade(None), kind="retry", at=T0 + timedelta(minutes=2))
    history.record_attempt(uid, ungraded)

    got = history.attempts(uid)
    assert [a.kind for a in got] == [AttemptKind.ANSWER, AttemptKind.SKIP, AttemptKind.RETRY]
    first = got[0]
    assert first.id == aid and first.grade == attempt.grade  # every field, claims and usage included
    assert first.score == 6.1 and first.hints_used == 1 and first.time_taken_s == 42.0
    assert first.answered_at == T0 and first.answered_at.tzinfo is not None
    assert first.started_at == T0 - timedelta(seconds=42)
    assert first.prompt == "Question for a?" and first.answer == attempt.answer
    assert got[1].grade is None and got[1].score is None
    assert got[2].grade is not None and got[2].grade.status == "ungraded" and got[2].score is None
    assert [a.card_id for a in history.attempts(uid, sid, card_id="b")] == ["b", "b"]
    assert history.count_attempts(uid) == 3


def test_unfinished_session_gives_what_resume_needs(history: History) -> None:
    uid = history.ensure_user("alice")
    old = history.start_session(uid, mode="drill", config={"n": 2}, card_ids=["x", "y"], now=T0 - timedelta(days=1))
    history.finish_session(uid, old, T0 - timedelta(hours=23))
    sid = history.start_session(
        uid, mode="review", config={"n": 4, "seed": 7}, card_ids=["c3", "c1", "c4", "c2"], now=T0
    )
    for i, card in enumerate(["c3", "c1"]):
        at = T0 + timedelta(minutes=i)
        history.record_attempt(uid, make_attempt(sid, card, at=at))
        history.finish_question(uid, make_outcome(sid, card, at=at), Rating.Good, SCHED)
    history.record_attempt(uid, make_attempt(sid, "c4", at=T0 + timedelta(minutes=5)))  # graded, not finished

    info = history.unfinished_session(uid)
    assert info is not None and info.id == sid and info.mode == "review"
    assert info.config == {"n": 4, "seed": 7}
    assert info.card_ids == ["c3", "c1", "c4", "c2"]
    assert info.finished_card_ids == ["c3", "c1"]
    assert info.remaining_card_ids == ["c4", "c2"] and info.next_card_id == "c4"
    assert [a.card_id for a in info.attempts] == ["c3", "c1", "c4"]
    assert info.finished_at is None

    history.finish_session(uid, sid, T0 + timedelta(minutes=9))
    assert history.unfinished_session(uid) is None
    assert [s.id for s in history.sessions(uid)] == [old, sid]
    assert history.sessions(uid)[1].finished_card_ids == ["c3", "c1"]


def test_each_user_sees_only_their_own_rows(history: History) -> None:
    alice, bob = history.ensure_user("alice"), history.ensure_user("bob")
    a_sid = history.start_session(alice, mode="drill", config={}, card_ids=["k1", "k2"], now=T0)
    history.record_attempt(alice, make_attempt(a_sid, "k1"))
    history.finish_question(alice, make_outcome(a_sid, "k1", score=1.0), Rating.Again, SCHED)

    assert history.attempts(bob) == [] and history.count_attempts(bob) == 0
    assert history.attempts(bob, a_sid) == []
    assert history.unfinished_session(bob) is None and history.sessions(bob) == []
    assert history.session(bob, a_sid) is None and history.session(alice, a_sid) is not None
    assert history.card_states(bob) == {} and history.card_state(bob, "k1") is None
    assert history.reviews(bob) == [] and history.again_counts(bob) == {}
    # Bob cannot write into Alice's session either.
    with pytest.raises(UnknownSession):
        history.record_attempt(bob, make_attempt(a_sid, "k2"))
    with pytest.raises(UnknownSession):
        history.finish_question(bob, make_outcome(a_sid, "k2"), Rating.Good, SCHED)
    with pytest.raises(UnknownSession):
        history.rerate(bob, a_sid, "k1", Rating.Easy, SCHED)
    with pytest.raises(UnknownSession):
        history.finish_session(bob, a_sid, T0)
    # Bob's own history on the same card id is separate.
    b_sid = history.start_session(bob, mode="drill", config={}, card_ids=["k1"], now=T0)
    history.finish_question(bob, make_outcome(b_sid, "k1"), Rating.Easy, SCHED)
    assert history.again_counts(alice) == {"k1": 1} and history.again_counts(bob) == {}
    alice_state, bob_state = history.card_state(alice, "k1"), history.card_state(bob, "k1")
    assert alice_state is not None and bob_state is not None
    assert alice_state.due != bob_state.due
    assert len(history.attempts(alice)) == 1


def test_finish_question_reviews_with_fsrs_and_is_idempotent(history: History) -> None:
    uid = history.ensure_user("alice")
    sid = history.start_session(uid, mode="drill", config={}, card_ids=["c1", "c2"], now=T0)
    review = history.finish_question(uid, make_outcome(sid, "c1"), Rating.Good, SCHED)
    expected = SCHED.review(None, "c1", Rating.Good, T0)
    assert review.rating is Rating.Good and review.state_before is None
    assert review.due == expected.due == T0 + timedelta(minutes=10)  # second learning step
    stored = history.card_state(uid, "c1")
    assert stored is not None and stored.stability == expected.stability and stored.state is State.Learning
    again = history.finish_question(uid, make_outcome(sid, "c1", at=T0 + timedelta(hours=1)), Rating.Again, SCHED)
    assert again.id == review.id and again.rating is Rating.Good  # the same question is not reviewed twice
    # An ungraded final grade: the card is finished but nobody is punished.
    none = history.finish_question(uid, make_outcome(sid, "c2", score=None), None, SCHED)
    assert none.rating is None and none.state_after is None and history.card_state(uid, "c2") is None
    assert history.unfinished_session(uid).finished_card_ids == ["c1", "c2"]  # type: ignore[union-attr]


def test_exact_schedule_through_the_store(history: History) -> None:
    """Four sessions over two weeks: the stored state matches py-fsrs step by step."""
    uid = history.ensure_user("alice")
    plan = [
        (T0, Rating.Good),
        (T0 + timedelta(minutes=10), Rating.Good),
        (T0 + timedelta(days=3), Rating.Again),
        (T0 + timedelta(days=3, minutes=10), Rating.Good),
        (T0 + timedelta(days=14), Rating.Easy),
    ]
    dues = []
    for i, (at, rating) in enumerate(plan):
        sid = history.start_session(uid, mode="review", config={}, card_ids=["c"], now=at, session_id=f"s{i}")
        dues.append(history.finish_question(uid, make_outcome(sid, "c", at=at), rating, SCHED).due)
    assert dues == [
        T0 + timedelta(minutes=10),  # learning step 2
        T0 + timedelta(days=2, minutes=10),  # graduates: interval from stability 2.3065
        T0 + timedelta(days=3, minutes=10),  # lapse: relearning step
        T0 + timedelta(days=4, minutes=10),
        T0 + timedelta(days=25),
    ]
    state = history.card_state(uid, "c")
    assert state is not None and state.state is State.Review and state.step is None
    assert state.stability == pytest.approx(10.576847897077295, rel=1e-12)
    assert state.difficulty == pytest.approx(6.489845540207452, rel=1e-12)
    assert state.last_review == T0 + timedelta(days=14)
    assert history.again_counts(uid) == {"c": 1}


def test_rerate_undoes_the_review_and_applies_the_users_rating(history: History) -> None:
    uid = history.ensure_user("alice")
    s1 = history.start_session(uid, mode="drill", config={}, card_ids=["c"], now=T0)
    first = history.finish_question(uid, make_outcome(s1, "c"), Rating.Good, SCHED)
    later = T0 + timedelta(days=2)
    s2 = history.start_session(uid, mode="drill", config={}, card_ids=["c"], now=later)
    auto = history.finish_question(uid, make_outcome(s2, "c", at=later, score=2.0), Rating.Again, SCHED)
    assert history.again_counts(uid) == {"c": 1}

    fixed = history.rerate(uid, s2, "c", Rating.Easy, SCHED)
    direct = SCHED.review(first.state_after, "c", Rating.Easy, later)
    assert fixed.rating is Rating.Easy and fixed.auto_rating is Rating.Again and fixed.overridden
    assert fixed.state_before == auto.state_before == first.state_after
    stored = history.card_state(uid, "c")
    assert stored is not None and stored.due == direct.due and stored.stability == direct.stability
    assert stored.due != auto.due
    assert history.again_counts(uid) == {}  # the overridden Again no longer counts as a failure
    with pytest.raises(ValueError, match="latest review"):
        history.rerate(uid, s1, "c", Rating.Hard, SCHED)
    with pytest.raises(UnknownSession):
        history.rerate(uid, s2, "other", Rating.Hard, SCHED)
    # An ungraded question can be rated by hand afterwards.
    s3 = history.start_session(uid, mode="drill", config={}, card_ids=["n"], now=later)
    history.finish_question(uid, make_outcome(s3, "n", at=later, score=None), None, SCHED)
    assert history.rerate(uid, s3, "n", Rating.Good, SCHED).due == later + timedelta(minutes=10)


def test_an_appeal_regrade_redoes_the_review(history: History) -> None:
    from dataclasses import replace

    uid = history.ensure_user("alice")
    sid = history.start_session(uid, mode="drill", config={}, card_ids=["c"], now=T0)
    first = history.finish_question(uid, make_outcome(sid, "c", score=2.0), Rating.Again, SCHED)
    appeal = replace(make_outcome(sid, "c", score=9.0, at=T0 + timedelta(minutes=3)), regrade=True)
    regraded = history.finish_question(uid, appeal, Rating.Easy, SCHED)
    assert regraded.id == first.id and regraded.rating is Rating.Easy and regraded.auto_rating is Rating.Easy
    assert regraded.final_score == 9.0 and not regraded.overridden
    assert regraded.state_after == SCHED.review(None, "c", Rating.Easy, T0)  # reviewed at the original time
    assert history.card_state(uid, "c") == regraded.state_after and history.again_counts(uid) == {}
    failed_appeal = replace(appeal, final=make_grade(None))  # ungraded: the review stands
    assert history.finish_question(uid, failed_appeal, None, SCHED).rating is Rating.Easy


def test_session_config_never_stores_secrets(history: History) -> None:
    from pydantic import SecretStr

    uid = history.ensure_user("alice")
    config = {
        "n": 5,
        "openai_api_key": "sk-live-123",
        "nested": {"password": "hunter2", "token": "t", "max_tokens": 700, "key": SecretStr("x")},
        "when": T0,
    }
    sid = history.start_session(uid, mode="drill", config=config, card_ids=[], now=T0)
    stored = history.session(uid, sid)
    assert stored is not None
    assert stored.config == {"n": 5, "nested": {"max_tokens": 700, "key": None}, "when": T0.isoformat()}


def test_start_session_rejects_duplicate_cards(history: History) -> None:
    uid = history.ensure_user("alice")
    with pytest.raises(ValueError, match="duplicate"):
        history.start_session(uid, mode="drill", config={}, card_ids=["a", "a"], now=T0)


async def test_recorder_runs_off_the_event_loop_and_maps_ratings(history: History) -> None:
    uid = history.ensure_user("alice")
    sid = history.start_session(uid, mode="drill", config={}, card_ids=["c1", "c2", "c3"], now=T0)
    recorder = HistoryRecorder(history, uid, SCHED, RatingThresholds())
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = history.record_attempt

    def spy(user_id: int, attempt: Any) -> int:
        seen.append(threading.get_ident())
        return original(user_id, attempt)

    history.record_attempt = spy  # type: ignore[method-assign]
    await recorder.record_attempt(make_attempt(sid, "c1"))
    assert seen and seen[0] != loop_thread
    assert len(history.attempts(uid)) == 1  # committed when the call returned

    receipt = await recorder.question_finished(make_outcome(sid, "c1", score=9.0, hints=1))  # Easy - a hint
    assert receipt is recorder.last_review and receipt.rating is Rating.Good
    assert receipt.due == T0 + timedelta(minutes=10)
    await recorder.question_finished(make_outcome(sid, "c2", score=None))  # ungraded: no review
    assert recorder.last_review.rating is None and history.card_state(uid, "c2") is None
    await recorder.question_finished(make_outcome(sid, "c3", skipped=True))
    assert recorder.last_review.rating is Rating.Again
    review = await recorder.rerate(sid, "c3", Rating.Hard)
    assert review.rating is Rating.Hard and recorder.last_review is review
    assert await asyncio.to_thread(history.again_counts, uid) == {}
    await recorder.session_finished(sid, T0 + timedelta(minutes=30))
    assert history.unfinished_session(uid) is None
    assert history.sessions(uid)[0].finished_at == T0 + timedelta(minutes=30)


def _record_concurrently(url: str, sessions: int, per_session: int) -> tuple[float, History]:
    history = History(url)
    uids = [history.ensure_user(f"user{i % 10}") for i in range(sessions)]
    sids = [
        history.start_session(
            uids[i], mode="drill", config={"i": i}, card_ids=[f"c{j}" for j in range(per_session)], now=T0
        )
        for i in range(sessions)
    ]
    barrier = threading.Barrier(sessions)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            for j in range(per_session):
                at = T0 + timedelta(seconds=j)
                history.record_attempt(uids[i], make_attempt(sids[i], f"c{j}", at=at))
                history.finish_question(uids[i], make_outcome(sids[i], f"c{j}", at=at), Rating.Good, SCHED)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(sessions)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    assert errors == []
    return elapsed, history


@pytest.mark.slow
def test_fifty_sessions_grading_concurrently_lose_nothing(db_url: str, record_property: Any) -> None:
    sessions, per_session = 50, 8
    elapsed, history = _record_concurrently(db_url, sessions, per_session)
    try:
        backend = "sqlite" if history.is_sqlite else "postgres"
        record_property(f"concurrent_{backend}_seconds", round(elapsed, 3))
        print(f"\n{backend}: {sessions} threads x {per_session} attempts+reviews in {elapsed:.2f}s")
        total = 0
        for i in range(10):
            uid = history.user_id(f"user{i}")
            assert uid is not None
            attempts = history.attempts(uid)
            total += len(attempts)
            assert len({a.id for a in attempts}) == len(attempts)
            assert len(history.reviews(uid)) == 5 * per_session
            assert all(s.finished_card_ids == [f"c{j}" for j in range(per_session)] for s in history.sessions(uid))
        assert total == sessions * per_session  # not one attempt lost
    finally:
        history.close()


def test_sqlite_is_wal_with_a_busy_timeout_and_retries_when_locked(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    history = History(f"sqlite:///{path}", busy_timeout_ms=50)
    uid = history.ensure_user("alice")
    sid = history.start_session(uid, mode="drill", config={}, card_ids=["c"], now=T0)
    with history.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 50
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # Another process-like connection holds the write lock for longer than the busy timeout.
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    releasing = threading.Event()

    def release() -> None:
        releasing.set()  # set first: once the write below is through, the commit has begun
        blocker.execute("COMMIT")

    releaser = threading.Timer(0.4, release)
    releaser.start()
    try:
        history.record_attempt(uid, make_attempt(sid, "c"))  # locked at first: retried, not lost
        assert releasing.is_set()  # it waited for the lock (beyond the 50 ms busy timeout) instead of failing
    finally:
        releaser.join()
        blocker.close()
    assert len(history.attempts(uid)) == 1
    history.close()


def test_default_location_and_database_url(monkeypatch: pytest.MonkeyPatch, isolated_state: Path) -> None:
    from bot.settings import Settings

    history = History.from_settings(Settings())
    history.ensure_user("local")
    history.close()
    assert (isolated_state / "history.sqlite3").exists()
    other = isolated_state / "elsewhere" / "h.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{other}")
    settings = Settings()
    assert settings.history_url == f"sqlite:///{other}"
    assert "elsewhere" not in repr(settings)  # the URL may hold a password: never printed
    History.from_settings(settings).close()
    assert other.exists()
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://me:s3cret@db.internal/interview")
    settings = Settings()
    assert settings.history_url == "postgresql+psycopg://me:s3cret@db.internal/interview"
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())


CHILD = r"""
import sys
from datetime import UTC, datetime, timedelta
from fsrs import Rating
from bot.practice.attempts import Attempt, AttemptKind, QuestionOutcome
from bot.history.repository import History
from bot.grading.base import Grade
from bot.practice.schedule import CardScheduler

url, sid = sys.argv[1], sys.argv[2]
history = History(url)
uid = history.ensure_user("alice")
scheduler = CardScheduler()
t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
cards = [f"c{i}" for i in range(100000)]
history.start_session(uid, mode="drill", config={"n": len(cards)}, card_ids=cards[:2000], now=t0, session_id=sid)
print("started", flush=True)
for i, card in enumerate(cards):
    at = t0 + timedelta(seconds=i)
    grade = Grade(score=float(i % 11), grader="offline", feedback="x" * 2000)
    attempt = Attempt(sid, card, "T", AttemptKind.ANSWER, f"Q{i}?", "a" * 500, grade, 0, at, at)
    aid = history.record_attempt(uid, attempt)
    print("attempt", aid, card, flush=True)
    if i % 2 == 0:
        outcome = QuestionOutcome(sid, card, "T", grade, 0, False, False, at)
        history.finish_question(uid, outcome, Rating.Good, scheduler)
        print("finished", card, flush=True)
"""


def test_sigkill_mid_session_loses_no_committed_attempt(db_url: str, tmp_path: Path) -> None:
    sid = "killed-session"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, sid],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdout is not None
    reported: list[tuple[int, str]] = []
    finished: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while len(reported) < 40:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else "child died"
            assert time.monotonic() < deadline
            if line.startswith("attempt"):
                _, aid, card = line.split()
                reported.append((int(aid), card))
        os.kill(proc.pid, signal.SIGKILL)  # somewhere inside the next record or review
    finally:
        proc.wait(timeout=30)
    for line in proc.stdout:  # lines already in the pipe were committed too
        if line.startswith("attempt"):
            _, aid, card = line.split()
            reported.append((int(aid), card))
        elif line.startswith("finished"):
            finished.append(line.split()[1])
    assert proc.returncode == -signal.SIGKILL

    with History(db_url) as history:
        uid = history.user_id("alice")
        assert uid is not None
        stored = {a.id: a for a in history.attempts(uid)}
        for aid, card in reported:
            assert aid in stored and stored[aid].card_id == card
            assert stored[aid].grade is not None and stored[aid].grade.feedback == "x" * 2000
        assert len(stored) - len(reported) in (0, 1)  # at most the one committed as it was killed
        info = history.unfinished_session(uid)
        assert info is not None and info.id == sid and info.config == {"n": 100000}
        assert len(info.card_ids) == 2000
        done = set(info.finished_card_ids)
        assert done >= set(finished)
        assert info.next_card_id is not None
        if history.is_sqlite:
            with history.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
