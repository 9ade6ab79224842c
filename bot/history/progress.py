"""Progress: readiness per topic, activity per day, streak, weakest cards; figures and renderers.

:func:`compute_stats` is pure (history rows in, :class:`Stats` out; clock and time zone are
parameters). Plotly figures for the web app's Progress view, rich tables for ``interview stats``
and Markdown for reports are built from a :class:`Stats`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from statistics import fmean
from typing import TYPE_CHECKING, Any

import fsrs
from fsrs import Rating

from bot.knowledge.cards import Card
from bot.practice.attempts import AttemptKind
from bot.practice.schedule import CardScheduler, Leech, RatingThresholds, find_leeches, to_utc

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from rich.console import Console, RenderableType

    from bot.history.records import Review, StoredAttempt
    from bot.history.repository import History
    from bot.settings import Settings

__all__ = [
    "DayActivity",
    "Stats",
    "TopicReadiness",
    "WeakCard",
    "activity_figure",
    "compute_stats",
    "print_stats",
    "readiness_figure",
    "stats_for",
    "stats_markdown",
    "stats_renderables",
    "stats_with_settings",
    "streak",
    "weakest_figure",
]

RECENT = 3  # graded attempts averaged per card for "recent score"


@dataclass(frozen=True)
class TopicReadiness:
    """Mean FSRS recall probability of a topic's cards right now (new cards count as 0)."""

    topic: str
    cards: int
    reviewed: int
    due: int
    readiness: float


@dataclass(frozen=True)
class DayActivity:
    day: date
    attempts: int
    graded: int
    mean_score: float | None


@dataclass(frozen=True)
class WeakCard:
    """One practised card and how it is going."""

    card_id: str
    question: str
    topic: str
    attempts: int
    last_score: float | None
    recent_score: float | None  # mean of the last few graded answers
    failures: int  # times rated Again
    last_rating: str | None
    retrievability: float
    leech: bool
    weak: bool


@dataclass(frozen=True)
class Stats:
    user: str
    generated_at: datetime
    attempts: int
    graded: int
    mean_score: float | None
    sessions: int
    streak: int
    practised_today: bool
    due_now: int
    new_cards: int
    topics: list[TopicReadiness] = field(default_factory=list)
    days: list[DayActivity] = field(default_factory=list)
    cards: list[WeakCard] = field(default_factory=list)  # every practised card, weakest first
    leeches: list[Leech] = field(default_factory=list)

    def weakest(self, n: int = 10) -> list[WeakCard]:
        return [c for c in self.cards if c.weak][:n]

    @property
    def readiness(self) -> float:
        """Overall readiness: the card-weighted mean of the topics'."""
        total = sum(t.cards for t in self.topics)
        return sum(t.readiness * t.cards for t in self.topics) / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["generated_at"] = self.generated_at.isoformat()
        data["readiness"] = round(self.readiness, 4)
        data["days"] = [{**d, "day": d["day"].isoformat()} for d in data["days"]]
        return data


def streak(active_days: Iterable[date], today: date) -> int:
    """Consecutive days with practice, ending today or yesterday (else 0)."""
    days = set(active_days)
    start = today if today in days else today - timedelta(days=1)
    count = 0
    while start - timedelta(days=count) in days:
        count += 1
    return count


def _topic_readiness(
    topic_of: Mapping[str, str], states: Mapping[str, fsrs.Card], scheduler: CardScheduler, now: datetime
) -> list[TopicReadiness]:
    """Readiness per topic: the mean recall probability of its cards at ``now``, by topic name."""
    by_topic: dict[str, list[str]] = defaultdict(list)
    for card_id, topic in topic_of.items():
        by_topic[topic].append(card_id)
    topics = []
    for topic, ids in sorted(by_topic.items()):
        recall = [scheduler.retrievability(states.get(i), now) for i in ids]
        topics.append(
            TopicReadiness(
                topic=topic,
                cards=len(ids),
                reviewed=sum(i in states for i in ids),
                due=sum(i in states and to_utc(states[i].due) <= now for i in ids),
                readiness=fmean(recall) if recall else 0.0,
            )
        )
    return topics


def _practice_by_day(attempts: Iterable[StoredAttempt], tz: tzinfo) -> dict[date, list[StoredAttempt]]:
    """Attempts that practised something (not skips), by their local day."""
    per_day: dict[date, list[StoredAttempt]] = defaultdict(list)
    for a in attempts:
        if a.kind is not AttemptKind.SKIP:
            per_day[a.answered_at.astimezone(tz).date()].append(a)
    return per_day


def _daily_activity(per_day: Mapping[date, Sequence[StoredAttempt]], today: date, max_days: int) -> list[DayActivity]:
    """One row per day from the first practice (at most ``max_days`` back) to today, quiet days included."""
    if not per_day:
        return []
    first = max(min(per_day), today - timedelta(days=max_days - 1))
    days = []
    for offset in range((today - first).days + 1):
        day = first + timedelta(days=offset)
        tries = per_day.get(day, [])
        day_scores = [a.score for a in tries if a.score is not None]
        days.append(
            DayActivity(
                day=day,
                attempts=len(tries),
                graded=len(day_scores),
                mean_score=round(fmean(day_scores), 2) if day_scores else None,
            )
        )
    return days


@dataclass(frozen=True)
class _CardNames:
    """Each card's topic and question: the notes', else (no notes at hand) the history's own."""

    topic_of: dict[str, str]
    question_of: dict[str, str]

    @classmethod
    def of(cls, cards: Sequence[Card], attempts: Sequence[StoredAttempt]) -> _CardNames:
        topic_of = {c.id: c.topic for c in cards}
        question_of = {c.id: c.display_question for c in cards}
        if not cards:
            for a in attempts:
                topic_of.setdefault(a.card_id, a.topic)
                question_of.setdefault(a.card_id, a.prompt)
        return cls(topic_of, question_of)


def _card_standings(
    *,
    cards: Sequence[Card],
    names: _CardNames,
    attempts: Sequence[StoredAttempt],
    reviews: Sequence[Review],
    states: Mapping[str, fsrs.Card],
    scheduler: CardScheduler,
    now: datetime,
    thresholds: RatingThresholds,
    leech_threshold: int,
) -> tuple[list[WeakCard], list[Leech]]:
    """Every practised card, weakest first, and the leeches among them."""
    failures: dict[str, int] = defaultdict(int)
    last_rating: dict[str, Rating | None] = {}
    for r in reviews:
        if r.rating is Rating.Again:
            failures[r.card_id] += 1
        if r.rating is not None:
            last_rating[r.card_id] = r.rating
    leeches = find_leeches(failures, leech_threshold, {c.id: c for c in cards})
    leech_ids = {leech.card_id for leech in leeches}
    per_card: dict[str, list[StoredAttempt]] = defaultdict(list)
    for a in attempts:
        if a.kind is not AttemptKind.FOLLOW_UP:
            per_card[a.card_id].append(a)
    standings = []
    for card_id, tries in per_card.items():
        graded = [a.score for a in tries if a.score is not None]
        recent = fmean(graded[-RECENT:]) if graded else None
        rating = last_rating.get(card_id)
        weak = (
            card_id in leech_ids
            or rating in (Rating.Again, Rating.Hard)
            or (recent is not None and recent < thresholds.hard_below)
        )
        standings.append(
            WeakCard(
                card_id=card_id,
                question=names.question_of.get(card_id, tries[-1].prompt),
                topic=names.topic_of.get(card_id, tries[-1].topic),
                attempts=len(tries),
                last_score=graded[-1] if graded else None,
                recent_score=round(recent, 2) if recent is not None else None,
                failures=failures.get(card_id, 0),
                last_rating=rating.name if rating is not None else None,
                retrievability=round(scheduler.retrievability(states.get(card_id), now), 4),
                leech=card_id in leech_ids,
                weak=weak,
            )
        )
    standings.sort(
        key=lambda c: (not c.weak, c.recent_score if c.recent_score is not None else -1.0, -c.failures, c.card_id)
    )
    return standings, leeches


def compute_stats(
    *,
    user: str,
    cards: Sequence[Card],
    attempts: Sequence[StoredAttempt],
    reviews: Sequence[Review],
    states: Mapping[str, fsrs.Card],
    scheduler: CardScheduler,
    now: datetime,
    thresholds: RatingThresholds | None = None,
    leech_threshold: int = 6,
    tz: tzinfo = UTC,
    sessions: int = 0,
    max_days: int = 90,
) -> Stats:
    """Everything ``interview stats`` and the Progress view show, from one user's history."""
    now = to_utc(now)
    today = now.astimezone(tz).date()
    names = _CardNames.of(cards, attempts)
    per_day = _practice_by_day(attempts, tz)
    scores = [a.score for a in attempts if a.score is not None]
    standings, leeches = _card_standings(
        cards=cards,
        names=names,
        attempts=attempts,
        reviews=reviews,
        states=states,
        scheduler=scheduler,
        now=now,
        thresholds=thresholds or RatingThresholds(),
        leech_threshold=leech_threshold,
    )
    known = set(names.topic_of)
    return Stats(
        user=user,
        generated_at=now,
        attempts=sum(len(day) for day in per_day.values()),
        graded=len(scores),
        mean_score=round(fmean(scores), 2) if scores else None,
        sessions=sessions,
        streak=streak(per_day, today),
        practised_today=today in per_day,
        due_now=sum(1 for i, s in states.items() if i in known and to_utc(s.due) <= now),
        new_cards=sum(1 for i in known if i not in states),
        topics=_topic_readiness(names.topic_of, states, scheduler, now),
        days=_daily_activity(per_day, today, max_days),
        cards=standings,
        leeches=leeches,
    )


def stats_for(
    history: History,
    user: str,
    cards: Sequence[Card],
    scheduler: CardScheduler,
    now: datetime,
    *,
    thresholds: RatingThresholds | None = None,
    leech_threshold: int = 6,
    tz: tzinfo = UTC,
) -> Stats:
    """:func:`compute_stats` for one user of a :class:`~bot.history.repository.History` (empty if unknown)."""
    uid = history.user_id(user)
    return compute_stats(
        user=user,
        cards=cards,
        attempts=history.attempts(uid) if uid is not None else [],
        reviews=history.reviews(uid) if uid is not None else [],
        states=history.card_states(uid) if uid is not None else {},
        scheduler=scheduler,
        now=now,
        thresholds=thresholds,
        leech_threshold=leech_threshold,
        tz=tz,
        sessions=len(history.sessions(uid)) if uid is not None else 0,
    )


def stats_with_settings(
    history: History, user: str, cards: Sequence[Card], settings: Settings, now: datetime, *, tz: tzinfo = UTC
) -> Stats:
    """:func:`stats_for` with the scheduler, rating thresholds and leech threshold the settings give."""
    return stats_for(
        history,
        user,
        cards,
        CardScheduler.from_settings(settings),
        now,
        thresholds=RatingThresholds.from_settings(settings),
        leech_threshold=settings.leech_threshold,
        tz=tz,
    )


# --------------------------------------------------------------------------- figures


def readiness_figure(stats: Stats) -> go.Figure:
    """Horizontal bars: readiness per topic (0–100 %)."""
    import plotly.graph_objects as go

    topics = sorted(stats.topics, key=lambda t: t.readiness)
    fig = go.Figure(
        go.Bar(
            x=[round(100 * t.readiness, 1) for t in topics],
            y=[t.topic for t in topics],
            orientation="h",
            text=[f"{100 * t.readiness:.0f}% · {t.reviewed}/{t.cards} cards" for t in topics],
            textposition="auto",
            marker_color="#4c78a8",
        )
    )
    fig.update_layout(
        title="Readiness by topic",
        xaxis={"title": "predicted recall (%)", "range": [0, 100]},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=max(240, 40 * len(topics) + 80),
    )
    return fig


def activity_figure(stats: Stats) -> go.Figure:
    """Attempts per day (bars) and mean score per day (line, right axis)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    days = [d.day.isoformat() for d in stats.days]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(x=days, y=[d.attempts for d in stats.days], name="attempts", marker_color="#9ecae9"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=days,
            y=[d.mean_score for d in stats.days],
            name="mean score",
            mode="lines+markers",
            connectgaps=True,
            line={"color": "#e45756"},
        ),
        secondary_y=True,
    )
    fig.update_layout(title=f"Practice per day (streak: {stats.streak})", margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_yaxes(title_text="attempts", secondary_y=False)
    fig.update_yaxes(title_text="mean score", range=[0, 10], secondary_y=True)
    return fig


def weakest_figure(stats: Stats, n: int = 10) -> go.Figure:
    """The weakest cards by recent score."""
    import plotly.graph_objects as go

    weak = list(reversed(stats.weakest(n)))
    fig = go.Figure(
        go.Bar(
            x=[c.recent_score if c.recent_score is not None else 0 for c in weak],
            y=[_short(c.question, 60) for c in weak],
            orientation="h",
            text=[f"{c.failures}× Again" + (" · leech" if c.leech else "") for c in weak],
            textposition="auto",
            marker_color=["#e45756" if c.leech else "#f58518" for c in weak],
        )
    )
    fig.update_layout(
        title="Weakest cards (recent score)",
        xaxis={"title": "score", "range": [0, 10]},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=max(240, 32 * len(weak) + 80),
    )
    return fig


# --------------------------------------------------------------------------- text


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def stats_renderables(stats: Stats, *, days: int = 14, weakest: int = 10) -> list[RenderableType]:
    """Rich tables for ``interview stats``."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    summary = Text.assemble(
        (f"{stats.user}: ", "bold"),
        f"{stats.attempts} answers in {stats.sessions} sessions, mean score {_score(stats.mean_score)}, ",
        f"streak {stats.streak} day(s){'' if stats.practised_today else ' (not yet today)'}, ",
        f"readiness {_pct(stats.readiness)}, {stats.due_now} due now, {stats.new_cards} new.",
    )
    topics = Table(title="Readiness by topic")
    for name, justify in (("topic", "left"), ("cards", "right"), ("reviewed", "right"), ("due", "right")):
        topics.add_column(name, justify=justify)  # type: ignore[arg-type]
    topics.add_column("readiness", justify="right")
    for t in stats.topics:
        topics.add_row(escape(t.topic), str(t.cards), str(t.reviewed), str(t.due), _pct(t.readiness))
    activity = Table(title=f"Last {days} days")
    activity.add_column("day")
    activity.add_column("answers", justify="right")
    activity.add_column("mean score", justify="right")
    for d in stats.days[-days:]:
        activity.add_row(d.day.isoformat(), str(d.attempts), _score(d.mean_score))
    weak = Table(title="Weakest cards")
    weak.add_column("question")
    weak.add_column("topic")
    weak.add_column("recent", justify="right")
    weak.add_column("Again", justify="right")
    weak.add_column("recall", justify="right")
    for c in stats.weakest(weakest):
        weak.add_row(
            escape(_short(c.question, 60)) + (" (leech)" if c.leech else ""),
            escape(c.topic),
            _score(c.recent_score),
            str(c.failures),
            _pct(c.retrievability),
        )
    out: list[RenderableType] = [summary, topics]
    if stats.days:
        out.append(activity)
    if stats.weakest(weakest):
        out.append(weak)
    out.extend(Text(f"Leech: {leech.suggestion}", style="yellow") for leech in stats.leeches)
    return out


def print_stats(stats: Stats, console: Console) -> None:
    for item in stats_renderables(stats):
        console.print(item)


def _md_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def stats_markdown(stats: Stats, *, days: int = 14, weakest: int = 10) -> str:
    """The same as Markdown (reports, the web app)."""
    lines = [
        f"**{stats.attempts}** answers in **{stats.sessions}** sessions · mean score **{_score(stats.mean_score)}**"
        f" · streak **{stats.streak}** day(s) · readiness **{_pct(stats.readiness)}**"
        f" · {stats.due_now} due now · {stats.new_cards} new",
        "",
        "| topic | cards | reviewed | due | readiness |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {_md_cell(t.topic)} | {t.cards} | {t.reviewed} | {t.due} | {_pct(t.readiness)} |" for t in stats.topics
    ]
    if stats.days:
        lines += ["", "| day | answers | mean score |", "|---|---:|---:|"]
        lines += [f"| {d.day.isoformat()} | {d.attempts} | {_score(d.mean_score)} |" for d in stats.days[-days:]]
    if stats.weakest(weakest):
        lines += ["", "| weakest cards | topic | recent score | Again | recall |", "|---|---|---:|---:|---:|"]
        lines += [
            f"| {_md_cell(c.question)}{' (leech)' if c.leech else ''} | {_md_cell(c.topic)} | "
            f"{_score(c.recent_score)} | {c.failures} | {_pct(c.retrievability)} |"
            for c in stats.weakest(weakest)
        ]
    if stats.leeches:
        lines += [""] + [f"- **Leech:** {leech.suggestion}" for leech in stats.leeches]
    return "\n".join(lines) + "\n"
