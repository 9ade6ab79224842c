"""Agreement statistics between a grader and human grades (``interview eval``).

:func:`compute_metrics` compares on a common 0–1 scale (``score / score_max`` vs ``grade.score / 10``).
Ungraded answers are counted and excluded, never scored 0. Calibrated errors use isotonic
regression cross-fitted by question (grouped 5-fold): no question's rows calibrate itself.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.evaluation.datasets import Example, is_binary
from bot.grading.base import Grade

__all__ = [
    "Metrics",
    "compute_metrics",
    "format_summary",
    "graded_pairs",
    "grouped_folds",
    "isotonic_fit",
    "isotonic_predict",
    "macro_f1",
    "pava",
    "pearson",
    "quadratic_weighted_kappa",
    "rankdata",
    "spearman",
]

K_FOLDS = 5


def _clean(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def pearson(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    """Pearson r; None when fewer than 2 points or either vector is constant."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.size < 2 or a.size != b.size:
        return None
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    if denom <= 1e-12 * max(1.0, float(a.size)):
        return None
    return _clean(max(-1.0, min(1.0, float(np.dot(da, db)) / denom)))


def rankdata(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get the average of their ranks (like ``scipy.stats.rankdata``)."""
    a = np.asarray(x, dtype=float)
    order = np.argsort(a, kind="mergesort")
    sorted_a = a[order]
    ranks = np.empty(a.size, dtype=float)
    if a.size == 0:
        return ranks
    starts = np.flatnonzero(np.r_[True, sorted_a[1:] != sorted_a[:-1]])
    ends = np.r_[starts[1:], a.size]  # exclusive
    avg = (starts + 1 + ends) / 2.0  # mean of ranks start+1 .. end
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float | None:
    return pearson(rankdata(x), rankdata(y))


def quadratic_weighted_kappa(
    human: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray, levels: Sequence[float]
) -> float | None:
    """QWK of two ratings already on ``levels``; weights ``((v_i − v_j) / (max − min))²`` use the
    level values (the usual index form when the levels are evenly spaced). None when undefined."""
    lv = np.asarray(sorted(set(float(v) for v in levels)), dtype=float)
    h, p = np.asarray(human, dtype=float), np.asarray(predicted, dtype=float)
    if lv.size < 2 or h.size == 0:
        return None
    hi = np.abs(h[:, None] - lv[None, :]).argmin(axis=1)
    pi = np.abs(p[:, None] - lv[None, :]).argmin(axis=1)
    k = lv.size
    observed = np.zeros((k, k))
    np.add.at(observed, (hi, pi), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / h.size
    weights = ((lv[:, None] - lv[None, :]) / (lv[-1] - lv[0])) ** 2
    denom = float((weights * expected).sum())
    if denom <= 1e-12:
        return None
    return _clean(1.0 - float((weights * observed).sum()) / denom)


def pava(y: Sequence[float] | np.ndarray, w: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """Pool-adjacent-violators: the non-decreasing fit minimising Σ w·(y − f)², y in given order."""
    ys = np.asarray(y, dtype=float)
    ws = np.ones_like(ys) if w is None else np.asarray(w, dtype=float)
    means: list[float] = []
    weights: list[float] = []
    counts: list[int] = []
    for value, weight in zip(ys.tolist(), ws.tolist(), strict=True):
        means.append(value)
        weights.append(weight)
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            w2 = weights[-2] + weights[-1]
            m2 = (means[-2] * weights[-2] + means[-1] * weights[-1]) / w2
            c2 = counts[-2] + counts[-1]
            del means[-1], weights[-1], counts[-1]
            means[-1], weights[-1], counts[-1] = m2, w2, c2
    return np.repeat(np.asarray(means, dtype=float), counts)


def isotonic_fit(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic regression of y on x: knots (unique x, fitted y); tied x are pooled first."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ux, inverse, counts = np.unique(xs, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ys, minlength=ux.size)
    return ux, pava(sums / counts, counts.astype(float))


def isotonic_predict(knots: tuple[np.ndarray, np.ndarray], x: Sequence[float] | np.ndarray) -> np.ndarray:
    """Linear interpolation between the knots, clamped outside their range."""
    kx, ky = knots
    out: np.ndarray = np.interp(np.asarray(x, dtype=float), kx, ky)
    return out


def grouped_folds(groups: Sequence[str], k: int = K_FOLDS) -> np.ndarray:
    """Fold index per row; every group (question) sits wholly in one fold. Deterministic: groups,
    largest first (ties by id), go to the fold with the fewest rows so far. ``k`` ≤ number of groups."""
    sizes = Counter(groups)
    k = max(1, min(k, len(sizes)))
    load = [0] * k
    fold_of: dict[str, int] = {}
    for group, size in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        f = min(range(k), key=lambda i: (load[i], i))
        fold_of[group] = f
        load[f] += size
    return np.asarray([fold_of[g] for g in groups], dtype=int)


def macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """Macro-F1 over the two classes of boolean vectors (a class absent on both sides scores 1)."""
    scores = []
    for cls in (True, False):
        tp = float(np.sum((pred == cls) & (truth == cls)))
        fp = float(np.sum((pred == cls) & (truth != cls)))
        fn = float(np.sum((pred != cls) & (truth == cls)))
        scores.append(1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / 2


def _best_threshold(p: np.ndarray, truth: np.ndarray) -> float | None:
    """Threshold on the 0–1 grader scale maximising macro-F1 (predict positive when p ≥ t).
    Candidates: midpoints between distinct scores and the ends; ties go to the middle candidate."""
    if p.size == 0:
        return None
    u = np.unique(p)
    cands = np.r_[u[0] - 1e-6, (u[1:] + u[:-1]) / 2, u[-1] + 1e-6]
    sp = np.sort(p)
    pos_sorted = np.sort(p[truth])
    npos, n = int(truth.sum()), p.size
    pred_pos = n - np.searchsorted(sp, cands, side="left")
    tp = npos - np.searchsorted(pos_sorted, cands, side="left")
    fp = pred_pos - tp
    fn = npos - tp
    tn = n - npos - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        f_pos = np.where(2 * tp + fp + fn == 0, 1.0, 2 * tp / (2 * tp + fp + fn))
        f_neg = np.where(2 * tn + fn + fp == 0, 1.0, 2 * tn / (2 * tn + fn + fp))
    f = (f_pos + f_neg) / 2
    best = np.flatnonzero(f >= f.max() - 1e-12)
    return float(np.clip(cands[best[len(best) // 2]], 0.0, 1.0))


# --------------------------------------------------------------------------- metrics


@dataclass
class Metrics:
    n: int = 0
    ungraded: int = 0
    pearson: float | None = None
    spearman: float | None = None
    qwk: float | None = None
    rmse: float | None = None
    mae: float | None = None
    rmse_calibrated: float | None = None
    mae_calibrated: float | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    threshold: float | None = None
    threshold_source: str | None = None  # "train" | "cv" | "unavailable" | None (not binary)
    binary: bool = False
    grader: str = ""
    dataset: str = ""
    split: str | None = None
    seconds: float | None = None
    bad_lines: int = 0

    KEYS = (
        "n",
        "ungraded",
        "pearson",
        "spearman",
        "qwk",
        "rmse",
        "mae",
        "rmse_calibrated",
        "mae_calibrated",
        "accuracy",
        "macro_f1",
        "threshold",
        "threshold_source",
        "binary",
        "grader",
        "dataset",
        "split",
        "seconds",
        "bad_lines",
    )

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in self.KEYS:
            value = getattr(self, key)
            out[key] = round(value, 4) if isinstance(value, float) else value
        return out


def graded_pairs(examples: Sequence[Example], grades: Sequence[Grade]) -> tuple[list[int], np.ndarray, np.ndarray]:
    if len(examples) != len(grades):
        raise ValueError(f"{len(examples)} examples but {len(grades)} grades")
    idx = [i for i, g in enumerate(grades) if g.graded and g.score is not None]
    h = np.asarray([examples[i].human for i in idx], dtype=float)
    p = np.asarray([float(grades[i].score or 0.0) / 10.0 for i in idx], dtype=float)
    return idx, h, p


def _cross_fit_calibration(p: np.ndarray, h: np.ndarray, groups: Sequence[str]) -> np.ndarray | None:
    """Out-of-fold isotonic predictions: each fold is calibrated on the other folds' questions only."""
    folds = grouped_folds(groups)
    if folds.size == 0 or folds.max() < 1:
        return None
    out = np.empty_like(p)
    for f in range(int(folds.max()) + 1):
        test = folds == f
        knots = isotonic_fit(p[~test], h[~test])
        out[test] = isotonic_predict(knots, p[test])
    return out


def _cv_threshold_predictions(p: np.ndarray, truth: np.ndarray, groups: Sequence[str]) -> tuple[np.ndarray, float]:
    folds = grouped_folds(groups)
    pred = np.zeros(p.size, dtype=bool)
    chosen = []
    for f in range(int(folds.max()) + 1):
        test = folds == f
        t = _best_threshold(p[~test], truth[~test])
        t = 0.5 if t is None else t
        chosen.append(t)
        pred[test] = p[test] >= t
    return pred, float(np.median(chosen))


def compute_metrics(
    examples: Sequence[Example],
    grades: Sequence[Grade],
    *,
    train_examples: Sequence[Example] | None = None,
    train_grades: Sequence[Grade] | None = None,
    grader: str = "",
    dataset: str = "",
    split: str | None = None,
    seconds: float | None = None,
    bad_lines: int = 0,
) -> Metrics:
    """Agreement metrics; see the module docstring. Ungraded answers are counted, not scored.

    Binary datasets (every human score 0 or ``score_max``): ``accuracy`` / ``macro_f1`` at a threshold
    maximising macro-F1 on the graded training rows when given (``threshold_source="train"``), else
    out-of-fold by grouped 5-fold CV on the evaluated rows (``"cv"``, ``threshold`` = median of folds).
    ``qwk`` uses those binary predictions; on other datasets predictions are rounded to the nearest
    human score level present. Calibrated errors: isotonic regression cross-fitted by question.
    """
    idx, h, p = graded_pairs(examples, grades)
    graded_examples = [examples[i] for i in idx]
    groups = [ex.question_id for ex in graded_examples]
    m = Metrics(
        n=len(idx),
        ungraded=len(examples) - len(idx),
        binary=is_binary(examples),
        grader=grader or _grader_name(grades),
        dataset=dataset,
        split=split,
        seconds=seconds,
        bad_lines=bad_lines,
    )
    if not idx:
        if m.binary:
            m.threshold_source = "unavailable"
        return m
    m.pearson = pearson(h, p)
    m.spearman = spearman(h, p)
    m.rmse = _clean(math.sqrt(float(np.mean((p - h) ** 2))))
    m.mae = _clean(float(np.mean(np.abs(p - h))))
    calibrated = _cross_fit_calibration(p, h, groups)
    if calibrated is not None:
        m.rmse_calibrated = _clean(math.sqrt(float(np.mean((calibrated - h) ** 2))))
        m.mae_calibrated = _clean(float(np.mean(np.abs(calibrated - h))))
    levels = sorted(set(h.tolist()))
    if m.binary:
        truth = h >= 0.5
        pred: np.ndarray | None = None
        if train_examples is not None and train_grades is not None:
            _, th, tp = graded_pairs(train_examples, train_grades)
            t = _best_threshold(tp, th >= 0.5)
            if t is not None:
                m.threshold, m.threshold_source = t, "train"
                pred = p >= t
        if pred is None and len(set(groups)) >= 2:
            pred, m.threshold = _cv_threshold_predictions(p, truth, groups)
            m.threshold_source = "cv"
        if pred is None:
            m.threshold_source = "unavailable"
        else:
            m.accuracy = float(np.mean(pred == truth))
            m.macro_f1 = macro_f1(truth, pred)
            m.qwk = quadratic_weighted_kappa(truth.astype(float), pred.astype(float), [0.0, 1.0])
    else:
        m.qwk = quadratic_weighted_kappa(h, p, levels)
    return m


def _grader_name(grades: Sequence[Grade]) -> str:
    names = Counter(g.grader for g in grades if g.grader)
    return names.most_common(1)[0][0] if names else ""


def format_summary(metrics: Metrics) -> str:
    """Plain-text lines for the terminal."""
    lines = []
    for key, value in metrics.as_dict().items():
        if value is None and key in ("accuracy", "macro_f1", "threshold", "threshold_source"):
            continue
        shown = "—" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))
        lines.append(f"{key:<16} {shown}")
    return "\n".join(lines)
