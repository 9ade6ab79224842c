"""The ``interview eval --report`` output: a Markdown report and a scatter plot next to it."""

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

__all__ = ["scatter_svg", "write_report"]


def _cell(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return html.escape(text, quote=False).replace("|", "\\|")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def scatter_svg(human: Sequence[float], grader: Sequence[float], *, seed: int = 0, size: int = 420) -> str:
    """Human (x) vs grader (y), both 0–1, with a little jitter, ticks and the diagonal."""
    margin, plot = 48, size - 68
    rng = np.random.default_rng(seed)
    h = np.clip(np.asarray(human, dtype=float) + rng.uniform(-0.015, 0.015, len(human)), 0, 1)
    g = np.clip(np.asarray(grader, dtype=float) + rng.uniform(-0.008, 0.008, len(grader)), 0, 1)

    def sx(v: float) -> float:
        return margin + v * plot

    def sy(v: float) -> float:
        return 20 + (1 - v) * plot

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" font-family="sans-serif" font-size="11">',
        f'<rect width="{size}" height="{size}" fill="white"/>',
        f'<rect x="{sx(0)}" y="{sy(1)}" width="{plot}" height="{plot}" fill="none" stroke="#444"/>',
    ]
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<line x1="{sx(t):.1f}" y1="{sy(0)}" x2="{sx(t):.1f}" y2="{sy(0) + 5}" stroke="#444"/>')
        parts.append(f'<text x="{sx(t):.1f}" y="{sy(0) + 17}" text-anchor="middle">{t:g}</text>')
        parts.append(f'<line x1="{sx(0) - 5}" y1="{sy(t):.1f}" x2="{sx(0)}" y2="{sy(t):.1f}" stroke="#444"/>')
        parts.append(f'<text x="{sx(0) - 8}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    parts.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" stroke="#c33" stroke-dasharray="4 3"/>')
    parts.extend(
        f'<circle cx="{sx(float(x)):.1f}" cy="{sy(float(y)):.1f}" r="2.5" fill="#1f5fa8" fill-opacity="0.35"/>'
        for x, y in zip(h, g, strict=True)
    )
    parts.append(f'<text x="{sx(0.5)}" y="{size - 8}" text-anchor="middle">human score (0–1)</text>')
    parts.append(
        f'<text x="12" y="{sy(0.5)}" text-anchor="middle" '
        f'transform="rotate(-90 12 {sy(0.5)})">grader score (0–1)</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_report(path: str | Path, examples: Sequence[Example], grades: Sequence[Grade], metrics: Metrics) -> Path:
    """Write a Markdown report and ``<name>.svg`` (scatter plot) next to it; returns the report path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    idx, h, p = graded_pairs(examples, grades)
    svg_path = path.with_suffix(".svg")
    svg_path.write_text(scatter_svg(h.tolist(), p.tolist()), encoding="utf-8")

    title = f"Grader evaluation: {metrics.dataset or 'dataset'}" + (f" / {metrics.split}" if metrics.split else "")
    lines = [f"# {title}", "", "## Summary", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in metrics.as_dict().items()]
    lines += [
        "",
        "Scores compared on a 0–1 scale (human `score / score_max`, grader `score / 10`). Ungraded answers "
        "are excluded from every metric. Calibrated errors: isotonic regression fitted on other questions "
        "(grouped 5-fold by question).",
        "",
        f"![scatter]({svg_path.name})",
        "",
    ]
    reasons = Counter(grades[i].ungraded_reason for i in range(len(grades)) if not grades[i].graded)
    if reasons:
        lines += ["## Ungraded", "", "| reason | count |", "|---|---|"]
        lines += [f"| {_cell(r, 120)} | {c} |" for r, c in reasons.most_common()]
        lines.append("")

    by_q: dict[str, list[int]] = {}
    for pos, i in enumerate(idx):
        by_q.setdefault(examples[i].question_id, []).append(pos)
    rows = []
    for qid, members in by_q.items():
        hq, pq = h[members], p[members]
        mae = float(np.mean(np.abs(hq - pq)))
        rows.append((mae, qid, len(members), float(hq.mean()), float(pq.mean()), pearson(hq, pq)))
    rows.sort(key=lambda r: (-r[0], r[1]))
    lines += [
        "## Per question (worst mean absolute error first)",
        "",
        "| question | n | mean human | mean grader | MAE | Pearson |",
        "|---|---|---|---|---|---|",
    ]
    first_question = {examples[i].question_id: examples[i].question for i in idx}
    for mae, qid, n, mh, mp, r in rows:
        label = f"{_cell(qid, 40)}: {_cell(first_question[qid], 80)}"
        lines.append(f"| {label} | {n} | {mh:.3f} | {mp:.3f} | {mae:.3f} | {_fmt(r)} |")
    lines.append("")

    order = np.argsort(-np.abs(h - p), kind="mergesort")[:10]
    lines += [
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
    lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
