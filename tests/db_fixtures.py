"""History database fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``INTERVIEW_TEST_POSTGRES_URL`` (``.ci/postgres.sh`` starts one); each test
gets its own fresh schema, dropped afterwards. Without the URL the Postgres variant skips, unless
``INTERVIEW_REQUIRE_POSTGRES=1``, in which case a missing or unreachable server fails the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

POSTGRES_URL_ENV = "INTERVIEW_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "INTERVIEW_REQUIRE_POSTGRES"


def postgres_required() -> bool:
    return os.environ.get(REQUIRE_POSTGRES_ENV, "").strip().lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> None:
    if postgres_required():
        pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _postgres_schema_url() -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    base = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if not base:
        _unavailable(f"{POSTGRES_URL_ENV} is not set (source .ci/postgres.sh)")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # any connection failure means "no Postgres"
        admin.dispose()
        _unavailable(f"PostgreSQL at {POSTGRES_URL_ENV} is unreachable: {type(exc).__name__}: {exc}")
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty history database URL: SQLite in the test's temp dir, or a Postgres schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.sqlite3'}"
        return
    yield from _postgres_schema_url()


@pytest.fixture
def history(db_url: str) -> Iterator[Any]:
    """A :class:`bot.history.repository.History` on ``db_url`` with a fixed clock, closed afterwards."""
    from bot.history.repository import History

    h = History(db_url, clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    try:
        yield h
    finally:
        h.close()


# --------------------------------------------------------------------------- builders

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_grade(score: float | None = 7.0, *, hits: int = 2, missed: int = 1, contradicted: int = 0) -> Any:
    """A graded (or, with ``score=None``, ungraded) Grade with a key-point checklist."""
    from bot.grading.base import Claim, ClaimStatus, Criteria, Grade, Usage, ungraded

    if score is None:
        return ungraded("the model timed out", grader="llm:test")
    claims = (
        [Claim(point=f"point {i}", status=ClaimStatus.HIT, evidence=f"said {i}") for i in range(hits)]
        + [Claim(point=f"missed {i}", status=ClaimStatus.MISSED) for i in range(missed)]
        + [Claim(point=f"wrong {i}", status=ClaimStatus.CONTRADICTED, evidence="no") for i in range(contradicted)]
    )
    return Grade(
        score=score,
        claims=claims,
        criteria=Criteria(correctness=2, depth=1),
        misconceptions=["mixes up bias and variance"] if contradicted else [],
        feedback="Good start; name the trade-off.",
        usage=Usage(prompt_tokens=900, completion_tokens=120, cost_usd=0.0002),
        grader="offline",
        prompt_version="v-test",
    )


def make_attempt(
    session_id: str,
    card_id: str,
    *,
    score: float | None = 7.0,
    at: datetime = T0,
    kind: str = "answer",
    answer: str = "Dropout switches random neurons off during training.",
    topic: str = "Deep learning",
    hints: int = 0,
    grade: Any = "default",
) -> Any:
    from bot.practice.attempts import Attempt, AttemptKind

    return Attempt(
        session_id=session_id,
        card_id=card_id,
        topic=topic,
        kind=AttemptKind(kind),
        prompt=f"Question for {card_id}?",
        answer=answer,
        grade=make_grade(score) if grade == "default" else grade,
        hints_used=hints,
        started_at=at - timedelta(seconds=42),
        answered_at=at,
    )


def make_outcome(
    session_id: str,
    card_id: str,
    *,
    score: float | None = 7.0,
    at: datetime = T0,
    hints: int = 0,
    skipped: bool = False,
    revealed: bool = False,
    topic: str = "Deep learning",
    final: Any = "default",
) -> Any:
    from bot.practice.attempts import QuestionOutcome

    return QuestionOutcome(
        session_id=session_id,
        card_id=card_id,
        topic=topic,
        final=(None if skipped else make_grade(score)) if final == "default" else final,
        hints_used=hints,
        revealed_before_answer=revealed,
        skipped=skipped,
        finished_at=at,
    )
