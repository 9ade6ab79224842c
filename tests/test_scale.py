"""The 0–10 scale is defined once (bot.grading.base): bands, score weights, caps; everything else follows."""

from __future__ import annotations

import pytest

from bot.grading.base import (
    BANDS,
    SCORE_WEIGHTS,
    Band,
    BandEdges,
    Claim,
    ClaimStatus,
    Criteria,
    ScoreWeights,
    band_for,
    compute_score,
)
from bot.practice.report import _colour
from bot.practice.schedule import RatingThresholds
from bot.settings import Settings


def _claims(*statuses: ClaimStatus) -> list[Claim]:
    return [Claim(point=f"point {i}", status=s) for i, s in enumerate(statuses)]


def test_each_edge_starts_its_band() -> None:
    assert band_for(BANDS.excellent) is Band.EXCELLENT
    assert band_for(BANDS.good) is Band.GOOD
    assert band_for(BANDS.partial) is Band.PARTIAL
    assert band_for(BANDS.weak) is Band.WEAK
    assert band_for(BANDS.weak - 0.1) is Band.WRONG


def test_full_marks_use_every_weight() -> None:
    assert compute_score(_claims(ClaimStatus.HIT, ClaimStatus.HIT), Criteria(correctness=3, depth=2)) == 10.0
    # coverage alone: its weight's share of the scale
    assert compute_score(_claims(ClaimStatus.HIT), Criteria(correctness=0, depth=0)) == pytest.approx(
        min(10 * SCORE_WEIGHTS.coverage, SCORE_WEIGHTS.contradiction_cap)
    )


def test_a_contradiction_keeps_the_score_in_the_weak_band() -> None:
    claims = _claims(ClaimStatus.HIT, ClaimStatus.HIT, ClaimStatus.HIT, ClaimStatus.CONTRADICTED)
    score = compute_score(claims, Criteria(correctness=3, depth=2))
    assert score == SCORE_WEIGHTS.contradiction_cap
    assert band_for(score) is Band.WEAK


def test_no_key_point_hit_keeps_the_score_in_the_wrong_band() -> None:
    score = compute_score(_claims(ClaimStatus.MISSED, ClaimStatus.MISSED), Criteria(correctness=3, depth=2))
    assert score == SCORE_WEIGHTS.no_coverage_cap
    assert band_for(score) is Band.WRONG


def test_the_scheduler_settings_and_report_follow_the_band_edges() -> None:
    thresholds = RatingThresholds()
    assert (thresholds.again_below, thresholds.hard_below, thresholds.easy_from) == (
        BANDS.partial,
        BANDS.good,
        BANDS.excellent,
    )
    settings = Settings()
    assert RatingThresholds.from_settings(settings) == thresholds
    assert len({_colour(BANDS.partial - 0.1), _colour(BANDS.partial), _colour(BANDS.good)}) == 3


def test_bad_weights_or_edges_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="add up to 1"):
        ScoreWeights(coverage=0.7)
    with pytest.raises(ValueError, match="weak <= partial"):
        BandEdges(partial=7.0)
