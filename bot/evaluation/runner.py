"""Evaluate a grader against human-graded short answers (the core of ``interview eval``).

Framework-free: the CLI calls :func:`evaluate` (or the pieces below) and prints
:meth:`Metrics.as_dict` / :func:`format_summary`, optionally writing :func:`write_report`.

* :func:`load_dataset` reads JSON Lines (``question``, ``reference_answer``, ``student_answer``,
  ``score``, ``score_max``); every bad line is reported with its 1-based number and a reason.
* :func:`grade_examples` grades in batches with the grader's ``agrade_many`` (one embedding pass
  per batch for the offline grader, bounded concurrency for a model).
* :func:`compute_metrics` compares on a common 0–1 scale (``score / score_max`` vs ``grade.score / 10``).
  Ungraded answers are counted and excluded, never scored 0. Calibrated errors use isotonic
  regression cross-fitted by question (grouped 5-fold): no question's rows calibrate itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import html
import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.grading.base import DEFAULT_CONCURRENCY, Grade, Grader, GradeRequest, ungraded

__all__ = [
    "BadLine",
    "EvalRun",
    "Example",
    "Metrics",
    "compute_metrics",
    "evaluate",
    "format_summary",
    "grade_examples",
    "grouped_folds",
    "isotonic_fit",
    "isotonic_predict",
    "load_dataset",
    "macro_f1",
    "pava",
    "pearson",
    "quadratic_weighted_kappa",
    "rankdata",
    "spearman",
    "write_report",
]

REQUIRED = ("question", "reference_answer", "student_answer", "score", "score_max")
K_FOLDS = 5

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class Example:
    """One human-graded answer. ``human`` is the score on the common 0–1 scale."""

    question: str
    reference_answer: str
    student_answer: str
    score: float
    score_max: float
    question_id: str
    split: str | None = None
    line: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def human(self) -> float:
        return self.score / self.score_max

    @property
    def subset(self) -> str | None:
        """The ``dataset`` field some files carry (SemEval: beetle / sciEntsBank)."""
        value = self.extra.get("dataset")
        return value if isinstance(value, str) else None

    def request(self) -> GradeRequest:
        return GradeRequest(
            question=self.question,
            reference=self.reference_answer,
            answer=self.student_answer,
            card_id=self.question_id,
        )


@dataclass(frozen=True)
class BadLine:
    line: int  # 1-based
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def _derived_question_id(question: str) -> str:
    norm = " ".join(question.split()).casefold()
    return "q-" + hashlib.sha1(norm.encode("utf-8")).hexdigest()[:12]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _split_matches(record: dict[str, Any], split: str) -> bool:
    """``split`` is a split name (``test-unseen-domains``) or ``dataset:split`` / ``dataset/split``."""
    rec_split = record.get("split")
    for sep in (":", "/"):
        if sep in split:
            subset, _, name = split.partition(sep)
            return str(record.get("dataset", "")).casefold() == subset.casefold() and rec_split == name
    return rec_split == split


def _parse_record(record: Any, line: int) -> Example | str:
    if not isinstance(record, dict):
        return f"expected a JSON object, got {type(record).__name__}"
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        return "missing field(s): " + ", ".join(missing)
    for key in ("question", "reference_answer"):
        if not isinstance(record[key], str) or not record[key].strip():
            return f"{key} must be a non-empty string"
    if not isinstance(record["student_answer"], str):
        return "student_answer must be a string"
    score, score_max = _number(record["score"]), _number(record["score_max"])
    if score is None:
        return f"score is not a finite number: {record['score']!r}"
    if score_max is None:
        return f"score_max is not a finite number: {record['score_max']!r}"
    if score_max <= 0:
        return f"score_max must be > 0, got {score_max:g}"
    if not 0 <= score <= score_max:
        return f"score {score:g} outside [0, {score_max:g}]"
    qid = record.get("question_id")
    question_id = str(qid) if isinstance(qid, (str, int)) and str(qid).strip() else None
    split = record.get("split")
    extra = {k: v for k, v in record.items() if k not in REQUIRED and k not in ("question_id", "split")}
    return Example(
        question=record["question"],
        reference_answer=record["reference_answer"],
        student_answer=record["student_answer"],
        score=score,
        score_max=score_max,
        question_id=question_id or _derived_question_id(record["question"]),
        split=split if isinstance(split, str) else None,
        line=line,
        extra=extra,
    )


def load_dataset(
    path: str | Path, *, split: str | None = None, limit: int | None = None, seed: int = 0
) -> tuple[list[Example], list[BadLine]]:
    """Read a JSON Lines dataset; bad lines are skipped and returned, never dropped silently.

    ``split`` keeps rows whose ``split`` equals it (``dataset:split`` also filters on ``dataset``);
    bad lines whose split is known to be another one are outside the selection and not reported.
    ``limit`` is a seeded random sample taken after the split filter (rows keep file order).
    Whitespace-only lines are not records and are skipped. Raises ``ValueError`` when ``split``
    matches no row (the message lists the splits present) or ``limit`` is negative.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    examples: list[Example] = []
    bad: list[BadLine] = []
    seen_splits: Counter[str] = Counter()
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad.append(BadLine(number, f"not UTF-8 ({exc.reason} at byte {exc.start})"))
                continue
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                bad.append(BadLine(number, f"invalid JSON: {exc.msg} (column {exc.colno})"))
                continue
            if isinstance(record, dict) and isinstance(record.get("split"), str):
                label = record["split"]
                if isinstance(record.get("dataset"), str):
                    label = f"{record['dataset']}:{label}"
                seen_splits[label] += 1
                if split is not None and not _split_matches(record, split):
                    continue
            parsed = _parse_record(record, number)
            if isinstance(parsed, str):
                bad.append(BadLine(number, parsed))
            elif split is None or _split_matches(record, split):
                examples.append(parsed)
    if split is not None and not examples and not bad:
        present = ", ".join(f"{k} ({v})" for k, v in sorted(seen_splits.items())) or "none"
        raise ValueError(f"no rows with split {split!r}; splits present: {present}")
    if limit is not None and limit < len(examples):
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(examples), size=limit, replace=False))
        examples = [examples[int(i)] for i in keep]
    return examples, bad


# --------------------------------------------------------------------------- grading


async def agrade_requests(
    requests: Sequence[GradeRequest],
    grader: Grader,
    *,
    progress: Progress | None = None,
    batch_size: int = 64,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[Grade]:
    """One grade per request, in order, through ``grader.agrade_many`` in batches of ``batch_size``
    (at most ``concurrency`` model calls at once). Never raises for a failing batch: its answers
    become ``ungraded``. ``progress(done, total)`` after each batch."""
    total = len(requests)
    out: list[Grade] = []
    step = max(1, batch_size)
    for start in range(0, total, step):
        chunk = list(requests[start : start + step])
        try:
            got = await grader.agrade_many(chunk, concurrency=concurrency)
            if len(got) != len(chunk):
                raise RuntimeError(f"agrade_many returned {len(got)} grades for {len(chunk)} answers")
        except Exception as exc:
            reason = f"grader failed: {type(exc).__name__}: {exc}"
            got = [ungraded(reason, grader=grader.name, prompt_version=grader.prompt_version) for _ in chunk]
        out.extend(got)
        if progress is not None:
            progress(len(out), total)
    return out


def grade_examples(
    examples: Sequence[Example],
    grader: Grader,
    *,
    progress: Progress | None = None,
    batch_size: int = 64,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[Grade]:
    """Synchronous :func:`agrade_requests` over the examples' requests."""

    def run() -> list[Grade]:
        return asyncio.run(
            agrade_requests(
                [ex.request() for ex in examples],
                grader,
                progress=progress,
                batch_size=batch_size,
                concurrency=concurrency,
            )
        )

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    # Called from inside an event loop (e.g. a notebook): run the batch on a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


# --------------------------------------------------------------------------- statistics


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


def _graded_pairs(examples: Sequence[Example], grades: Sequence[Grade]) -> tuple[list[int], np.ndarray, np.ndarray]:
    if len(examples) != len(grades):
        raise ValueError(f"{len(examples)} examples but {len(grades)} grades")
    idx = [i for i, g in enumerate(grades) if g.graded and g.score is not None]
    h = np.asarray([examples[i].human for i in idx], dtype=float)
    p = np.asarray([float(grades[i].score or 0.0) / 10.0 for i in idx], dtype=float)
    return idx, h, p


def _is_binary(examples: Sequence[Example]) -> bool:
    return bool(examples) and all(ex.score in (0.0, ex.score_max) for ex in examples)


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
    idx, h, p = _graded_pairs(examples, grades)
    graded_examples = [examples[i] for i in idx]
    groups = [ex.question_id for ex in graded_examples]
    m = Metrics(
        n=len(idx),
        ungraded=len(examples) - len(idx),
        binary=_is_binary(examples),
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
            _, th, tp = _graded_pairs(train_examples, train_grades)
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


# --------------------------------------------------------------------------- end to end


@dataclass
class EvalRun:
    examples: list[Example]
    grades: list[Grade]
    metrics: Metrics
    bad_lines: list[BadLine]
    train_examples: list[Example] = field(default_factory=list)
    train_grades: list[Grade] = field(default_factory=list)


def _train_split_for(path: Path, examples: Sequence[Example], split: str | None) -> str | None:
    """The file's training split for the evaluated rows (same ``dataset`` when they share one)."""
    names: Counter[str] = Counter()
    subsets = {ex.subset for ex in examples}
    subset = next(iter(subsets)) if len(subsets) == 1 else None
    with path.open("rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if (
                isinstance(rec, dict)
                and isinstance(rec.get("split"), str)
                and "train" in rec["split"].casefold()
                and (subset is None or rec.get("dataset") == subset)
            ):
                names[rec["split"]] += 1
    evaluated = split.split(":")[-1].split("/")[-1] if split else None
    names.pop(evaluated or "", None)
    if not names:
        return None
    name = names.most_common(1)[0][0]
    return f"{subset}:{name}" if subset else name


def evaluate(
    path: str | Path,
    grader: Grader,
    *,
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    train_split: str | None = "auto",
    train_limit: int = 400,
    progress: Progress | None = None,
    batch_size: int = 256,
) -> EvalRun:
    """Load, grade and score. For a binary dataset with a training split in the file (``"auto"``:
    a split whose name contains "train", same ``dataset``), a seeded sample of ``train_limit`` of its
    rows is graded too and chooses the threshold; ``train_split=None`` or ``train_limit=0`` → grouped CV.
    ``progress`` sees the evaluated rows, then the training rows."""
    path = Path(path)
    start = time.perf_counter()
    examples, bad = load_dataset(path, split=split, limit=limit, seed=seed)
    grades = grade_examples(examples, grader, progress=progress, batch_size=batch_size)
    train_ex: list[Example] = []
    train_gr: list[Grade] = []
    if _is_binary(examples) and train_split and train_limit > 0:
        name = _train_split_for(path, examples, split) if train_split == "auto" else train_split
        if name and name != split:
            train_ex, _ = load_dataset(path, split=name, limit=train_limit, seed=seed)
            train_ex = [ex for ex in train_ex if _is_binary([ex])]
            train_gr = grade_examples(train_ex, grader, progress=progress, batch_size=batch_size)
    subsets = {ex.subset for ex in examples} - {None}
    dataset = path.stem + (f" ({next(iter(subsets))})" if len(subsets) == 1 else "")
    metrics = compute_metrics(
        examples,
        grades,
        train_examples=train_ex or None,
        train_grades=train_gr or None,
        grader=str(getattr(grader, "name", "")),
        dataset=dataset,
        split=split,
        bad_lines=len(bad),
    )
    metrics.seconds = round(time.perf_counter() - start, 2)
    return EvalRun(examples, grades, metrics, bad, train_ex, train_gr)


# --------------------------------------------------------------------------- report


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
    idx, h, p = _graded_pairs(examples, grades)
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
