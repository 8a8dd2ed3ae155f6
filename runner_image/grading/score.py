"""The score: the tests own it. Only where the assignment gives its rubric a weight w (at
most 0.3) is it `tests_score * (1 - w) + rubric_score * max_score * w`; without a rubric
score (no LLM, or it failed) the tests give the whole score. Pure."""

from __future__ import annotations

import math

from runner_image.contract import Bundle

MAX_RUBRIC_WEIGHT = 0.3


def rubric_weight(bundle: Bundle) -> float:
    """The rubric's share of the score: 0 without a rubric to judge by, at most 0.3."""
    weight = bundle.feedback.rubric_weight
    if not (bundle.feedback.rubric or "").strip() or not math.isfinite(weight):
        return 0.0
    return min(max(weight, 0.0), MAX_RUBRIC_WEIGHT)


def blended_score(
    tests_score: float, max_score: float, rubric_score: float | None, weight: float
) -> float:
    """The final score. No text can move the tests' part: it is `tests_score` scaled by a
    weight the instructor set, and the rubric's part is clamped to [0, max_score * 0.3]."""
    if rubric_score is None or not math.isfinite(rubric_score) or not weight > 0:
        return tests_score
    w = min(weight, MAX_RUBRIC_WEIGHT)
    rubric = min(max(rubric_score, 0.0), 1.0)
    return round(min(max(tests_score * (1 - w) + rubric * max_score * w, 0.0), max_score), 2)
