"""The team-written gold calibration set and the simulated-candidate ordering check."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.evaluation.metrics import pearson as ev_pearson
from bot.evaluation.metrics import spearman as ev_spearman
from bot.evaluation.simulate import CHECKS, KINDS, SimulationReport, build_candidates, simulate
from bot.grading.base import GradeRequest
from bot.knowledge.cards import Card
from bot.knowledge.notes import parse_file

ROOT = Path(__file__).resolve().parents[1]
GOLD = ROOT / "eval" / "gold.jsonl"
NOTES = ROOT / "knowledge" / "ml-interview-notes.txt"
FIELDS = {
    "question",
    "reference_answer",
    "student_answer",
    "score",
    "score_max",
    "kind",
    "reason",
    "card_id",
    "question_id",
    "split",
}
SCORE_RANGES = {
    "correct": (8, 10),
    "partial": (4, 6),
    "wrong": (0, 2),
    "stuffed": (0, 3),
    "injection": (0, 6),
    "empty": (0, 0),
}
# Measured on 2026-11-23 with the offline grader (params v in bot/grading/offline/params.json):
# gold Pearson 0.447 (Spearman 0.469, MAE 2.68); simulation on 10 cards, seed 0: 0.983.
# Floors are the measurement minus 0.1.
GOLD_PEARSON_FLOOR = 0.35
SIM_ACCURACY_FLOOR = 0.88


@pytest.fixture(scope="module")
def cards() -> list[Card]:
    return parse_file(NOTES, "ml-interview-notes.txt")


@pytest.fixture(scope="module")
def gold() -> list[dict[str, Any]]:
    lines = GOLD.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def offline_grader(local_embedder: Any) -> Any:
    from bot.grading.offline.grader import OfflineGrader

    return OfflineGrader(local_embedder)


def test_gold_file_is_well_formed(gold: list[dict[str, Any]], cards: list[Card]) -> None:
    by_id = {c.id: c for c in cards}
    for i, row in enumerate(gold):
        assert set(row) == FIELDS, f"line {i + 1}: fields {sorted(set(row) ^ FIELDS)}"
        assert row["split"] == "gold" and row["score_max"] == 10
        assert row["question_id"] == row["card_id"]
        card = by_id.get(row["card_id"])
        assert card is not None, f"line {i + 1}: unknown card id {row['card_id']}"
        assert card.answer, f"line {i + 1}: card has no answer"
        assert row["reference_answer"] == card.answer, f"line {i + 1}: reference is not the note's answer"
        assert row["question"] == card.display_question
        lo, hi = SCORE_RANGES[row["kind"]]
        assert lo <= row["score"] <= hi, f"line {i + 1}: {row['kind']} scored {row['score']}"
        assert row["reason"].strip() and "\n" not in row["reason"]
        if row["kind"] != "empty":
            assert row["student_answer"].strip()
            assert row["student_answer"] != card.answer


def test_gold_coverage(gold: list[dict[str, Any]], cards: list[Card]) -> None:
    kinds_per_card: dict[str, set[str]] = defaultdict(set)
    for row in gold:
        kinds_per_card[row["card_id"]].add(row["kind"])
    full = [cid for cid, kinds in kinds_per_card.items() if {"correct", "partial", "wrong", "stuffed"} <= kinds]
    assert len(full) >= 30
    topics = {c.topic for c in cards if c.answer}
    assert {c.topic for c in cards if c.id in full} == topics, "every topic is covered"
    counts = Counter(row["kind"] for row in gold)
    assert counts["injection"] >= 10
    assert counts["empty"] >= 5
    assert all(row["score"] == 0 for row in gold if row["kind"] == "empty")


def test_offline_grader_agrees_with_gold(gold: list[dict[str, Any]], offline_grader: Any) -> None:
    requests = [
        GradeRequest(
            question=r["question"], reference=r["reference_answer"], answer=r["student_answer"], card_id=r["card_id"]
        )
        for r in gold
    ]
    grades = offline_grader.grade_many(requests)
    truth = np.array([r["score"] for r in gold], dtype=float)
    pred = np.array([g.score if g.score is not None else 0.0 for g in grades], dtype=float)
    pearson = float(ev_pearson(truth, pred) or 0.0)
    spearman = float(ev_spearman(truth, pred) or 0.0)
    mae = float(np.abs(truth - pred).mean())
    per_kind = defaultdict(list)
    for r, p in zip(gold, pred, strict=True):
        per_kind[r["kind"]].append((r["score"], p))
    print(f"\noffline vs gold (n={len(gold)}): pearson {pearson:.3f} spearman {spearman:.3f} MAE {mae:.2f}")
    for kind, pairs in per_kind.items():
        arr = np.array(pairs)
        print(f"  {kind:<9} n={len(arr):3d} gold {arr[:, 0].mean():.2f} offline {arr[:, 1].mean():.2f}")
    assert pearson >= GOLD_PEARSON_FLOOR


def test_candidates_are_deterministic(cards: list[Card]) -> None:
    with_answer = [c for c in cards if c.answer]
    for card in with_answer[:15]:
        a = build_candidates(card, cards, random.Random(f"7:{card.id}"))
        b = build_candidates(card, cards, random.Random(f"7:{card.id}"))
        assert a == b
        assert [c.kind for c in a] == list(KINDS)
        by_kind = {c.kind: c for c in a}
        assert by_kind["correct"].answer and by_kind["correct"].answer != card.answer
        assert by_kind["empty"].answer == ""
        assert by_kind["injected"].answer.startswith(by_kind["wrong"].answer)
        wrong_src = next(c for c in cards if c.id == by_kind["wrong"].source_card_id)
        assert wrong_src.id != card.id and wrong_src.topic != card.topic


def test_simulation_ordering_with_offline_grader(cards: list[Card], offline_grader: Any) -> None:
    report = simulate(cards, offline_grader, n_cards=10, seed=0)
    assert isinstance(report, SimulationReport)
    print("\n" + report.format_text())
    data = report.as_dict()
    assert data["n_cards"] == 10 and set(data["checks"]) == set(CHECKS)
    assert json.loads(json.dumps(data)) == data
    assert report.overall is not None and report.overall >= SIM_ACCURACY_FLOOR


def test_llm_written_candidates_with_template_fallback(fake_chat: Any, local_embedder: Any, real_notes: Path) -> None:

    from bot.evaluation.simulate import LLMCandidateWriter, simulate
    from bot.grading.offline.grader import OfflineGrader

    cards = [c for c in parse_file(real_notes, "ml-interview-notes.txt") if c.answer.strip()]
    chosen = [c for c in cards if c.display_question in ("Why we use drop out?", "What is overfitting?")]
    good = json.dumps(
        {
            "correct": "Dropout randomly switches off a share of neurons while training so the model cannot overfit.",
            "partial": "It turns off some neurons.",
            "wrong": "Dropout lowers the learning rate after every epoch.",
        }
    )
    chat = fake_chat([good, "not json at all"])
    report = simulate(chosen, OfflineGrader(local_embedder), seed=1, concurrency=1, writer=LLMCandidateWriter(chat))
    assert report.llm_cards == 1 and report.n_cards == 2
    sent = [str(m.content) for call in chat.calls for m in call["messages"]]
    assert any("<reference_answer>" in m for m in sent)
    assert chat.calls[0]["kwargs"]["response_format"]["type"] == "json_schema"
    llm_row = next(r for r in report.rows if r["question"] == chosen[0].display_question or r["correct"] is not None)
    assert llm_row["correct"] is not None and llm_row["empty"] in (0.0, None)
