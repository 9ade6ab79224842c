"""Agreement statistics between a grader and human grades (``interview eval``).

:func:`compute_metrics` compares on a common 0–1 scale (``score / score_max`` vs ``grade.score / 10``).
Ungraded answers are counted and excluded, never scored 0. Calibrated errors use isotonic
regression cross-fitted by question (grouped 5-fold): no question's rows calibrate itself.

The statistics themselves are scipy's and scikit-learn's. They are imported on first use (about
1.5–2 s together), so importing :mod:`bot.evaluation.runner` or ``simulate`` stays cheap.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
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
    "isotonic_calibration",
    "macro_f1",
    "pearson",
    "quadratic_weighted_kappa",
    "spearman",
]

K_FOLDS = 5
GRID_DENOMINATOR = 1000  # levels are read as fractions with at most this denominator
MAX_GRID = 1001  # longest even grid of score levels for the kappa weights
Vector = Sequence[float] | np.ndarray


def _clean(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _correlatable(x: Vector, y: Vector) -> tuple[np.ndarray, np.ndarray] | None:
    """Both vectors as floats, or None when a correlation is undefined: fewer than 2 points,
    different lengths, or a constant vector (where scipy would warn and return NaN)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.size < 2 or a.size != b.size or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return a, b


def pearson(x: Vector, y: Vector) -> float | None:
    """Pearson r (``scipy.stats.pearsonr``); None when fewer than 2 points or either vector is constant."""
    from scipy.stats import pearsonr

    pair = _correlatable(x, y)
    return None if pair is None else _clean(float(pearsonr(*pair).statistic))


def spearman(x: Vector, y: Vector) -> float | None:
    """Spearman ρ (``scipy.stats.spearmanr``, ties get average ranks); None like :func:`pearson`."""
    from scipy.stats import spearmanr

    pair = _correlatable(x, y)
    return None if pair is None else _clean(float(spearmanr(*pair).statistic))


def _grid_codes(levels: np.ndarray) -> np.ndarray:
    """Each level's position on the coarsest even grid from the lowest level that holds them all
    (levels read as fractions with denominators ≤ ``GRID_DENOMINATOR``), so that index distances are
    value distances: levels 0, 0.25, 1 → 0, 1, 4. The levels' own ranks when that grid would be
    longer than ``MAX_GRID`` points."""
    steps = [Fraction(float(v - levels[0])).limit_denominator(GRID_DENOMINATOR) for v in levels[1:]]
    denominator = math.lcm(*(s.denominator for s in steps))
    unit = Fraction(math.gcd(*(s.numerator * (denominator // s.denominator) for s in steps)), denominator)
    codes = np.asarray([0] + [int(s / unit) for s in steps], dtype=int)
    return codes if codes[-1] < MAX_GRID else np.arange(levels.size)


def quadratic_weighted_kappa(human: Vector, predicted: Vector, levels: Sequence[float]) -> float | None:
    """QWK (``sklearn.metrics.cohen_kappa_score(weights="quadratic")``) of two ratings, each snapped to
    the nearest of ``levels``. The weights are ``((v_i − v_j) / (max − min))²`` on the level values:
    the levels are placed on an even grid (:func:`_grid_codes`), so a level absent from the set does
    not make its neighbours adjacent. None when undefined (one level, no rows, no expected disagreement)."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import cohen_kappa_score

    lv = np.unique(np.asarray(levels, dtype=float))
    h, p = np.asarray(human, dtype=float), np.asarray(predicted, dtype=float)
    if lv.size < 2 or h.size == 0:
        return None
    codes = _grid_codes(lv)
    hi = codes[np.abs(h[:, None] - lv[None, :]).argmin(axis=1)]
    pi = codes[np.abs(p[:, None] - lv[None, :]).argmin(axis=1)]
    with warnings.catch_warnings():  # undefined (e.g. one category on both sides): NaN → None below
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        kappa = cohen_kappa_score(hi, pi, labels=np.arange(codes[-1] + 1), weights="quadratic")
    return _clean(float(kappa))


def grouped_folds(groups: Sequence[str], k: int = K_FOLDS) -> np.ndarray:
    """Fold index per row from ``sklearn.model_selection.GroupKFold``: every group (question) sits
    wholly in one fold; groups, largest first, go to the fold with the fewest rows so far
    (deterministic). ``k`` is capped at the number of groups; a single group is fold 0."""
    from sklearn.model_selection import GroupKFold

    folds = np.zeros(len(groups), dtype=int)
    k = min(k, len(set(groups)))
    if k < 2:
        return folds
    splits = GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=np.asarray(groups, dtype=object))
    for f, (_, test) in enumerate(splits):
        folds[test] = f
    return folds


def isotonic_calibration(train_x: np.ndarray, train_y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``sklearn.isotonic.IsotonicRegression`` of y on x (tied x pooled), applied to ``x``: linear
    between the fitted points, clamped outside their range."""
    from sklearn.isotonic import IsotonicRegression

    model = IsotonicRegression(out_of_bounds="clip").fit(train_x, train_y)
    out: np.ndarray = model.predict(x)
    return out


def macro_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    """Macro-F1 over the two classes of boolean vectors (``sklearn.metrics.f1_score``; a class
    absent on both sides scores 1)."""
    from sklearn.metrics import f1_score

    return float(f1_score(truth, pred, labels=[True, False], average="macro", zero_division=1.0))


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
        out[test] = isotonic_calibration(p[~test], h[~test], p[test])
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
