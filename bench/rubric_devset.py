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


def load(path: Path = DEVSET) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def held_out_rows(judge_dir: Path | None = None) -> list[dict[str, Any]]:
    """The team-written *training* answers (bench/data/trainset_interview.jsonl) to the questions the judge
    held out for model selection: never trained on, and not the development set — where the offline
    grader's judge parameters are chosen."""
    from bot.grading.judge import Judge
    from bot.install.judge_train import recorded_config, split_dev, training_examples

    judge = Judge(judge_dir)
    training = json.loads((judge.model_dir / "judge.json").read_text(encoding="utf-8"))["training"]
    cfg = recorded_config(training["config"])
    if "interview" not in cfg.datasets:
        raise SystemExit(f"{judge.model_dir}: this judge was not trained with the interview answers")
    read: dict[str, Any] = {}
    _, dev = split_dev(training_examples(cfg, ROOT.parent / "shared" / "datasets", read), cfg.dev_share, cfg.seed)
    if read.get("interview_sha256") != training.get("interview_sha256"):
        raise SystemExit(f"{cfg.interview} changed since {judge.model_dir} was trained: its held-out split is gone")
    held = {e.question_id for e in dev if e.dataset == "interview"}
    rows = [json.loads(x) for x in (ROOT / cfg.interview).read_text(encoding="utf-8").splitlines() if x.strip()]
    return [r for r in rows if r["question"] in held]


def _cards(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each row's card: the shipped card of its question, else (a team-written question) one parsed from
    the row's own question and reference."""
    from bot.knowledge.notes import parse_notes

    cards = {c.display_question: c for c in parse_file(NOTES, "notes") if c.has_answer}
    for row in rows:
        if row["question"] not in cards:
            parsed = [c for c in parse_notes(f"{row['question']}\n{row['reference']}\n", "team") if c.has_answer]
            if not parsed:
                raise ValueError(f"not a question and answer: {row['question']!r}")
            cards[row["question"]] = parsed[0]
    return cards


def requests(rows: list[dict[str, Any]], *, use_rubric: bool) -> list[GradeRequest]:
    cards = _cards(rows)
    with_rubric = use_rubric and "rubric" in GradeRequest.model_fields
    reqs = []
    for row in rows:
        card = cards[row["question"]]
        extra: dict[str, Any] = {}
        if with_rubric:
            from bot.grading.rubric import compile_rubric

            extra["rubric"] = compile_rubric(card)
        reqs.append(GradeRequest(question=card.display_question, reference=card.answer, answer=row["answer"], **extra))
    return reqs


def grade_all(rows: list[dict[str, Any]], *, use_rubric: bool, grader: Any = None) -> list[float]:
    from bot.grading.offline.grader import OfflineGrader
    from bot.retrieval.embeddings import LocalEmbedder

    reqs = requests(rows, use_rubric=use_rubric)
    grades = (grader or OfflineGrader(LocalEmbedder(Settings()))).grade_many(reqs)
    print(f"grader: offline, rubric: {'yes' if reqs and reqs[0].rubric else 'no'}, answers: {len(reqs)}")
    return [g.score if g.score is not None else float("nan") for g in grades]


def _above(a: list[float], b: list[float]) -> float:
    """The share of (a, b) pairs with a's score above b's."""
    return sum(x > y for x in a for y in b) / (len(a) * len(b))


def report(rows: list[dict[str, Any]], scores: list[float], *, quiet: bool = False) -> dict[str, float]:
    """The figures (printed unless ``quiet``); with several answers of a kind to a card (the training
    answers), a card's ordering figures are over every pair of its answers of the two kinds."""
    by: dict[str, list[float]] = {}
    per_card: dict[str, dict[str, list[float]]] = {}
    for row, score in zip(rows, scores, strict=True):
        by.setdefault(row["kind"], []).append(score)
        per_card.setdefault(row["question"], {}).setdefault(row["kind"], []).append(score)
    correct, thin, wrong = by["correct"], by["thin"], by["misconception"]
    cards = list(per_card.values())
    figures = {
        "correct median": statistics.median(correct),
        "correct >= 6.5 (%)": 100 * sum(s >= 6.5 for s in correct) / len(correct),
        "thin median": statistics.median(thin),
        "misconception median": statistics.median(wrong),
        "misconception < 4 (%)": 100 * sum(s < 4 for s in wrong) / len(wrong),
    }
    if "stuffed" in by:
        figures["stuffed median"] = statistics.median(by["stuffed"])
    figures |= {
        "ordering correct > thin > misconception (%)": 100
        * statistics.mean(
            min(c["correct"]) > max(c["thin"]) and min(c["thin"]) > max(c["misconception"]) for c in cards
        ),
        "pairwise ordering, 3 pairs per card (%)": 100
        * statistics.mean(
            (
                _above(c["correct"], c["thin"])
                + _above(c["thin"], c["misconception"])
                + _above(c["correct"], c["misconception"])
            )
            / 3
            for c in cards
        ),
        "correct > misconception (%)": 100 * statistics.mean(_above(c["correct"], c["misconception"]) for c in cards),
    }
    for name, value in figures.items():
        if not quiet:
            print(f"  {name:45s} {value:6.1f}")
    return figures


# The judge parameters --choose tries (params.json has the chosen ones); see bot/grading/offline/params.py.
GRID: dict[str, tuple[float, ...]] = {
    "judge_weight": (0.0, 0.3, 0.5, 0.7, 1.0),
    "judge_contradiction": (2.0, 0.5, 0.6, 0.7),
    "judge_answer_contradiction": (2.0, 0.4, 0.5, 0.6),
    "judge_answer_weight": (0.0, 0.3, 0.5, 0.7),
}
TARGETS = ("correct >= 6.5 (%)", "misconception < 4 (%)", "pairwise ordering, 3 pairs per card (%)")


# The score scales tried with each combination (rubric_scale_lo, rubric_scale_hi): cheap, no re-grading.
SCALES: tuple[tuple[float, float], ...] = tuple(
    (lo, hi) for lo in (0.0, 0.1, 0.15, 0.2) for hi in (1.0, 0.8, 0.7, 0.65, 0.6, 0.55) if hi - lo >= 0.35
)


def choose(rows: list[dict[str, Any]], judge_dir: Path | None) -> list[tuple[float, dict[str, float]]]:
    """Every combination of :data:`GRID` and :data:`SCALES` on ``rows``, best first by the mean of the issue's
    three shares (:data:`TARGETS`); the judge's verdicts are computed once, each combination graded once."""
    import dataclasses
    import itertools

    from bench.offline_agreement import CachingJudge
    from bot.grading.base import ClaimStatus
    from bot.grading.judge import Judge
    from bot.grading.offline.grader import OfflineGrader
    from bot.grading.offline.params import OfflineParams
    from bot.retrieval.embeddings import LocalEmbedder

    base = dataclasses.replace(OfflineParams.load(), rubric_scale_lo=0.0, rubric_scale_hi=1.0)
    grader = OfflineGrader(LocalEmbedder(Settings()), params=base, judge=CachingJudge(Judge(judge_dir), None))
    reqs = requests(rows, use_rubric=True)
    results = []
    for values in itertools.product(*GRID.values()):
        combo = dict(zip(GRID, values, strict=True))
        grader.params = dataclasses.replace(base, **combo)
        grades = grader.grade_many(reqs)
        for lo, hi in SCALES:
            grader.params = dataclasses.replace(base, **combo, rubric_scale_lo=lo, rubric_scale_hi=hi)
            scores = [
                float("nan")
                if g.score is None
                else grader.rescale(g.score, contradicted=any(c.status is ClaimStatus.CONTRADICTED for c in g.claims))
                for g in grades
            ]
            figures = report(rows, scores, quiet=True)
            chosen = {**combo, "rubric_scale_lo": lo, "rubric_scale_hi": hi}
            results.append((sum(figures[t] for t in TARGETS) / (100 * len(TARGETS)), chosen))
    results.sort(key=lambda r: -r[0])
    return results


def _grader(overrides: str, judge_dir: Path | None) -> Any:
    """The offline grader with ``name=value,...`` parameters replaced (choosing them: ``--set``) and the
    judge in ``judge_dir`` (default: the committed one)."""
    import dataclasses

    from bot.grading.judge import Judge
    from bot.grading.offline.grader import OfflineGrader
    from bot.grading.offline.params import OfflineParams
    from bot.retrieval.embeddings import LocalEmbedder

    params = OfflineParams.load()
    changes = {k: float(v) for k, v in (item.split("=", 1) for item in overrides.split(",") if item)}
    params = dataclasses.replace(params, **changes)
    judge = Judge(judge_dir) if params.uses_judge else None
    return OfflineGrader(LocalEmbedder(Settings()), params=params, judge=judge)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-rubric", action="store_true", help="grade without the compiled rubric")
    ap.add_argument("--answers", type=Path, default=DEVSET, help="another file of team-written answers")
    ap.add_argument("--held-out", action="store_true", help="the judge's held-out training questions instead")
    ap.add_argument("--set", default="", metavar="NAME=VALUE,...", help="offline parameters to replace")
    ap.add_argument("--judge", type=Path, default=None, help="another trained judge's folder")
    ap.add_argument("--choose", action="store_true", help="try the judge parameters of GRID (use with --held-out)")
    args = ap.parse_args()
    data = held_out_rows(args.judge) if args.held_out else load(args.answers)
    what = "judge's held-out training answers" if args.held_out else args.answers.name
    print(f"team-written {what}: {len(data)} answers, {len({r['question'] for r in data})} cards")
    if args.choose:
        for value, combo in choose(data, args.judge)[:10]:
            print(f"  {value:.3f}  " + ",".join(f"{k}={v:g}" for k, v in combo.items()))
    else:
        report(data, grade_all(data, use_rubric=not args.no_rubric, grader=_grader(args.set, args.judge)))
