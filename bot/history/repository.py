"""The practice history: users, sessions, attempts, question outcomes and per-card FSRS state.

SQLAlchemy 2, synchronous, one engine (:mod:`bot.history.engine`); opening the history upgrades its
schema to the newest migration (:mod:`bot.history.migrate`). Writes on SQLite take
``BEGIN IMMEDIATE`` and are retried on "database is locked". Every write commits before it
returns. Every query is scoped to one user.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import fsrs
from fsrs import Rating
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.grading.base import Grade
from bot.grading.calibration import CalibrationExample
from bot.history import migrate
from bot.history.engine import is_locked, make_engine
from bot.history.records import Review, SessionInfo, StoredAttempt, UnknownSession
from bot.history.schema import AttemptRow, CalibrationRow, CardStateRow, OutcomeRow, SessionRow, UserRow
from bot.practice.attempts import Attempt, AttemptKind, QuestionOutcome
from bot.practice.schedule import CardScheduler, fsrs_card_id, to_utc

if TYPE_CHECKING:
    from bot.settings import Settings

__all__ = ["History"]

log = logging.getLogger(__name__)
T = TypeVar("T")
CALIBRATION_CANDIDATES = 200  # kept corrections read per grade, newest first, before ranking by similarity


# --------------------------------------------------------------------------- helpers

_SECRET_KEY = re.compile(r"(?i)(^|[_-])(api[_-]?key|password|passwd|secret|token|credentials?|auth)($|[_-])")


def _scrub(value: Any) -> Any:
    """A JSON-safe copy of a session config without secret-looking keys or SecretStr values."""
    if isinstance(value, SecretStr):
        return None
    if isinstance(value, Mapping):
        return {str(k): _scrub(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, datetime):
        return to_utc(value).isoformat()
    return str(value)


def _state_to_json(card: fsrs.Card | None) -> dict[str, Any] | None:
    return None if card is None else dict(card.to_dict())


def _state_from_json(data: dict[str, Any] | None) -> fsrs.Card | None:
    if data is None:
        return None
    card = fsrs.Card.from_dict(data)  # type: ignore[arg-type]
    card.due = to_utc(card.due)
    card.last_review = to_utc(card.last_review) if card.last_review else None
    return card


def _state_from_row(row: CardStateRow) -> fsrs.Card:
    return fsrs.Card(
        card_id=fsrs_card_id(row.card_id),
        state=fsrs.State(row.state),
        step=row.step,
        stability=row.stability,
        difficulty=row.difficulty,
        due=to_utc(row.due),
        last_review=to_utc(row.last_review) if row.last_review else None,
    )


def _grade_from_json(data: dict[str, Any] | None, attempt_id: int) -> Grade | None:
    if data is None:
        return None
    try:
        return Grade.model_validate(data)
    except ValidationError:
        log.warning("attempt %d: stored grade no longer validates; shown without it", attempt_id)
        return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class History:
    """The practice history behind one SQLAlchemy engine. Thread-safe; every write commits."""

    def __init__(
        self,
        url: str | URL,
        *,
        clock: Callable[[], datetime] | None = None,
        busy_timeout_ms: int = 30_000,
        retries: int = 10,
    ) -> None:
        self.url = make_url(url)
        self._clock = clock or _utcnow
        self._retries = retries
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = make_engine(self.url, busy_timeout_ms=busy_timeout_ms)
        try:
            self.revision = migrate.upgrade(self.engine)  # the schema at head, whatever made the database
        except BaseException:
            self.engine.dispose()
            raise
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write_engine = self.engine.execution_options(sqlite_immediate=True)
        self._write_session = sessionmaker(self._write_engine, expire_on_commit=False)
        # SQLite takes one writer at a time, and its busy handler waits by sleeping (up to 100 ms a
        # try), so 50 sessions committing at once would queue with gaps. A process-wide lock hands
        # the database from one writer to the next at once; other processes still meet the busy
        # timeout. Database calls from async code run on their own threads (``arun``), so they
        # never occupy the default executor that retrieval and grading use.
        self._writer: AbstractContextManager[Any] = threading.Lock() if self.is_sqlite else nullcontext()
        self._executor = ThreadPoolExecutor(max_workers=2 if self.is_sqlite else 8, thread_name_prefix="history")

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Callable[[], datetime] | None = None) -> History:
        return cls(settings.history_url, clock=clock)

    async def arun(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking History method from async code, on the history's own threads."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        self.engine.dispose()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"History({self.url.render_as_string(hide_password=True)!r})"

    # -- transactions --------------------------------------------------------------------------

    def _write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one committed transaction, retrying on a locked database or a race."""
        with self._writer:  # SQLite: writers of this process queue here, not in SQLite's busy handler
            return self._write_unlocked(work)

    def _write_unlocked(self, work: Callable[[Session], T]) -> T:
        integrity_retries = 2
        for attempt in range(self._retries + 1):
            try:
                with self._write_session.begin() as session:
                    return work(session)
            except OperationalError as exc:
                if not is_locked(exc) or attempt == self._retries:
                    raise
                time.sleep(min(0.5, 0.01 * 2**attempt))
            except IntegrityError:
                # A concurrent insert of the same user/state/outcome: the retry sees it.
                if integrity_retries == 0:
                    raise
                integrity_retries -= 1
        raise AssertionError("unreachable")

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    # -- users ---------------------------------------------------------------------------------

    def ensure_user(self, name: str) -> int:
        """The user's id, creating the user on first use."""
        name = name.strip()
        if not name:
            raise ValueError("empty user name")

        def work(s: Session) -> int:
            found = s.scalar(select(UserRow.id).where(UserRow.name == name))
            if found is not None:
                return found
            row = UserRow(name=name, created_at=self._clock())
            s.add(row)
            s.flush()
            return row.id

        return self._write(work)

    def user_id(self, name: str) -> int | None:
        with self._reading() as s:
            return s.scalar(select(UserRow.id).where(UserRow.name == name.strip()))

    # -- sessions ------------------------------------------------------------------------------

    def start_session(
        self,
        user_id: int,
        *,
        mode: str,
        config: Mapping[str, Any],
        card_ids: Sequence[str],
        now: datetime,
        session_id: str | None = None,
    ) -> str:
        """Store a new session's config and ordered card ids; returns its id."""
        ids = list(card_ids)
        if len(set(ids)) != len(ids):
            raise ValueError("a session asks each card once: duplicate card ids")
        sid = session_id or uuid.uuid4().hex
        row = SessionRow(
            id=sid, user_id=user_id, mode=mode, config=_scrub(config), card_ids=ids, started_at=now, finished_at=None
        )

        def work(s: Session) -> str:
            s.add(row)
            return sid

        return self._write(work)

    def finish_session(self, user_id: int, session_id: str, now: datetime) -> None:
        def work(s: Session) -> None:
            row = self._own_session(s, user_id, session_id)
            if row.finished_at is None:
                row.finished_at = now

        self._write(work)

    @staticmethod
    def _own_session(s: Session, user_id: int, session_id: str) -> SessionRow:
        row = s.get(SessionRow, session_id)
        if row is None or row.user_id != user_id:
            raise UnknownSession(f"no session {session_id!r} for this user")
        return row

    def _session_info(self, s: Session, row: SessionRow) -> SessionInfo:
        finished = s.scalars(
            select(OutcomeRow.card_id).where(OutcomeRow.session_id == row.id).order_by(OutcomeRow.id)
        ).all()
        return SessionInfo(
            id=row.id,
            user_id=row.user_id,
            mode=row.mode,
            config=dict(row.config),
            card_ids=list(row.card_ids),
            finished_card_ids=list(finished),
            started_at=row.started_at,
            finished_at=row.finished_at,
            attempts=self._attempts(s, row.user_id, row.id),
        )

    def session(self, user_id: int, session_id: str) -> SessionInfo | None:
        with self._reading() as s:
            row = s.get(SessionRow, session_id)
            if row is None or row.user_id != user_id:
                return None
            return self._session_info(s, row)

    def unfinished_session(self, user_id: int) -> SessionInfo | None:
        """The user's latest session not marked finished (it may have no cards left)."""
        with self._reading() as s:
            row = s.scalars(
                select(SessionRow)
                .where(SessionRow.user_id == user_id, SessionRow.finished_at.is_(None))
                .order_by(SessionRow.started_at.desc(), SessionRow.id.desc())
                .limit(1)
            ).first()
            return None if row is None else self._session_info(s, row)

    def sessions(self, user_id: int) -> list[SessionInfo]:
        """All the user's sessions, oldest first, without their attempts."""
        with self._reading() as s:
            rows = s.scalars(
                select(SessionRow).where(SessionRow.user_id == user_id).order_by(SessionRow.started_at, SessionRow.id)
            ).all()
            finished: dict[str, list[str]] = {}
            for sid, cid in s.execute(
                select(OutcomeRow.session_id, OutcomeRow.card_id)
                .where(OutcomeRow.user_id == user_id)
                .order_by(OutcomeRow.id)
            ):
                finished.setdefault(sid, []).append(cid)
            return [
                SessionInfo(
                    id=r.id,
                    user_id=r.user_id,
                    mode=r.mode,
                    config=dict(r.config),
                    card_ids=list(r.card_ids),
                    finished_card_ids=finished.get(r.id, []),
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                )
                for r in rows
            ]

    # -- calibration examples ------------------------------------------------------------------

    def add_calibration(
        self, user_id: int, example: CalibrationExample, *, original_score: float | None, grader: str
    ) -> int:
        """Keep a correction (an upheld appeal, a re-grade after a rubric edit) of this user; returns its id."""
        row = CalibrationRow(
            user_id=user_id,
            card_id=example.card_id[:64],
            topic=example.topic[:200],
            kind=example.kind,
            question=example.question,
            answer=example.answer,
            score=example.score,
            band=example.band,
            original_score=original_score,
            why=example.why,
            grader=grader[:200],
            created_at=self._clock(),
        )

        def work(s: Session) -> int:
            s.add(row)
            s.flush()
            return row.id

        return self._write(work)

    def calibration_examples(
        self, user_id: int, *, card_id: str | None = None, topic: str | None = None, limit: int = CALIBRATION_CANDIDATES
    ) -> list[CalibrationExample]:
        """This user's kept corrections for ``card_id`` or ``topic`` (all of them when both are None),
        newest first, at most ``limit``."""
        query = select(CalibrationRow).where(CalibrationRow.user_id == user_id)
        scope = [
            c
            for c in (
                CalibrationRow.card_id == card_id if card_id else None,
                CalibrationRow.topic == topic if topic else None,
            )
            if c is not None
        ]
        if scope:
            query = query.where(or_(*scope))
        with self._reading() as s:
            rows = s.scalars(query.order_by(CalibrationRow.created_at.desc(), CalibrationRow.id.desc()).limit(limit))
            return [
                CalibrationExample(
                    card_id=r.card_id,
                    topic=r.topic,
                    question=r.question,
                    answer=r.answer,
                    score=r.score,
                    band=r.band,
                    why=r.why,
                    kind=r.kind if r.kind in ("appeal", "rubric_edit", "dataset") else "appeal",  # type: ignore[arg-type]
                )
                for r in rows
            ]

    # -- attempts ------------------------------------------------------------------------------

    def record_attempt(self, user_id: int, attempt: Attempt) -> int:
        """Store one attempt in its own committed transaction; returns its id."""
        grade = attempt.grade
        row = AttemptRow(
            user_id=user_id,
            session_id=attempt.session_id,
            card_id=attempt.card_id,
            topic=attempt.topic,
            kind=str(attempt.kind),
            prompt=attempt.prompt,
            answer=attempt.answer,
            grade=grade.model_dump(mode="json") if grade is not None else None,
            status=grade.status if grade is not None else "none",
            score=grade.score if grade is not None and grade.graded else None,
            hints_used=attempt.hints_used,
            time_taken_s=attempt.time_taken_s,
            started_at=attempt.started_at,
            answered_at=attempt.answered_at,
            recorded_at=self._clock(),
        )

        def work(s: Session) -> int:
            self._own_session(s, user_id, attempt.session_id)
            s.add(row)
            s.flush()
            return row.id

        return self._write(work)

    def _attempts(
        self, s: Session, user_id: int, session_id: str | None = None, card_id: str | None = None
    ) -> list[StoredAttempt]:
        query = select(AttemptRow).where(AttemptRow.user_id == user_id)
        if session_id is not None:
            query = query.where(AttemptRow.session_id == session_id)
        if card_id is not None:
            query = query.where(AttemptRow.card_id == card_id)
        rows = s.scalars(query.order_by(AttemptRow.answered_at, AttemptRow.id)).all()
        return [
            StoredAttempt(
                id=r.id,
                user_id=r.user_id,
                session_id=r.session_id,
                card_id=r.card_id,
                topic=r.topic,
                kind=AttemptKind(r.kind),
                prompt=r.prompt,
                answer=r.answer,
                grade=_grade_from_json(r.grade, r.id),
                hints_used=r.hints_used,
                time_taken_s=r.time_taken_s,
                started_at=r.started_at,
                answered_at=r.answered_at,
                recorded_at=r.recorded_at,
            )
            for r in rows
        ]

    def attempts(
        self, user_id: int, session_id: str | None = None, *, card_id: str | None = None
    ) -> list[StoredAttempt]:
        """The user's attempts (optionally one session's or one card's), oldest first."""
        with self._reading() as s:
            return self._attempts(s, user_id, session_id, card_id)

    def count_attempts(self, user_id: int) -> int:
        with self._reading() as s:
            return int(s.scalar(select(func.count(AttemptRow.id)).where(AttemptRow.user_id == user_id)) or 0)

    # -- scheduling ----------------------------------------------------------------------------

    def card_state(self, user_id: int, card_id: str) -> fsrs.Card | None:
        with self._reading() as s:
            row = s.get(CardStateRow, (user_id, card_id))
            return None if row is None else _state_from_row(row)

    def card_states(self, user_id: int) -> dict[str, fsrs.Card]:
        with self._reading() as s:
            rows = s.scalars(select(CardStateRow).where(CardStateRow.user_id == user_id)).all()
            return {r.card_id: _state_from_row(r) for r in rows}

    def _put_state(self, s: Session, user_id: int, card_id: str, state: fsrs.Card | None) -> None:
        row = s.get(CardStateRow, (user_id, card_id), with_for_update=True)
        if state is None:
            if row is not None:
                s.delete(row)
            return
        if row is None:
            row = CardStateRow(user_id=user_id, card_id=card_id)
            s.add(row)
        row.state = int(state.state)
        row.step = state.step
        row.stability = state.stability
        row.difficulty = state.difficulty
        row.due = to_utc(state.due)
        row.last_review = to_utc(state.last_review) if state.last_review else None
        row.updated_at = self._clock()

    def finish_question(
        self, user_id: int, outcome: QuestionOutcome, rating: Rating | None, scheduler: CardScheduler
    ) -> Review:
        """Record how a card ended and, unless ``rating`` is None, review it with FSRS.

        Idempotent for a card already finished in that session, except with ``outcome.regrade``
        (an appeal changed the final grade): then the review is redone from the state before it.
        """

        def work(s: Session) -> Review:
            self._own_session(s, user_id, outcome.session_id)
            existing = s.scalars(
                select(OutcomeRow).where(
                    OutcomeRow.session_id == outcome.session_id, OutcomeRow.card_id == outcome.card_id
                )
            ).first()
            final = outcome.final
            score = final.score if final is not None and final.graded else None
            if existing is not None:
                if outcome.regrade and rating is not None:  # an ungraded appeal changes nothing
                    existing.final_score = score
                    existing.auto_rating = int(rating)
                    self._redo(s, existing, rating, scheduler, overridden=False)
                return _review(existing)
            state_row = s.get(CardStateRow, (user_id, outcome.card_id), with_for_update=True)
            before = _state_from_row(state_row) if state_row is not None else None
            after = None
            if rating is not None:
                after = scheduler.review(before, outcome.card_id, rating, outcome.finished_at)
                self._put_state(s, user_id, outcome.card_id, after)
            row = OutcomeRow(
                user_id=user_id,
                session_id=outcome.session_id,
                card_id=outcome.card_id,
                topic=outcome.topic,
                final_score=score,
                skipped=outcome.skipped,
                revealed=outcome.revealed_before_answer,
                hints_used=outcome.hints_used,
                rating=int(rating) if rating is not None else None,
                auto_rating=int(rating) if rating is not None else None,
                overridden=False,
                finished_at=outcome.finished_at,
                state_before=_state_to_json(before),
                state_after=_state_to_json(after),
            )
            s.add(row)
            s.flush()
            return _review(row)

        return self._write(work)

    def _redo(self, s: Session, row: OutcomeRow, rating: Rating, scheduler: CardScheduler, *, overridden: bool) -> None:
        """Undo ``row``'s review (back to its stored state before) and apply ``rating`` instead."""
        later = s.scalar(
            select(func.count(OutcomeRow.id)).where(
                OutcomeRow.user_id == row.user_id,
                OutcomeRow.card_id == row.card_id,
                OutcomeRow.id > row.id,
                OutcomeRow.rating.is_not(None),
            )
        )
        if later:
            raise ValueError("only the card's latest review can be re-rated")
        s.get(CardStateRow, (row.user_id, row.card_id), with_for_update=True)
        after = scheduler.review(_state_from_json(row.state_before), row.card_id, rating, row.finished_at)
        self._put_state(s, row.user_id, row.card_id, after)
        row.rating = int(rating)
        row.overridden = overridden
        row.state_after = _state_to_json(after)
        s.flush()

    def rerate(self, user_id: int, session_id: str, card_id: str, rating: Rating, scheduler: CardScheduler) -> Review:
        """The user's own rating for a card in a session: undo that review, apply ``rating``.

        Only the card's latest review can be re-rated (a later session already built on it).
        """

        def work(s: Session) -> Review:
            row = s.scalars(
                select(OutcomeRow).where(
                    OutcomeRow.user_id == user_id, OutcomeRow.session_id == session_id, OutcomeRow.card_id == card_id
                )
            ).first()
            if row is None:
                raise UnknownSession(f"card {card_id!r} was not finished in session {session_id!r}")
            self._redo(s, row, rating, scheduler, overridden=True)
            return _review(row)

        return self._write(work)

    def reviews(self, user_id: int, session_id: str | None = None) -> list[Review]:
        """Finished questions, oldest first."""
        with self._reading() as s:
            query = select(OutcomeRow).where(OutcomeRow.user_id == user_id)
            if session_id is not None:
                query = query.where(OutcomeRow.session_id == session_id)
            return [_review(r) for r in s.scalars(query.order_by(OutcomeRow.finished_at, OutcomeRow.id)).all()]

    def again_counts(self, user_id: int) -> dict[str, int]:
        """How many times each card was rated Again (drives leech detection)."""
        with self._reading() as s:
            rows = s.execute(
                select(OutcomeRow.card_id, func.count(OutcomeRow.id))
                .where(OutcomeRow.user_id == user_id, OutcomeRow.rating == int(Rating.Again))
                .group_by(OutcomeRow.card_id)
            ).all()
            return {card_id: int(n) for card_id, n in rows}


def _review(row: OutcomeRow) -> Review:
    return Review(
        id=row.id,
        session_id=row.session_id,
        card_id=row.card_id,
        topic=row.topic,
        rating=Rating(row.rating) if row.rating is not None else None,
        auto_rating=Rating(row.auto_rating) if row.auto_rating is not None else None,
        overridden=row.overridden,
        final_score=row.final_score,
        skipped=row.skipped,
        revealed=row.revealed,
        hints_used=row.hints_used,
        finished_at=row.finished_at,
        state_before=_state_from_json(row.state_before),
        state_after=_state_from_json(row.state_after),
    )
