"""The offline grader's fitted numbers: ``params.json`` next to this module, required.

Written by ``bench/offline_agreement.py --fit``; see :mod:`bot.grading.offline.grader` for what
each number does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FEATURES", "JUDGE_FEATURES", "PARAMS_PATH", "OfflineParams", "OfflineParamsError"]

PARAMS_PATH = Path(__file__).resolve().parent / "params.json"
FEATURES = (
    "rec",
    "rec_plain",
    "prec",
    "cos",
    "cos_q",
    "cos_dem",
    "kp",
    "kp_sem",
    "kp_lex",
    "len",
    "j_ref",  # the trained judge's score of the answer against the whole reference (one pair per answer)
)
JUDGE_FEATURES = frozenset({"j_ref"})


class OfflineParamsError(ValueError):
    """The parameters file is missing, unreadable or inconsistent."""


@dataclass
class OfflineParams:
    """The grader's fitted numbers. The defaults are only a starting point for refitting
    (``bench/offline_agreement.py --fit``); graders load ``params.json`` (:meth:`load`)."""

    version: str = "unfitted"
    features: tuple[str, ...] = ("rec", "cos", "kp", "len")
    mean: tuple[float, ...] = (0.35, 0.55, 0.45, 0.6)
    scale: tuple[float, ...] = (0.25, 0.18, 0.15, 0.4)
    coef: tuple[float, ...] = (0.12, 0.1, 0.08, 0.04)
    intercept: float = 0.5
    out_lo: float = 0.0
    out_hi: float = 1.0
    kp_alpha: float = 0.5
    hit_threshold: float = 0.5
    copy_cap: float = 1.0
    no_overlap_cap: float = 2.0
    no_overlap_sem: float = 0.3
    stuffing_ratio: float = 0.35
    stuffing_factor: float = 0.4
    stuffing_order: float = 0.3
    injection_factor: float = 0.8
    contradiction_lex: float = 0.8
    contradiction_sem: float = 0.7
    contradiction_cap: float = 10.0
    max_answer_chars: int = 6000
    max_segments: int = 16
    min_segment_words: int = 12
    # Grading against a rubric (team-written development set, bench/rubric_devset.py): a point's credit is
    # clip((m - rubric_lo) / (rubric_hi - rubric_lo), 0, 1) with m = rubric_alpha·cosine + (1 - rubric_alpha)·
    # lexical recall; correctness 3/2/1/0 when the answer's precision (its content words found in the
    # note) reaches rubric_precision[0]/[1]/[2]/below; an answer of at least 6 words with a function-word
    # ratio under keyword_list_ratio is a keyword list.
    rubric_alpha: float = 0.2
    rubric_lo: float = 0.15
    rubric_hi: float = 0.55
    rubric_precision: tuple[float, ...] = (0.5, 0.35, 0.2)
    keyword_list_ratio: float = 0.1
    # The trained judge (bot/grading/judge) against a rubric: a point's credit is judge_weight·(p_entails +
    # ½·p_partial) + (1 − judge_weight)·(the lexical/semantic credit above); a point is contradicted when
    # p_contradicts ≥ judge_contradiction and above p_entails. judge_weight 0 and judge_contradiction > 1:
    # the judge is not used (nor loaded, unless a j_* feature is).
    judge_weight: float = 0.0
    judge_contradiction: float = 2.0
    # The judge on (whole reference, answer): the answer contradicts the note when p_contradicts ≥
    # judge_answer_contradiction and above p_entails; then the key point nearest the answer's words is
    # marked contradicted (which caps the score, compute_score). > 1: not used.
    judge_answer_contradiction: float = 2.0
    # Against a rubric, the score is (1 − judge_answer_weight)·(the checklist's score) + judge_answer_weight
    # ·10·(the judge's score of the whole answer), a contradiction still capping it. 0: not used.
    judge_answer_weight: float = 0.0
    # Against a rubric, the score s (0–10, after the guards) is finally read on the scale the judge's
    # held-out interview questions were graded on: 10·clip((s/10 − rubric_scale_lo) / (rubric_scale_hi −
    # rubric_scale_lo), 0, 1), a contradiction still capping it (OfflineGrader.rescale). 0 and 1: as is.
    rubric_scale_lo: float = 0.0
    rubric_scale_hi: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def judges_points(self) -> bool:
        """The judge reads every rubric point (against a rubric only)."""
        return self.judge_weight > 0 or self.judge_contradiction <= 1

    @property
    def uses_judge(self) -> bool:
        return self.judges_points or self.judges_answer or bool(JUDGE_FEATURES & set(self.features))

    @property
    def judges_answer(self) -> bool:
        """The judge reads (whole reference, answer) pairs."""
        return self.judge_answer_contradiction <= 1 or self.judge_answer_weight > 0 or "j_ref" in self.features

    @classmethod
    def load(cls, path: Path | None = None) -> OfflineParams:
        """The fitted parameters in ``path`` (default: ``params.json`` next to this module).

        The file is required: without it the grader would score with unfitted numbers under a
        version that claims otherwise. Raises :class:`OfflineParamsError` naming the path.
        """
        path = path or PARAMS_PATH
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise OfflineParamsError(
                f"{path}: the offline grader's parameters file is missing (reinstall the package, "
                "or refit it with bench/offline_agreement.py --fit)"
            ) from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise OfflineParamsError(f"{path}: cannot read the offline grader's parameters ({exc})") from exc
        if not isinstance(raw, dict) or not isinstance(raw.get("version"), str) or not raw["version"]:
            raise OfflineParamsError(f'{path}: not an offline parameters file (no "version")')
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        for key in ("features", "mean", "scale", "coef", "rubric_precision"):
            if key in known:
                known[key] = tuple(known[key])
        try:
            params = cls(**known)
        except TypeError as exc:
            raise OfflineParamsError(f"{path}: {exc}") from exc
        if not (len(params.features) == len(params.mean) == len(params.scale) == len(params.coef)):
            raise OfflineParamsError(f"{path}: features/mean/scale/coef lengths differ")
        unknown = set(params.features) - set(FEATURES)
        if unknown:
            raise OfflineParamsError(f"{path}: unknown features {sorted(unknown)}")
        return params
