"""Agreement of the offline grader with human grades, against simple baselines; plus latency.

    .venv/bin/python bench/offline_agreement.py                 # table + latency
    .venv/bin/python bench/offline_agreement.py --limit 200     # quick: 200 rows per split
    .venv/bin/python bench/offline_agreement.py --fit           # refit bot/grading/offline/params.json first

Data (read-only, never copied): /work/shared/datasets/{saf-english,semeval2013-2way}.jsonl.
Fitting uses ONLY the training splits (SAF ``training``, SemEval ``train``); features are chosen by
leave-one-dataset-out (SAF / Beetle / SciEntsBank) on those training splits. The table reports the
unseen-answers / unseen-questions / unseen-domains splits, which are never used for fitting.

Baselines: (a) MiniLM cosine of answer and reference; (b) token recall (share of the reference's
content tokens present in the answer); (c) 0.7·(a) + 0.3·(b). RMSE is on the 0–1 scale (baselines
clipped to 0–1, the grader's score / 10).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import pickle
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.evaluation.metrics import pearson as ev_pearson  # noqa: E402
from bot.evaluation.metrics import spearman as ev_spearman  # noqa: E402
from bot.grading.base import GradeRequest  # noqa: E402
from bot.grading.judge import Judge, Verdicts  # noqa: E402
from bot.grading.keypoints import stopwords, tokens  # noqa: E402
from bot.grading.offline.grader import OfflineGrader  # noqa: E402
from bot.grading.offline.params import FEATURES, PARAMS_PATH, OfflineParams  # noqa: E402

DATA = Path("/work/shared/datasets")
CACHE = Path("/tmp/offline_grader_bench_cache.pkl")
JUDGE_CACHE = Path("/tmp/offline_grader_judge_cache.pkl")
TRAIN = [("saf", "training"), ("beetle", "train"), ("sciEntsBank", "train")]
EVAL = [
    ("saf", "unseen_answers"),
    ("saf", "unseen_questions"),
    ("beetle", "test-unseen-answers"),
    ("beetle", "test-unseen-questions"),
    ("sciEntsBank", "test-unseen-answers"),
    ("sciEntsBank", "test-unseen-questions"),
    ("sciEntsBank", "test-unseen-domains"),
]
COVERAGE = {"rec", "rec_plain", "prec", "cos", "cos_dem", "kp", "kp_sem", "kp_lex", "j_ref"}  # never a negative weight


class CachingEmbedder:
    """Wraps an embedder with a text → vector cache persisted in /tmp (dev speed only)."""

    def __init__(self, inner: object, path: Path | None = CACHE) -> None:
        self.inner = inner
        self.path = path
        self.cache: dict[str, np.ndarray] = {}
        if path and path.exists():
            self.cache = pickle.loads(path.read_bytes())
        self.dirty = False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            vecs = self.inner.embed(missing)  # type: ignore[attr-defined]
            self.cache.update(zip(missing, vecs, strict=True))
            self.dirty = True
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.cache[t] for t in texts])

    def save(self) -> None:
        if self.path and self.dirty:
            self.path.write_bytes(pickle.dumps(self.cache))
            self.dirty = False


def load_rows() -> dict[tuple[str, str], list[dict[str, object]]]:
    groups: dict[tuple[str, str], list[dict[str, object]]] = {}
    for name in ("saf-english", "semeval2013-2way"):
        with open(DATA / f"{name}.jsonl", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                ds = str(row.get("dataset") or "saf")
                groups.setdefault((ds, str(row["split"])), []).append(row)
    return groups


def subsample(rows: list[dict[str, object]], limit: int | None, seed: int = 0) -> list[dict[str, object]]:
    if not limit or len(rows) <= limit:
        return rows
    rnd = random.Random(seed)
    return rnd.sample(rows, limit)


def requests_for(rows: list[dict[str, object]]) -> list[GradeRequest]:
    return [
        GradeRequest(question=str(r["question"]), reference=str(r["reference_answer"]), answer=str(r["student_answer"]))
        for r in rows
    ]


def targets(rows: list[dict[str, object]]) -> np.ndarray:
    return np.array([float(r["score"]) / float(r["score_max"] or 1) for r in rows])  # type: ignore[arg-type]


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson as a float (NaN when undefined), for fitting loops."""
    r = ev_pearson(x, y)
    return float("nan") if r is None else r


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    r = ev_spearman(x, y)
    return float("nan") if r is None else r


def rmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.clip(x, 0, 1) - y) ** 2)))


def baselines(rows: list[dict[str, object]], emb: CachingEmbedder) -> dict[str, np.ndarray]:
    refs = [str(r["reference_answer"]) for r in rows]
    answers = [str(r["student_answer"]) or " " for r in rows]
    rv, av = emb.embed(refs), emb.embed(answers)
    cos = np.sum(rv * av, axis=1)
    rec = []
    for ref, ans in zip(refs, answers, strict=True):
        rt = {t for t in tokens(ref) if t not in stopwords()}
        at = set(tokens(ans))
        rec.append(len(rt & at) / len(rt) if rt else 0.0)
    recall = np.array(rec)
    return {"cosine": cos, "recall": recall, "mix": 0.7 * cos + 0.3 * recall}


# --- fitting --------------------------------------------------------------------------------------


def ridge(x: np.ndarray, y: np.ndarray, w: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    xm = np.average(x, axis=0, weights=w)
    ym = float(np.average(y, weights=w))
    xc, yc = x - xm, y - ym
    a = (xc * w[:, None]).T @ xc + lam * np.eye(x.shape[1]) * w.sum()
    coef = np.linalg.solve(a, (xc * w[:, None]).T @ yc)
    return coef, ym - float(xm @ coef)


def dataset_weights(ds: np.ndarray) -> np.ndarray:
    w = np.ones(len(ds))
    for name in set(ds):
        w[ds == name] = 1.0 / np.sum(ds == name)
    return w * len(ds) / len(set(ds))


def fit(
    feats: np.ndarray, y: np.ndarray, ds: np.ndarray, lam: float = 0.01
) -> tuple[tuple[str, ...], dict[str, Any], list[tuple[float, tuple[str, ...]]]]:
    """Feature subset by leave-one-dataset-out mean Pearson; then refit on all training rows."""
    names = sorted(set(ds))
    results: list[tuple[float, tuple[str, ...]]] = []
    for k in range(1, 6):
        for subset in itertools.combinations(range(len(FEATURES)), k):
            cols = list(subset)
            rs = []
            ok = True
            for held in names:
                tr, te = ds != held, ds == held
                coef, b = ridge(feats[tr][:, cols], y[tr], dataset_weights(ds[tr]), lam)
                if any(c < 0 and FEATURES[j] in COVERAGE for c, j in zip(coef, cols, strict=True)):
                    ok = False
                    break
                rs.append(pearson(feats[te][:, cols] @ coef + b, y[te]))
            if ok:
                # Robust choice: mean and worst held-out dataset count equally; small cost per feature.
                results.append((float(np.mean(rs) + np.min(rs)) / 2 - 0.003 * k, tuple(FEATURES[j] for j in cols)))
    results.sort(reverse=True)
    best = results[0][1]
    cols = [FEATURES.index(f) for f in best]
    x = feats[:, cols]
    w = dataset_weights(ds)
    mean = np.average(x, axis=0, weights=w)
    scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
    coef, b = ridge((x - mean) / scale, y, w, lam)
    out = {"mean": mean.tolist(), "scale": scale.tolist(), "coef": coef.tolist(), "intercept": b}
    return best, out, results[:8]


def judge_held_out(judge: Judge) -> set[tuple[str, str]]:
    """(dataset, question id) of the training questions the judge held out for model selection."""
    from bot.install.judge_train import recorded_config, split_dev, training_examples

    record = json.loads((judge.model_dir / "judge.json").read_text(encoding="utf-8"))["training"]["config"]
    cfg = recorded_config(record)
    _, dev = split_dev(training_examples(cfg, DATA), cfg.dev_share, cfg.seed)
    return {(e.dataset, e.question_id) for e in dev}


def choose_hit_threshold(g: OfflineGrader, reqs: list[GradeRequest], y: np.ndarray) -> float:
    """Threshold on the key-point match whose hit share correlates best with the human grade."""
    prepared = g._prepare(reqs)
    matches = []
    keep = []
    for i, (ref, ans, vecs, judged) in enumerate(prepared):
        if ref is not None and ans is not None and vecs is not None:
            matches.append(g._features(ref, ans, vecs, judged).point_match)
            keep.append(i)
    yk = y[keep]
    best_t, best_r = 0.5, -1.0
    for t in np.arange(0.30, 0.80, 0.025):
        share = np.array([np.mean(np.array(m) >= t) for m in matches])
        r = pearson(share, yk)
        if r > best_r:
            best_t, best_r = float(t), r
    return round(best_t, 3)


class CachingJudge:
    """Wraps the judge with a (text, text) → verdict cache persisted in /tmp (dev speed only)."""

    def __init__(self, inner: Judge, path: Path | None) -> None:
        self.inner = inner
        self.path = path
        self.cache: dict[tuple[str, str], tuple[np.ndarray, float]] = {}
        if path and path.exists():
            self.cache = pickle.loads(path.read_bytes())

    def judge(self, pairs: Sequence[tuple[str, str]]) -> Verdicts:
        missing = list(dict.fromkeys(p for p in pairs if p not in self.cache))
        if missing:
            v = self.inner.judge(missing)
            self.cache.update((pair, (v.probs[i], float(v.score[i]))) for i, pair in enumerate(missing))
        probs = np.array([self.cache[p][0] for p in pairs], dtype=np.float32).reshape(len(pairs), -1)
        return Verdicts(probs, np.array([self.cache[p][1] for p in pairs], dtype=np.float32))

    def save(self) -> None:
        if self.path:
            self.path.write_bytes(pickle.dumps(self.cache))


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="rows per split (random sample)")
    ap.add_argument("--fit", action="store_true", help=f"refit and write {PARAMS_PATH}")
    ap.add_argument("--lam", type=float, default=0.01)
    ap.add_argument("--version", default="3", help="the version --fit writes (bump it with every refit)")
    ap.add_argument("--no-latency", action="store_true")
    ap.add_argument("--no-cache", action="store_true", help="do not use the /tmp embedding cache")
    args = ap.parse_args()

    from bot.retrieval.embeddings import LocalEmbedder
    from bot.settings import Settings

    raw = LocalEmbedder(Settings())
    emb = CachingEmbedder(raw, None if args.no_cache else CACHE)
    real_judge = Judge()
    judge = CachingJudge(real_judge, None if args.no_cache else JUDGE_CACHE.with_suffix(f".{real_judge.version}.pkl"))
    groups = load_rows()

    if args.fit:
        t0 = time.time()
        rows = [(ds, r) for ds, split in TRAIN for r in subsample(groups[(ds, split)], args.limit)]
        # The judge was trained on most training questions: its score on those is in-sample and would
        # win every feature choice. The agreement model is fitted on the questions the judge held out.
        held = judge_held_out(real_judge)
        rows = [(ds, r) for ds, r in rows if (ds, str(r["question_id"])) in held]
        print(f"fitting on the judge's held-out training questions: {len(rows)} rows")
        reqs = requests_for([r for _, r in rows])
        y = targets([r for _, r in rows])
        dsn = np.array([ds for ds, _ in rows])
        current = OfflineParams.load()  # the rubric-path settings (tuned on the dev set) carry over
        g = OfflineGrader(emb, params=OfflineParams(), judge=judge)
        feats = g.feature_matrix(reqs)
        emb.save()
        judge.save()
        ok = ~np.isnan(feats).any(axis=1)
        best, model, top = fit(feats[ok], y[ok], dsn[ok], args.lam)
        print(f"features computed in {time.time() - t0:.0f}s; LODO top subsets:")
        for score, subset in top:
            print(f"  {score:.4f}  {subset}")
        thr = choose_hit_threshold(g, [r for r, k in zip(reqs, ok, strict=True) if k], y[ok])
        params = OfflineParams()
        cols = [FEATURES.index(f) for f in best]
        z = model["intercept"] + ((feats[ok][:, cols] - model["mean"]) / model["scale"]) @ np.array(model["coef"])
        out_lo = 0.0  # a wider stretch (e.g. a percentile of wrong answers) clips low scores and costs agreement
        print(f"z on answers marked wrong: 10th percentile {np.percentile(z[y[ok] <= 0.1], 10):.3f}")
        selfs = list({(r.question, r.reference): r for r in reqs}.values())
        self_feats = g.feature_matrix([r.model_copy(update={"answer": r.reference}) for r in selfs])
        self_z = model["intercept"] + ((self_feats[:, cols] - model["mean"]) / model["scale"]) @ np.array(model["coef"])
        out_hi = float(np.nanmedian(self_z))
        emb.save()
        data = {
            "version": args.version,
            "about": "Ridge on standardised features, fitted on SAF training + SemEval-2013 train (Beetle, "
            "SciEntsBank), each dataset weighted equally; features chosen by leave-one-dataset-out. "
            "z = intercept + sum(coef * (f - mean) / scale); "
            "score = 10 * clip((z - out_lo) / (out_hi - out_lo), 0, 1). "
            "See bot/grading/offline/grader.py.",
            "features": list(best),
            "mean": [round(v, 5) for v in model["mean"]],
            "scale": [round(v, 5) for v in model["scale"]],
            "coef": [round(v, 5) for v in model["coef"]],
            "intercept": round(float(model["intercept"]), 5),
            "out_lo": round(out_lo, 5),
            "out_hi": round(out_hi, 5),
            "kp_alpha": params.kp_alpha,
            "hit_threshold": thr,
            "copy_cap": params.copy_cap,
            "no_overlap_cap": params.no_overlap_cap,
            "no_overlap_sem": params.no_overlap_sem,
            "stuffing_ratio": params.stuffing_ratio,
            "stuffing_factor": params.stuffing_factor,
            "stuffing_order": params.stuffing_order,
            "injection_factor": params.injection_factor,
            "contradiction_lex": params.contradiction_lex,
            "contradiction_sem": params.contradiction_sem,
            "contradiction_cap": params.contradiction_cap,
            "max_answer_chars": params.max_answer_chars,
            "max_segments": params.max_segments,
            "min_segment_words": params.min_segment_words,
            "rubric_alpha": current.rubric_alpha,
            "rubric_lo": current.rubric_lo,
            "rubric_hi": current.rubric_hi,
            "rubric_precision": list(current.rubric_precision),
            "keyword_list_ratio": current.keyword_list_ratio,
            "judge_weight": current.judge_weight,
            "judge_contradiction": current.judge_contradiction,
            "fit": {"lambda": args.lam, "rows": int(ok.sum()), "lodo_criterion_mean_min": round(top[0][0], 4)},
        }
        PARAMS_PATH.parent.mkdir(parents=True, exist_ok=True)
        PARAMS_PATH.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {PARAMS_PATH}: {best} coef={data['coef']} hit_threshold={thr}")

    g = OfflineGrader(emb, judge=judge)
    print(f"\nAgreement with human grades ({g.prompt_version}; Pearson / Spearman / RMSE 0–1)")
    header = f"{'split':38} {'n':>5}  " + "  ".join(
        f"{m:^20}" for m in ("(a) cosine", "(b) recall", "(c) mix", "(d) offline")
    )
    print(header)
    print("-" * len(header))
    for ds, split in EVAL:
        eval_rows = subsample(groups[(ds, split)], args.limit)
        y = targets(eval_rows)
        base = baselines(eval_rows, emb)
        grades = g.grade_many(requests_for(eval_rows))
        ours = np.array([(gr.score or 0.0) / 10 for gr in grades])
        emb.save()
        judge.save()
        cells = []
        for pred in (base["cosine"], base["recall"], base["mix"], ours):
            cells.append(f"{pearson(pred, y):.3f} {spearman(pred, y):.3f} {rmse(pred, y):.3f}")
        print(f"{ds + ' ' + split:38} {len(eval_rows):>5}  " + "  ".join(f"{c:^20}" for c in cells))

    if args.no_latency:
        return
    # Latency: the raw (uncached) embedder, typical interview-length answers (SAF rows).
    lat = OfflineGrader(raw)
    saf = [r for r in groups[("saf", "unseen_answers")] if 40 <= len(str(r["student_answer"]).split()) <= 150]
    reqs = requests_for(saf[:120])
    lat.grade(reqs[0])
    cold, warm = [], []
    for r in reqs[:60]:
        lat._refs.clear()
        t = time.perf_counter()
        lat.grade(r)
        cold.append(time.perf_counter() - t)
    for r in reqs[:60]:
        lat.grade(r)  # every reference now cached
    for r in reqs[:60]:
        t = time.perf_counter()
        lat.grade(r)
        warm.append(time.perf_counter() - t)

    def pct(xs: list[float], q: float) -> float:
        return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] * 1000

    print(f"\nlatency per answer (ms), reference already cached: p50 {pct(warm, 0.5):.0f}  p95 {pct(warm, 0.95):.0f}")
    print(f"latency per answer (ms), new reference each time:  p50 {pct(cold, 0.5):.0f}  p95 {pct(cold, 0.95):.0f}")
    words = statistics.mean(len(r.answer.split()) for r in reqs)
    print(f"  (answers {words:.0f} words on average)")
    pool = [r for ds, split in EVAL for r in groups[(ds, split)]]
    batch = requests_for(random.Random(1).sample(pool, 2000))
    fresh = OfflineGrader(raw)
    t = time.perf_counter()
    fresh.grade_many(batch)
    dt = time.perf_counter() - t
    words = statistics.mean(len(r.answer.split()) for r in batch)
    n_refs = len({r.reference for r in batch})
    print(f"grade_many: 2000 answers in {dt:.1f}s ({words:.0f} words on average, {n_refs} references)")
    long_pool = [r for r in groups[("saf", "training")] if 50 <= len(str(r["student_answer"]).split()) <= 150]
    long_batch = requests_for(random.Random(2).choices(long_pool, k=2000))
    fresh = OfflineGrader(raw)
    t = time.perf_counter()
    fresh.grade_many(long_batch)
    dt = time.perf_counter() - t
    words = statistics.mean(len(r.answer.split()) for r in long_batch)
    print(f"grade_many: 2000 interview-length answers in {dt:.1f}s ({words:.0f} words on average)")
    digest = hashlib.sha1(PARAMS_PATH.read_bytes()).hexdigest()[:10]
    print(f"params: {digest}")


if __name__ == "__main__":
    main()
