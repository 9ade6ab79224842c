"""The evaluation core: dataset loading, batched grading, agreement metrics and the report."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.evaluation.datasets import Example, load_dataset
from bot.evaluation.metrics import (
    Metrics,
    compute_metrics,
    grouped_folds,
    isotonic_calibration,
    macro_f1,
    pearson,
    quadratic_weighted_kappa,
    spearman,
)
from bot.evaluation.report import scatter_figure, write_report
from bot.evaluation.runner import evaluate, grade_examples
from bot.grading.base import Grade, GradeRequest, OneShotGrader, ungraded


def ex(score: float, score_max: float = 1.0, qid: str = "q1", answer: str = "an answer", **kw: Any) -> Example:
    return Example(
        question=kw.pop("question", f"Question {qid}?"),
        reference_answer="The reference.",
        student_answer=answer,
        score=score,
        score_max=score_max,
        question_id=qid,
        **kw,
    )


def gr(score10: float, feedback: str = "") -> Grade:
    return Grade(score=round(score10, 6), grader="fake", feedback=feedback)


# --------------------------------------------------------------------------- statistics


def test_perfect_predictor_scores_one() -> None:
    examples = [ex(s, 4.0, qid=f"q{i % 3}") for i, s in enumerate([0, 1, 2, 3, 4, 0, 2, 4, 1, 3])]
    grades = [gr(10 * e.score / 4) for e in examples]
    m = compute_metrics(examples, grades)
    assert m.n == 10 and m.ungraded == 0 and not m.binary
    assert m.pearson == pytest.approx(1.0) and m.spearman == pytest.approx(1.0)
    assert m.qwk == pytest.approx(1.0)
    assert m.rmse == pytest.approx(0.0) and m.mae == pytest.approx(0.0)
    assert m.accuracy is None and m.threshold_source is None


def test_pearson_known_value() -> None:
    # deviations (-1.5, -0.5, 0.5, 1.5) and (-1, -1, 1, 1): cov 4, var 5 and 4 → 4 / sqrt(20)
    assert pearson([1, 2, 3, 4], [1, 1, 3, 3]) == pytest.approx(4 / math.sqrt(20), abs=1e-15)
    assert pearson([1, 2], [2, 1]) == pytest.approx(-1.0)


def test_spearman_with_ties_uses_average_ranks() -> None:
    # ranks (1, 2.5, 2.5, 4) vs (1, 3, 2, 4): cov 4.5, var 4.5 and 5 → sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(math.sqrt(0.9))
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_qwk_known_value_on_the_datasets_own_levels() -> None:
    # observed (h, p): (0,0) (0,1) (1,1) (2,2); Σw·O = 0.25, Σw·E = 1.25 → κ = 0.8
    assert quadratic_weighted_kappa([0, 0, 1, 2], [0, 1, 1, 2], [0, 1, 2]) == pytest.approx(0.8)
    examples = [ex(s, 2.0, qid=f"q{i}") for i, s in enumerate([0, 0, 1, 2])]
    grades = [gr(0), gr(4.0), gr(6.0), gr(10)]  # 0.4 and 0.6 round to the nearest human level 0.5
    assert compute_metrics(examples, grades).qwk == pytest.approx(0.8)


def test_qwk_weights_use_level_values_when_a_level_is_missing() -> None:
    # levels 0, 0.25, 1 (0.5 and 0.75 absent): weights (Δv)² = 0.0625, 1, 0.5625, not (Δindex / 2)².
    # observed (0→0.25) (0.25→0.25) (1→1): Σw·O = 0.0625; marginals (1,1,1) × (0,2,1) / 3 give
    # Σw·E = (2·0.0625 + 1 + 0.5625 + 2·0.5625) / 3 = 0.9375 → κ = 1 − 1/15. Index weights would give 2/3.
    kappa = quadratic_weighted_kappa([0, 0.25, 1], [0.25, 0.25, 1], [0, 0.25, 1])
    assert kappa == pytest.approx(14 / 15, abs=1e-12)
    # the same ratings on evenly spaced levels are the plain index form
    assert quadratic_weighted_kappa([0, 1, 2], [1, 1, 2], [0, 1, 2]) == pytest.approx(2 / 3, abs=1e-12)


def test_constant_vectors_give_none_not_a_crash() -> None:
    assert pearson([1, 1, 1], [1, 2, 3]) is None
    assert pearson([1], [1]) is None
    assert spearman([2, 2], [1, 3]) is None
    assert quadratic_weighted_kappa([1, 1], [1, 1], [1]) is None
    assert quadratic_weighted_kappa([1, 1], [1, 1], [0, 1]) is None  # no expected disagreement
    assert quadratic_weighted_kappa([], [], [0, 1]) is None
    examples = [ex(1.0, qid=f"q{i}") for i in range(4)]
    m = compute_metrics(examples, [gr(7.0)] * 4)
    assert m.pearson is None and m.spearman is None and m.rmse == pytest.approx(0.3)
    empty = compute_metrics([], [])
    assert empty.n == 0 and empty.pearson is None and empty.rmse is None


def iso(x: list[float], y: list[float], at: list[float]) -> list[float]:
    out: list[float] = isotonic_calibration(np.asarray(x), np.asarray(y), np.asarray(at)).tolist()
    return out


def test_isotonic_calibration_pools_violators_and_interpolates() -> None:
    assert iso([1, 2, 3, 4], [1, 3, 2, 4], [1, 2, 3, 4]) == pytest.approx([1.0, 2.5, 2.5, 4.0])
    assert iso([1, 2, 3], [3, 2, 1], [1, 2, 3]) == pytest.approx([2.0, 2.0, 2.0])
    assert iso([1, 2, 2, 2], [4, 0, 0, 0], [1, 2]) == pytest.approx([1.0, 1.0])  # tied x weigh 3
    assert iso([1, 2, 3], [1, 2, 3], [1, 2, 3]) == pytest.approx([1.0, 2.0, 3.0])
    # tied x first averaged (0.1 → 0.5, weight 2), then pooled with (0.5, 0.2): 1.2 / 3 = 0.4;
    # (0.7, 1.0) and (0.9, 0.8) pool to 0.9; linear between the points, clamped outside.
    x, y = [0.1, 0.1, 0.5, 0.9, 0.7], [0.0, 1.0, 0.2, 0.8, 1.0]
    assert iso(x, y, [0.0, 0.1, 0.5, 0.6, 0.7, 1.0]) == pytest.approx([0.4, 0.4, 0.4, 0.65, 0.9, 0.9])


def test_macro_f1_known_values() -> None:
    truth = np.array([True, True, False, False, True])
    pred = np.array([True, False, False, True, True])
    # positive: tp 2, fp 1, fn 1 → 4/6; negative: tp 1, fp 1, fn 1 → 2/4
    assert macro_f1(truth, pred) == pytest.approx((4 / 6 + 2 / 4) / 2)
    assert macro_f1(np.array([True, True]), np.array([True, True])) == 1.0  # absent class scores 1


def test_grouped_folds_keep_each_question_in_one_fold() -> None:
    groups = [f"q{i % 7}" for i in range(40)]
    folds = grouped_folds(groups)
    assert folds.tolist() == grouped_folds(groups).tolist()  # deterministic
    assert set(folds.tolist()) == set(range(5))
    for g in set(groups):
        assert len({int(f) for f, gg in zip(folds, groups, strict=True) if gg == g}) == 1


def test_calibration_never_fits_a_question_on_itself() -> None:
    # Humans are a monotone step of the grader score over all rows, so an isotonic fit that saw
    # question q2's own rows would be perfect (rmse 0). Fitted on the other questions only, q2's
    # two answers (0.45 → 0, 0.55 → 1) are interpolated between 0.35 → 0 and 0.65 → 1: 1/3 and 2/3.
    ps = {"q0": (0.05, 0.15), "q1": (0.25, 0.35), "q2": (0.45, 0.55), "q3": (0.65, 0.75), "q4": (0.85, 0.95)}
    hs = {"q0": (0, 0), "q1": (0, 0), "q2": (0, 1), "q3": (1, 1), "q4": (1, 1)}
    examples = [ex(h, qid=q) for q in ps for h in hs[q]]
    grades = [gr(10 * p) for q in ps for p in ps[q]]
    scores = [g.score / 10 for g in grades if g.score is not None]
    leaked = iso(scores, [e.human for e in examples], scores)
    assert np.allclose(leaked, [e.human for e in examples])  # what leakage would give
    m = compute_metrics(examples, grades)
    assert m.rmse_calibrated == pytest.approx(math.sqrt(2 / 90))
    assert m.mae_calibrated == pytest.approx((2 / 3) / 10)


# --------------------------------------------------------------------------- ungraded and binary


def test_ungraded_answers_are_counted_and_excluded() -> None:
    examples = [ex(0.0, qid="a"), ex(0.5, qid="b"), ex(1.0, qid="c"), ex(1.0, qid="d")]
    grades = [gr(0), gr(5), gr(10), ungraded("model timed out", grader="fake")]
    m = compute_metrics(examples, grades)
    assert m.n == 3 and m.ungraded == 1
    assert m.rmse == pytest.approx(0.0) and m.pearson == pytest.approx(1.0)  # a 0 would have cost 1.0 error
    with pytest.raises(ValueError):
        compute_metrics(examples, grades[:3])


def test_binary_threshold_is_chosen_on_the_training_rows() -> None:
    train = [ex(s, qid=f"t{i}") for i, s in enumerate([1, 1, 1, 0, 0, 0])]
    train_grades = [gr(x) for x in (7, 8, 9, 1, 2, 6)]  # only t ∈ (0.6, 0.7) separates them
    evald = [ex(s, qid=f"e{i}") for i, s in enumerate([1, 1, 0, 0])]
    eval_grades = [gr(x) for x in (5, 5.5, 1, 2)]  # an in-sample threshold would score 1.0 here
    m = compute_metrics(evald, eval_grades, train_examples=train, train_grades=train_grades)
    assert m.binary and m.threshold_source == "train"
    assert m.threshold == pytest.approx(0.65)
    assert m.accuracy == pytest.approx(0.5)  # everything predicted incorrect at 0.65
    assert m.macro_f1 == pytest.approx((0 + 2 * 2 / (2 * 2 + 2)) / 2)
    cv = compute_metrics(evald, eval_grades)
    assert cv.threshold_source == "cv" and cv.threshold is not None and cv.accuracy is not None


def test_as_dict_has_exactly_the_documented_keys() -> None:
    keys = {
        "n", "ungraded", "pearson", "spearman", "qwk", "rmse", "mae", "rmse_calibrated", "mae_calibrated",
        "accuracy", "macro_f1", "threshold", "threshold_source", "binary", "grader", "dataset", "split",
        "seconds", "bad_lines",
    }  # fmt: skip
    d = Metrics(pearson=0.123456).as_dict()
    assert set(d) == keys and d["pearson"] == 0.1235
    json.dumps(d)


# --------------------------------------------------------------------------- dataset


def write_jsonl(path: Path, rows: Sequence[Any]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def row(**kw: Any) -> dict[str, Any]:
    base = {"question": "What is X?", "reference_answer": "X is Y.", "student_answer": "Y", "score": 1, "score_max": 1}
    return {**base, **kw}


def test_bad_lines_are_reported_with_line_numbers(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            row(question_id="Q7", split="test", dataset="demo"),
            "{not json",
            row(score=2, score_max=1),
            "",
            {"question": "q", "student_answer": "a", "score": 0, "score_max": 1},
            row(score_max=0, score=0),
            row(score="high"),
            "[1, 2]",
            row(score=-0.5),
            row(question="Same words here?"),
        ],
    )
    examples, bad = load_dataset(path)
    assert [b.line for b in bad] == [2, 3, 5, 6, 7, 8, 9]
    reasons = dict((b.line, b.reason) for b in bad)
    assert "invalid JSON" in reasons[2] and "outside" in reasons[3] and "reference_answer" in reasons[5]
    assert "score_max" in reasons[6] and "score" in reasons[7] and "object" in reasons[8]
    assert [e.line for e in examples] == [1, 10]
    first, last = examples
    assert first.question_id == "Q7" and first.split == "test" and first.extra == {"dataset": "demo"}
    assert first.subset == "demo"
    assert last.question_id.startswith("q-") and last.split is None
    again, _ = load_dataset(write_jsonl(tmp_path / "e.jsonl", [row(question="same  words HERE?")]))
    assert again[0].question_id == last.question_id  # derived from the normalised question text


def test_split_filter_and_seeded_limit(tmp_path: Path) -> None:
    rows: list[Any] = [row(split="train" if i % 2 else "test", question_id=f"q{i}", dataset="a") for i in range(40)]
    rows.append("oops")
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    test, bad = load_dataset(path, split="test")
    assert len(test) == 20 and {e.split for e in test} == {"test"} and [b.line for b in bad] == [41]
    assert len(load_dataset(path, split="a:train")[0]) == 20 and not load_dataset(path, split="b:train")[0]
    s1, _ = load_dataset(path, split="test", limit=5, seed=3)
    s2, _ = load_dataset(path, split="test", limit=5, seed=3)
    s3, _ = load_dataset(path, split="test", limit=5, seed=4)
    assert [e.line for e in s1] == [e.line for e in s2] != [e.line for e in s3]
    assert [e.line for e in s1] == sorted(e.line for e in s1)
    with pytest.raises(ValueError, match="splits present"):
        load_dataset(write_jsonl(tmp_path / "ok.jsonl", rows[:-1]), split="dev")


# --------------------------------------------------------------------------- grading


class AsyncOnly(OneShotGrader):
    name = "async-fake"

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0

    async def agrade(self, request: GradeRequest) -> Grade:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0.001)
        self.active -= 1
        if request.answer == "boom":
            raise RuntimeError("bad reply")
        return Grade(score=float(len(request.answer) % 11), grader=self.name)


class Batched(OneShotGrader):
    name = "batched-fake"
    batched = True

    def __init__(self) -> None:
        self.batches: list[int] = []

    async def agrade_many(self, requests: Sequence[GradeRequest], *, concurrency: int = 4) -> list[Grade]:
        self.batches.append(len(requests))
        return [Grade(score=5.0, grader=self.name) for _ in requests]

    async def agrade(self, request: GradeRequest) -> Grade:  # pragma: no cover - must not be used
        raise AssertionError("agrade_many should be used")


def test_grade_examples_bounded_concurrency_and_progress() -> None:
    examples = [ex(1.0, answer="x" * i) for i in range(20)] + [ex(0.0, answer="boom")]
    seen: list[tuple[int, int]] = []
    grader = AsyncOnly()
    grades = grade_examples(examples, grader, batch_size=8, progress=lambda d, t: seen.append((d, t)))
    assert len(grades) == 21 and grades[3].score == 3.0  # order kept
    assert grades[-1].status == "ungraded" and "bad reply" in grades[-1].ungraded_reason
    assert 1 < grader.peak <= 4
    assert seen == [(8, 21), (16, 21), (21, 21)]


def test_grade_examples_uses_agrade_many_in_batches() -> None:
    grader = Batched()
    seen: list[tuple[int, int]] = []
    grades = grade_examples([ex(1.0)] * 10, grader, batch_size=4, progress=lambda d, t: seen.append((d, t)))
    assert len(grades) == 10 and grader.batches == [4, 4, 2] and seen == [(4, 10), (8, 10), (10, 10)]


# --------------------------------------------------------------------------- report and end to end


def test_report_and_plot_mention_the_worst_disagreement(tmp_path: Path) -> None:
    examples = [ex(1.0, qid=f"q{i % 3}", answer=f"fine answer {i}") for i in range(9)]
    examples.append(ex(1.0, qid="q9", answer="Photosynthesis | makes sugar </script> from light", question="Plants?"))
    grades = [gr(9.0 + 0.1 * (i % 2), feedback="ok") for i in range(9)] + [gr(0.5, feedback="Missed: sunlight.")]
    m = compute_metrics(examples, grades, dataset="demo", split="test")
    out = write_report(tmp_path / "out" / "report.md", examples, grades, m)
    text = out.read_text(encoding="utf-8")
    assert "[report.scatter.html](report.scatter.html)" in text
    page = (tmp_path / "out" / "report.scatter.html").read_text(encoding="utf-8")
    # offline: plotly.js is inline, no script is fetched; the answer's "</script>" cannot close a tag
    assert not re.search(r"<script[^>]*\bsrc=", page) and "plotly.js" in page and len(page) > 1_000_000
    assert page.count("</script>") == page.count("<script")
    assert "makes sugar &lt;\\u002fscript&gt; from light" in page  # escaped for plotly's hover, then for JSON
    worst = text.split("## 10 worst disagreements", 1)[1].splitlines()[4]
    assert "Photosynthesis \\| makes sugar" in worst and "Missed: sunlight." in worst and "0.05" in worst
    per_q = text.split("## Per question", 1)[1].splitlines()[4]
    assert per_q.startswith("| q9: Plants?")  # worst question first
    assert "| rmse |" in text and "| n | 10 |" in text


def test_scatter_figure_points_diagonal_and_hover() -> None:
    human, grader = [0.0, 0.5, 1.0, 1.0], [0.1, 0.5, 0.9, 1.0]
    fig = scatter_figure(human, grader, ["a", "b", "c", "d"])
    diagonal, points = fig.data
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    assert len(points.x) == 4 and list(points.text) == ["a", "b", "c", "d"]
    # seeded jitter: within ±0.015 (human) / ±0.008 (grader), clipped to 0–1, the same on every call
    assert np.all(np.abs(np.asarray(points.x) - human) <= 0.015) and np.all(
        np.abs(np.asarray(points.y) - grader) <= 0.008
    )
    assert min(points.x) >= 0 and max(points.y) <= 1
    assert list(scatter_figure(human, grader).data[1].x) == list(points.x)


def test_end_to_end_with_the_real_offline_grader(tmp_path: Path, local_embedder: Any) -> None:
    from bot.grading.offline.grader import OfflineGrader

    q1 = {
        "question": "What does dropout do in a neural network?",
        "reference_answer": "Dropout randomly deactivates neurons during training to reduce overfitting.",
        "question_id": "dropout",
    }
    q2 = {
        "question": "Why do we split data into training and test sets?",
        "reference_answer": "To estimate how well the model generalises to unseen data.",
        "question_id": "split",
    }
    answers = [
        (q1, "It randomly switches off neurons while training so the network does not overfit.", 1),
        (q1, "Dropout turns off random units during training, which reduces overfitting.", 1),
        (q1, "It makes the learning rate larger.", 0),
        (q1, "I don't know.", 0),
        (q2, "So we can measure generalisation on data the model has not seen.", 1),
        (q2, "To check performance on unseen data and estimate generalisation.", 1),
        (q2, "Because training is faster on smaller files.", 0),
        (q2, "", 0),
    ]
    rows: list[Any] = [
        {**q, "student_answer": a, "score": s, "score_max": 1, "split": "test", "dataset": "demo"}
        for q, a, s in answers
    ]
    train = {"score_max": 1, "split": "train", "dataset": "demo"}
    rows += [
        {**q1, **train, "student_answer": "neurons are dropped to avoid overfitting", "score": 1},
        {**q2, **train, "student_answer": "no reason", "score": 0},
        '{"question": "broken"',  # no split known: reported, not silently dropped
    ]
    path = write_jsonl(tmp_path / "mini.jsonl", rows)
    ticks: list[tuple[int, int]] = []
    run = evaluate(path, OfflineGrader(local_embedder), split="test", progress=lambda d, t: ticks.append((d, t)))
    m = run.metrics
    assert m.n + m.ungraded == 8 and m.bad_lines == 1 and m.binary
    assert m.threshold_source == "train" and len(run.train_examples) == 2
    assert m.grader == "offline" and m.dataset == "mini (demo)" and m.seconds is not None
    assert m.pearson is not None and m.pearson > 0.5 and m.accuracy is not None
    assert (8, 8) in ticks
    report = write_report(tmp_path / "mini.md", run.examples, run.grades, m)
    assert (tmp_path / "mini.scatter.html").exists() and "dropout" in report.read_text(encoding="utf-8")
