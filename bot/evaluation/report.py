"""The ``interview eval --report`` output: a Markdown report and a scatter plot next to it.

The report is Markdown (``<name>.md``: read in an editor or a repository viewer). The scatter plot is
a Plotly figure in ``<stem>.scatter.html`` with plotly.js written inline, so it opens offline in any browser
with zoom and per-point hover (question, answer, both scores); the Markdown links to it.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.evaluation.datasets import Example
from bot.evaluation.metrics import Metrics, graded_pairs, pearson
from bot.grading.base import Grade

__all__ = ["scatter_figure", "write_report"]

JITTER = (0.015, 0.008)  # human (x), grader (y): spreads the points that share a score level


def _shorten(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cell(text: str, limit: int) -> str:
    return html.escape(_shorten(text, limit), quote=False).replace("|", "\\|")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _hover(example: Example, human: float, grader: float) -> str:
    """Plain text for a point's hover box; plotly reads ``<br>`` and entities, so the text is escaped."""
    lines = (
        f"{_shorten(example.question_id, 40)}: {_shorten(example.question, 90)}",
        _shorten(example.student_answer, 160),
        f"human {human:.2f}  grader {grader:.2f}",
    )
    return "<br>".join(html.escape(line) for line in lines)


def scatter_figure(
    human: Sequence[float], grader: Sequence[float], hover: Sequence[str] | None = None, *, seed: int = 0
) -> Any:
    """A Plotly scatter of human (x) vs grader (y), both 0–1, with a little seeded jitter and the diagonal."""
    import plotly.graph_objects as go

    rng = np.random.default_rng(seed)
    h = np.clip(np.asarray(human, dtype=float) + rng.uniform(-JITTER[0], JITTER[0], len(human)), 0, 1)
    g = np.clip(np.asarray(grader, dtype=float) + rng.uniform(-JITTER[1], JITTER[1], len(grader)), 0, 1)
    fig = go.Figure(
        [
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                name="agreement",
                line={"color": "#c33", "dash": "dash"},
                hoverinfo="skip",
            ),
            go.Scatter(
                x=h,
                y=g,
                mode="markers",
                name="answers",
                marker={"color": "#1f5fa8", "opacity": 0.35, "size": 6},
                text=list(hover) if hover is not None else None,
                hoverinfo="text" if hover is not None else "x+y",
            ),
        ]
    )
    fig.update_layout(
        xaxis={"title": "human score (0–1)", "range": [-0.03, 1.03]},
        yaxis={"title": "grader score (0–1)", "range": [-0.03, 1.03], "scaleanchor": "x"},
        width=640,
        height=600,
        showlegend=False,
        margin={"l": 60, "r": 20, "t": 40, "b": 50},
    )
    return fig


def _write_scatter(
    path: Path, examples: Sequence[Example], idx: Sequence[int], h: np.ndarray, p: np.ndarray, title: str
) -> None:
    hover = [_hover(examples[i], float(hv), float(pv)) for i, hv, pv in zip(idx, h, p, strict=True)]
    fig = scatter_figure(h.tolist(), p.tolist(), hover)
    fig.update_layout(title={"text": title, "font": {"size": 13}})
    # plotly.js inline (no CDN): the page works offline and on its own.
    fig.write_html(path, include_plotlyjs=True, full_html=True, config={"displaylogo": False})


def _per_question_lines(examples: Sequence[Example], idx: Sequence[int], h: np.ndarray, p: np.ndarray) -> list[str]:
    by_q: dict[str, list[int]] = {}
    for pos, i in enumerate(idx):
        by_q.setdefault(examples[i].question_id, []).append(pos)
    rows = []
    for qid, members in by_q.items():
        hq, pq = h[members], p[members]
        mae = float(np.mean(np.abs(hq - pq)))
        rows.append((mae, qid, len(members), float(hq.mean()), float(pq.mean()), pearson(hq, pq)))
    rows.sort(key=lambda r: (-r[0], r[1]))
    lines = [
        "## Per question (worst mean absolute error first)",
        "",
        "| question | n | mean human | mean grader | MAE | Pearson |",
        "|---|---|---|---|---|---|",
    ]
    first_question = {examples[i].question_id: examples[i].question for i in idx}
    for mae, qid, n, mh, mp, r in rows:
        label = f"{_cell(qid, 40)}: {_cell(first_question[qid], 80)}"
        lines.append(f"| {label} | {n} | {mh:.3f} | {mp:.3f} | {mae:.3f} | {_fmt(r)} |")
    return [*lines, ""]


def _worst_lines(
    examples: Sequence[Example], grades: Sequence[Grade], idx: Sequence[int], h: np.ndarray, p: np.ndarray
) -> list[str]:
    order = np.argsort(-np.abs(h - p), kind="mergesort")[:10]
    lines = [
        "## 10 worst disagreements",
        "",
        "| question | student answer | human | grader | grader feedback |",
        "|---|---|---|---|---|",
    ]
    for pos in order.tolist():
        ex, gr = examples[idx[pos]], grades[idx[pos]]
        lines.append(
            f"| {_cell(ex.question, 90)} | {_cell(ex.student_answer, 160)} | {h[pos]:.2f} | {p[pos]:.2f} "
            f"| {_cell(gr.feedback, 200)} |"
        )
    return [*lines, ""]


def write_report(path: str | Path, examples: Sequence[Example], grades: Sequence[Grade], metrics: Metrics) -> Path:
    """Write a Markdown report and ``<stem>.scatter.html`` (the scatter plot, offline) next to it;
    returns the report path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    idx, h, p = graded_pairs(examples, grades)
    title = f"Grader evaluation: {metrics.dataset or 'dataset'}" + (f" / {metrics.split}" if metrics.split else "")
    plot_path = path.with_name(path.stem + ".scatter.html")
    _write_scatter(plot_path, examples, idx, h, p, title)

    lines = [f"# {title}", "", "## Summary", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in metrics.as_dict().items()]
    lines += [
        "",
        "Scores compared on a 0–1 scale (human `score / score_max`, grader `score / 10`). Ungraded answers "
        "are excluded from every metric. Calibrated errors: isotonic regression fitted on other questions "
        "(grouped 5-fold by question).",
        "",
        f"Scatter plot, human vs grader score (opens offline in a browser): [{plot_path.name}]({plot_path.name})",
        "",
    ]
    reasons = Counter(grades[i].ungraded_reason for i in range(len(grades)) if not grades[i].graded)
    if reasons:
        lines += ["## Ungraded", "", "| reason | count |", "|---|---|"]
        lines += [f"| {_cell(r, 120)} | {c} |" for r, c in reasons.most_common()]
        lines.append("")
    lines += _per_question_lines(examples, idx, h, p)
    lines += _worst_lines(examples, grades, idx, h, p)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
