"""The end-of-session report: overall score, per-topic averages, weakest questions, Markdown, chart.

Framework-free. Scoring rules, stated in the report itself:
* a question's score is its final grade (follow-ups, retries and appeals replace the first one);
* a skipped question counts as 0 — in an interview, a pass is a miss;
* an ungraded answer (the grader failed) is left out of every average, never counted as 0;
* questions never reached (the session ended early) are not part of the report.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.adapters.views import quote, source_line
from bot.grading.base import BANDS, Grade
from bot.knowledge.cards import Card

if TYPE_CHECKING:
    from bot.practice.session import InterviewSession

__all__ = ["ReportItem", "SessionReport", "TopicScore", "build_report", "report_figure", "report_md"]

WEAKEST = 3


@dataclass(frozen=True)
class ReportItem:
    card: Card
    number: int
    final: Grade | None
    skipped: bool
    hints_used: int
    attempts: int
    follow_ups: int
    missed: tuple[str, ...]
    answer: str

    @property
    def score(self) -> float | None:
        """What this question contributes: the final score, 0 when skipped, None when ungraded."""
        if self.skipped and (self.final is None or not self.final.graded):
            return 0.0
        if self.final is None or not self.final.graded:
            return None
        return self.final.score


@dataclass(frozen=True)
class TopicScore:
    topic: str
    average: float | None
    questions: int
    counted: int


@dataclass(frozen=True)
class SessionReport:
    session_id: str
    mode: str
    grader: str
    started_at: datetime
    finished_at: datetime | None
    items: tuple[ReportItem, ...]
    total_planned: int

    @property
    def counted(self) -> list[ReportItem]:
        return [i for i in self.items if i.score is not None]

    @property
    def overall(self) -> float | None:
        scores = [i.score for i in self.items if i.score is not None]
        return round(statistics.fmean(scores), 1) if scores else None

    @property
    def per_topic(self) -> list[TopicScore]:
        topics: dict[str, list[ReportItem]] = {}
        for item in self.items:
            topics.setdefault(item.card.topic, []).append(item)
        out = []
        for topic, items in topics.items():
            scores = [i.score for i in items if i.score is not None]
            avg = round(statistics.fmean(scores), 1) if scores else None
            out.append(TopicScore(topic=topic, average=avg, questions=len(items), counted=len(scores)))
        return sorted(out, key=lambda t: (t.average is None, t.average if t.average is not None else 0.0, t.topic))

    @property
    def weakest(self) -> list[ReportItem]:
        scored = [i for i in self.items if i.score is not None and i.score < BANDS.excellent]
        return sorted(scored, key=lambda i: (i.score or 0.0, i.number))[:WEAKEST]


def build_report(session: InterviewSession) -> SessionReport:
    items = []
    for q in session.questions:
        if not q.attempts:
            continue  # never reached or never answered (ended early)
        items.append(
            ReportItem(
                card=q.card,
                number=q.number,
                final=q.final,
                skipped=q.passed,
                hints_used=len(q.hints),
                attempts=len(q.attempts),
                follow_ups=len(q.follow_ups),
                missed=tuple(q.missed_points()),
                answer="\n\n".join(q.answers),
            )
        )
    return SessionReport(
        session_id=session.id,
        mode=session.config.mode.value,
        grader=session.grader_name,
        started_at=session.started_at,
        finished_at=session.finished_at,
        items=tuple(items),
        total_planned=session.total,
    )


def _fmt(score: float | None) -> str:
    return "—" if score is None else f"{score:.1f}"


def _reference(card: Card) -> str:
    if not card.has_answer:
        return f"_Your notes have no answer for this question ({source_line(card)})._"
    return f"From your notes ({source_line(card)}):\n\n{quote(card.answer)}"


def report_md(report: SessionReport, *, title: str = "Session report") -> str:
    """The whole report as Markdown: shown in the chat and offered as a download."""
    lines = [f"# {title}", ""]
    answered = len(report.items)
    lines.append(
        f"**Overall: {_fmt(report.overall)}/10** · {answered} of {report.total_planned} questions · "
        f"{report.mode} mode · graded by {report.grader}"
    )
    skipped = sum(i.skipped for i in report.items)
    ungraded = sum(i.score is None for i in report.items)
    notes = []
    if skipped:
        notes.append(f"{skipped} skipped (counted as 0)")
    if ungraded:
        notes.append(f"{ungraded} ungraded (grader failed; left out of the averages)")
    if notes:
        lines += ["", "_" + "; ".join(notes) + "._"]
    if not report.items:
        lines += ["", "No question was answered in this session."]
        return "\n".join(lines)
    lines += ["", "## By topic", "", "| Topic | Average | Questions |", "|---|---:|---:|"]
    lines += [f"| {t.topic} | {_fmt(t.average)} | {t.questions} |" for t in report.per_topic]
    lines += ["", "## Questions", "", "| # | Question | Score | Band | Hints |", "|---:|---|---:|---|---:|"]
    for i in report.items:
        band = "skipped" if i.skipped else (i.final.band.value if i.final and i.final.band else "ungraded")
        q = i.card.display_question.replace("|", "\\|")
        lines.append(f"| {i.number} | {q} | {_fmt(i.score)} | {band} | {i.hints_used} |")
    if report.weakest:
        lines += ["", "## Weakest questions", ""]
        for i in report.weakest:
            lines += [f"### {i.number}. {i.card.display_question} — {_fmt(i.score)}/10", ""]
            if i.missed:
                lines += ["**What was missed:**", *(f"- {p}" for p in i.missed), ""]
            if i.final is not None and i.final.feedback:
                lines += [f"**Feedback:** {i.final.feedback}", ""]
            lines += [_reference(i.card), ""]
    if report.mode == "interview":
        rest = [i for i in report.items if i not in report.weakest]
        if rest:
            lines += ["", "## Reference answers", ""]
            for i in rest:
                lines += [f"### {i.number}. {i.card.display_question}", "", _reference(i.card), ""]
    return "\n".join(lines).rstrip() + "\n"


def report_figure(report: SessionReport) -> Any:
    """A Plotly bar chart of per-topic averages (0–10) with question counts."""
    import plotly.graph_objects as go

    topics = [t for t in report.per_topic if t.average is not None]
    fig = go.Figure(
        go.Bar(
            x=[t.average for t in topics],
            y=[t.topic for t in topics],
            orientation="h",
            text=[f"{t.average:.1f} ({t.questions} q)" for t in topics],
            textposition="auto",
            marker_color=[_colour(t.average or 0.0) for t in topics],
        )
    )
    fig.update_layout(
        title=f"Average score by topic (overall {_fmt(report.overall)}/10)",
        xaxis={"range": [0, 10], "title": "score"},
        yaxis={"automargin": True},
        height=120 + 40 * max(1, len(topics)),
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
    )
    return fig


def _colour(score: float) -> str:
    if score >= BANDS.good:
        return "#2e7d32"
    if score >= BANDS.partial:
        return "#f9a825"
    return "#c62828"
