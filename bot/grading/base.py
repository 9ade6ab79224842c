"""One result type for every grader, the request it grades, and the grader interface.

A grade that could not be produced is ``ungraded`` with a reason — never a score of 0.
The score is always computed in code from per-criterion levels and the claim checklist
(:func:`compute_score`), never taken from a model's free-form number.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field, model_validator

from bot.grading.calibration import CalibrationExample
from bot.grading.rubric import Rubric

__all__ = [
    "BANDS",
    "BAND_FLOORS",
    "DEFAULT_CONCURRENCY",
    "SCORE_STEP",
    "SCORE_WEIGHTS",
    "Band",
    "BandEdges",
    "Claim",
    "ClaimStatus",
    "Criteria",
    "FeedbackDelta",
    "Grade",
    "GradeEvent",
    "GradeRequest",
    "Grader",
    "OneShotGrader",
    "ScoreWeights",
    "Usage",
    "band_for",
    "compute_score",
    "grade_each",
    "grade_sync",
    "stream_whole",
    "ungraded",
]


class Band(StrEnum):
    WRONG = "wrong"
    WEAK = "weak"
    PARTIAL = "partial"
    GOOD = "good"
    EXCELLENT = "excellent"


@dataclass(frozen=True)
class BandEdges:
    """Lower bounds (inclusive) of the bands on the 0–10 scale; below ``weak`` is wrong.

    The one place these numbers live: grades get their band from them, the scheduler's default
    ratings (Again below ``partial``, Hard below ``good``, Easy from ``excellent``), the report's
    colours and its list of weakest answers follow them.
    """

    weak: float = 2.0
    partial: float = 4.0
    good: float = 6.5
    excellent: float = 8.5

    def __post_init__(self) -> None:
        if not 0 < self.weak <= self.partial <= self.good <= self.excellent <= 10:
            raise ValueError(f"band edges must satisfy 0 < weak <= partial <= good <= excellent <= 10, got {self}")


BANDS = BandEdges()

# The same edges as (floor, band) pairs, best first.
BAND_FLOORS: tuple[tuple[float, Band], ...] = (
    (BANDS.excellent, Band.EXCELLENT),
    (BANDS.good, Band.GOOD),
    (BANDS.partial, Band.PARTIAL),
    (BANDS.weak, Band.WEAK),
    (0.0, Band.WRONG),
)

SCORE_STEP = 0.1  # scores are rounded to one decimal


def band_for(score: float) -> Band:
    for floor, band in BAND_FLOORS:
        if score >= floor:
            return band
    return Band.WRONG


class ClaimStatus(StrEnum):
    HIT = "hit"
    MISSED = "missed"
    CONTRADICTED = "contradicted"


class Claim(BaseModel):
    """One key point of the reference and what the answer did with it."""

    point: str
    status: ClaimStatus
    evidence: str = Field("", description="The answer's own words supporting the status, if any.")
    label: str = Field("", description="The rubric's short name for the point, when graded against one.")
    weight: Literal["core", "detail", ""] = Field("", description="The rubric's weight of the point, if any.")
    credit: float | None = Field(
        None, ge=0, le=1, description="How much of the point the answer covers (offline grader); None: by status."
    )


class Criteria(BaseModel):
    """Small anchored levels; the score is computed from them in code."""

    correctness: int = Field(ge=0, le=3, description="0 central error · 1 notable error · 2 minor slip · 3 no errors")
    depth: int = Field(ge=0, le=2, description="0 bare terms · 1 explains what · 2 explains why/how")


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = Field(None, description="Estimate from the configured per-token prices, if known.")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ScoreWeights:
    """How :func:`compute_score` weighs the checklist and the criteria, and where it caps them."""

    coverage: float = 0.6  # hits over key points, contradictions count against
    # With a rubric: the share of coverage the core points carry (details add the rest, for depth).
    core_share: float = 0.8
    correctness: float = 0.3
    depth: float = 0.1
    contradiction_penalty: float = 0.5  # a contradicted point takes back half a hit
    # A contradiction or a central error keeps the score in the weak band at best …
    contradiction_cap: float = BANDS.partial - SCORE_STEP
    # … and an answer that hits no key point in the wrong band.
    no_coverage_cap: float = BANDS.weak - SCORE_STEP

    def __post_init__(self) -> None:
        total = self.coverage + self.correctness + self.depth
        if abs(total - 1) > 1e-9:
            raise ValueError(f"score weights coverage + correctness + depth must add up to 1, got {total:g}")
        if not 0 < self.core_share <= 1:
            raise ValueError(f"core_share must be in (0, 1], got {self.core_share:g}")


SCORE_WEIGHTS = ScoreWeights()


def _coverage(claims: Sequence[Claim], weights: ScoreWeights) -> float:
    """Hits over key points (a contradiction takes back ``contradiction_penalty`` of a hit; a claim with a
    ``credit`` counts that much, hit or missed). When the
    claims carry rubric weights, core points carry ``core_share`` of it and details the rest (all of it
    goes to the core when the rubric has no details)."""

    def share(group: Sequence[Claim]) -> float:
        hits = sum(
            (c.credit if c.credit is not None else 1.0) if c.status is ClaimStatus.HIT else (c.credit or 0.0)
            for c in group
            if c.status is not ClaimStatus.CONTRADICTED
        )
        contradicted = sum(c.status is ClaimStatus.CONTRADICTED for c in group)
        return max(0.0, (hits - weights.contradiction_penalty * contradicted) / len(group))

    core = [c for c in claims if c.weight != "detail"]
    detail = [c for c in claims if c.weight == "detail"]
    if not detail or not core:
        return share(claims)
    return weights.core_share * share(core) + (1 - weights.core_share) * share(detail)


def compute_score(claims: list[Claim], criteria: Criteria, weights: ScoreWeights = SCORE_WEIGHTS) -> float:
    """0–10 from the checklist and the criteria levels — the one scoring formula of both graders.

    ``10 · (coverage_w · coverage + correctness_w · correctness/3 + depth_w · depth/2)`` with the weights
    of :data:`SCORE_WEIGHTS`. Coverage is hits over key points, contradictions counting against; with a
    rubric the core points carry ``core_share`` of it and the details the rest, so an answer covering
    every core point in its own words, correct and explained, scores 10·(0.6·0.8 + 0.3 + 0.1·depth/2)
    = 8.3–8.8 without a single detail. A contradiction or a central error caps the score in the weak
    band; no key point hit caps it in the wrong band.
    """
    coverage = _coverage(claims, weights) if claims else criteria.correctness / 3
    score = 10 * (
        weights.coverage * coverage
        + weights.correctness * criteria.correctness / 3
        + weights.depth * criteria.depth / 2
    )
    if criteria.correctness == 0 or any(c.status is ClaimStatus.CONTRADICTED for c in claims):
        score = min(score, weights.contradiction_cap)
    if coverage == 0:
        score = min(score, weights.no_coverage_cap)
    return round(min(10.0, max(0.0, score)), 1)


class Grade(BaseModel):
    """What every grader returns."""

    status: Literal["graded", "ungraded"] = "graded"
    score: float | None = Field(None, ge=0, le=10, description="0–10; None when ungraded.")
    band: Band | None = None
    claims: list[Claim] = Field(default_factory=list, description="Checklist of the reference's key points.")
    criteria: Criteria | None = None
    misconceptions: list[str] = Field(default_factory=list)
    feedback: str = ""
    model_answer: str = Field("", description="A better answer (LLM grader only).")
    reference_issue: str = Field("", description="When the note itself looks wrong or incomplete; not scored.")
    graded_without_reference: bool = Field(
        False, description="The notes had no answer; the grader wrote its own key points."
    )
    usage: Usage | None = None
    grader: str = Field(description="Which grader produced this, e.g. 'offline' or 'llm:gpt-4o-mini'.")
    prompt_version: str = ""
    fallback_reason: str = Field("", description="Why the LLM grade was replaced by the offline one.")
    ungraded_reason: str = ""
    notes: list[str] = Field(default_factory=list, description="Visible notes, e.g. 'answer trimmed to fit'.")

    @model_validator(mode="after")
    def _consistent(self) -> Grade:
        if self.status == "ungraded":
            if self.score is not None:
                raise ValueError("an ungraded result has no score")
            if not self.ungraded_reason:
                raise ValueError("an ungraded result needs a reason")
            self.band = None
        else:
            if self.score is None:
                raise ValueError("a graded result needs a score")
            self.band = band_for(self.score)
        return self

    @property
    def graded(self) -> bool:
        return self.status == "graded"


def ungraded(reason: str, *, grader: str, prompt_version: str = "", usage: Usage | None = None) -> Grade:
    return Grade(status="ungraded", ungraded_reason=reason, grader=grader, prompt_version=prompt_version, usage=usage)


class GradeRequest(BaseModel):
    """Everything a grader sees. The answer is untrusted user text."""

    question: str
    reference: str = Field("", description="The note's answer; empty when the notes have none.")
    answer: str
    passages: list[str] = Field(default_factory=list, description="Related passages from other cards.")
    card_id: str | None = None
    topic: str = ""
    rubric: Rubric | None = Field(
        None, description="The card's compiled (or user-edited) key points: both graders grade against them."
    )
    appeal: str = Field(
        "", description="The candidate's argument that an earlier grade was wrong (appeals only); untrusted."
    )
    examples: list[CalibrationExample] = Field(
        default_factory=list,
        description="Similar answers with their corrected grades, most similar first (LLM few-shot); untrusted.",
    )

    @property
    def answer_with_appeal(self) -> str:
        """The answer plus the appeal's argument: what a grader without a separate appeal channel grades."""
        return f"{self.answer}\n\n{self.appeal}" if self.appeal.strip() else self.answer


DEFAULT_CONCURRENCY = 4
"""Model calls at once in a batch of grades (``agrade_many``) unless the caller says otherwise."""


@dataclass(frozen=True)
class FeedbackDelta:
    """A piece of the feedback text, streamed while the grade is being produced."""

    text: str


GradeEvent = FeedbackDelta | Grade
"""What :meth:`Grader.astream` yields: any number of feedback deltas, then exactly one ``Grade``."""


@runtime_checkable
class Grader(Protocol):
    """Every grader and every wrapper around one (tracing, worker process, load control).

    None of the methods raises for a bad answer or a failing model: failures become ``ungraded``.
    ``batched``: ``agrade_many`` does real batch work (the offline grader embeds a whole batch in
    one call) rather than grading one answer at a time.
    """

    @property
    def name(self) -> str: ...

    @property
    def prompt_version(self) -> str: ...

    @property
    def batched(self) -> bool: ...

    async def agrade(self, request: GradeRequest) -> Grade: ...

    def astream(self, request: GradeRequest) -> AsyncIterator[GradeEvent]: ...

    async def agrade_many(
        self, requests: Sequence[GradeRequest], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[Grade]:
        """One grade per request, in order; at most ``concurrency`` model calls at once."""
        ...


async def stream_whole(grader: Grader, request: GradeRequest) -> AsyncIterator[GradeEvent]:
    """``astream`` for graders that produce the grade in one piece: no deltas, then the grade."""
    yield await grader.agrade(request)


async def grade_each(grader: Grader, requests: Sequence[GradeRequest], concurrency: int) -> list[Grade]:
    """``agrade_many`` for graders without batch work: ``agrade`` each, at most ``concurrency`` at once."""
    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(request: GradeRequest) -> Grade:
        async with sem:
            try:
                return await grader.agrade(request)
            except Exception as exc:  # a grader that broke its promise still costs only this grade
                reason = f"grader failed: {type(exc).__name__}: {exc}"
                return ungraded(reason, grader=grader.name, prompt_version=grader.prompt_version)

    return list(await asyncio.gather(*(one(r) for r in requests)))


class OneShotGrader:
    """Base for a grader that produces each grade in one piece and has no batch work of its own:
    subclasses write ``name`` and ``agrade``; ``astream`` and ``agrade_many`` follow from it."""

    name: str = "one-shot"
    prompt_version: str = ""
    batched: bool = False

    async def agrade(self, request: GradeRequest) -> Grade:
        raise NotImplementedError

    def astream(self, request: GradeRequest) -> AsyncIterator[GradeEvent]:
        return stream_whole(self, request)

    async def agrade_many(
        self, requests: Sequence[GradeRequest], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> list[Grade]:
        return await grade_each(self, requests, concurrency)


def grade_sync(grader: Grader, request: GradeRequest) -> Grade:
    """Run a grader from synchronous code (CLI, eval). Not for use inside a running event loop."""
    return asyncio.run(grader.agrade(request))
