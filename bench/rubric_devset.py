"""The offline grader on the TEAM-WRITTEN development set (bench/data/devset_interview.jsonl).

32 cards of the shipped notes × four answers written by the team (not candidates, not the hidden set of
issue 11): correct in the candidate's own words, thin but correct, a confident misconception, and a
keyword list. Prints the figures the issue tracks:

* correct: median score and the share reaching 6.5 (Good);
* misconception: median and the share below 4; thin-correct median; stuffed median;
* ordering: the share of cards where correct > thin > misconception, and the share of the three pairs
  (correct > thin, thin > misconception, correct > misconception) in the right order.

Runs against whatever ``bot`` is first on the path, so the same script measures ``main`` (no rubric:
``PYTHONPATH=/path/to/main python bench/rubric_devset.py``) and this branch. ``--no-rubric`` grades
without the compiled rubric on this branch too.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # appended: a PYTHONPATH checkout (e.g. main) wins
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bot.grading.base import GradeRequest  # noqa: E402
from bot.knowledge.notes import parse_file  # noqa: E402
from bot.settings import Settings  # noqa: E402

NOTES = ROOT / "knowledge" / "ml-interview-notes.txt"
DEVSET = ROOT / "bench" / "data" / "devset_interview.jsonl"


def load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEVSET.read_text(encoding="utf-8").splitlines() if line.strip()]


def grade_all(rows: list[dict[str, Any]], *, use_rubric: bool, grader: Any = None) -> list[float]:
    from bot.grading.offline.grader import OfflineGrader
    from bot.retrieval.embeddings import LocalEmbedder

    cards = {c.display_question: c for c in parse_file(NOTES, "notes") if c.has_answer}
    with_rubric = use_rubric and "rubric" in GradeRequest.model_fields
    reqs = []
    for row in rows:
        card = cards[row["question"]]
        extra: dict[str, Any] = {}
        if with_rubric:
            from bot.grading.rubric import compile_rubric

            extra["rubric"] = compile_rubric(card)
        reqs.append(GradeRequest(question=card.display_question, reference=card.answer, answer=row["answer"], **extra))
    grades = (grader or OfflineGrader(LocalEmbedder(Settings()))).grade_many(reqs)
    print(f"grader: offline, rubric: {'yes' if with_rubric else 'no'}, answers: {len(reqs)}")
    return [g.score if g.score is not None else float("nan") for g in grades]


def report(rows: list[dict[str, Any]], scores: list[float]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    per_card: dict[str, dict[str, float]] = {}
    for row, score in zip(rows, scores, strict=True):
        by.setdefault(row["kind"], []).append(score)
        per_card.setdefault(row["question"], {})[row["kind"]] = score
    correct, thin, wrong = by["correct"], by["thin"], by["misconception"]
    ordered = [c["correct"] > c["thin"] > c["misconception"] for c in per_card.values()]
    figures = {
        "correct median": statistics.median(correct),
        "correct >= 6.5 (%)": 100 * sum(s >= 6.5 for s in correct) / len(correct),
        "thin median": statistics.median(thin),
        "misconception median": statistics.median(wrong),
        "misconception < 4 (%)": 100 * sum(s < 4 for s in wrong) / len(wrong),
        "stuffed median": statistics.median(by["stuffed"]),
        "ordering correct > thin > misconception (%)": 100 * sum(ordered) / len(ordered),
        "pairwise ordering, 3 pairs per card (%)": 100
        * sum(
            (c["correct"] > c["thin"]) + (c["thin"] > c["misconception"]) + (c["correct"] > c["misconception"])
            for c in per_card.values()
        )
        / (3 * len(per_card)),
        "correct > misconception (%)": 100
        * sum(c["correct"] > c["misconception"] for c in per_card.values())
        / len(per_card),
    }
    for name, value in figures.items():
        print(f"  {name:45s} {value:6.1f}")
    return figures


if __name__ == "__main__":
    data = load()
    print(f"team-written development set: {len(data)} answers, {len({r['question'] for r in data})} cards")
    report(data, grade_all(data, use_rubric="--no-rubric" not in sys.argv))
