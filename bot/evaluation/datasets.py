"""Human-graded short answers: the JSON Lines sets in ``../shared/datasets`` and the team's gold set.

:func:`load_dataset` reads JSON Lines (``question``, ``reference_answer``, ``student_answer``,
``score``, ``score_max``); every bad line is reported with its 1-based number and a reason. The same
reader serves the public sets (SAF, SemEval-2013) and ``eval/gold.jsonl`` (split ``gold``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.grading.base import GradeRequest

__all__ = ["REQUIRED", "BadLine", "Example", "is_binary", "load_dataset", "train_split_for"]

REQUIRED = ("question", "reference_answer", "student_answer", "score", "score_max")


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


def is_binary(examples: Sequence[Example]) -> bool:
    """True when every human score is 0 or ``score_max`` (and there is at least one row)."""
    return bool(examples) and all(ex.score in (0.0, ex.score_max) for ex in examples)


def train_split_for(path: Path, examples: Sequence[Example], split: str | None) -> str | None:
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
