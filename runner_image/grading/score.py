"""The score: the tests own it, and the rubric's share is earned by passing them. Pure.

With `T` the tests' score (out of `max_score`), `f` the share of the test weight passed,
`w` the rubric's weight and `r` the model's rubric score in [0, 1]:

    tests part  = T * (1 - w)
    rubric part = w * max_score * r * f
    score       = tests part + rubric part

so no prose creates points on a submission that fails its tests (f = 0), and a submission
passing every test can gain at most `w * max_score` from the rubric. Without a rubric score
(no LLM, or it failed) the tests give the whole score, `T`. An assignment without tests is
graded by its rubric alone: w = 1 and f = 1 (0 when the code does not build).

The score is provisional, for staff to confirm or override, when the rubric weighs more than
`PROVISIONAL_RUBRIC_WEIGHT` or the submission is suspected of addressing the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from runner_image.contract import Bundle, ScoreState, Status
from runner_image.grading.judge import Judgement

MAX_RUBRIC_WEIGHT = 1.0
PROVISIONAL_RUBRIC_WEIGHT = 0.3


@dataclass(frozen=True)
class Score:
    """The final score and its parts. `tests` is None without tests; `rubric` is None when
    the rubric gives nothing (no weight, or no rubric score)."""

    total: float
    tests: float | None
    rubric: float | None
    weight: float
    tests_fraction: float
    state: ScoreState


def rubric_weight(bundle: Bundle) -> float:
    """The rubric's share of the score: 1 without tests (the rubric grades alone), else the
    assignment's weight, clamped to [0, 1], and 0 without a rubric to judge by."""
    if not bundle.tests:
        return MAX_RUBRIC_WEIGHT
    weight = bundle.feedback.rubric_weight
    if not (bundle.feedback.rubric or "").strip() or not math.isfinite(weight):
        return 0.0
    return min(max(weight, 0.0), MAX_RUBRIC_WEIGHT)


def blended_score(
    tests_score: float,
    max_score: float,
    rubric_score: float | None,
    weight: float,
    tests_fraction: float,
) -> tuple[float, float | None]:
    """(tests part, rubric part) in points. The rubric part is clamped to
    [0, weight * max_score * tests_fraction]; without a rubric score it is None and the
    tests give the whole score."""
    w = min(max(weight, 0.0), MAX_RUBRIC_WEIGHT) if math.isfinite(weight) else 0.0
    if rubric_score is None or not math.isfinite(rubric_score) or not w > 0:
        return tests_score, None
    rubric = min(max(rubric_score, 0.0), 1.0)
    earned = min(max(tests_fraction, 0.0), 1.0) if math.isfinite(tests_fraction) else 0.0
    return tests_score * (1 - w), rubric * max_score * w * earned


def final_score(
    judgement: Judgement, weight: float, rubric_score: float | None, suspected: bool
) -> Score:
    """The score of a judged submission, its parts and whether staff must review it."""
    fraction = judgement.tests_fraction
    if judgement.tests:
        tests, rubric = blended_score(
            judgement.score, judgement.max_score, rubric_score, weight, fraction
        )
    else:
        _, rubric = blended_score(0.0, judgement.max_score, rubric_score, 1.0, fraction)
        tests = None
    tests = None if tests is None else round(tests, 2)
    rubric = None if rubric is None else round(rubric, 2)
    total = min(max(round((tests or 0.0) + (rubric or 0.0), 2), 0.0), judgement.max_score)
    # A submission the platform could not judge has nothing for staff to confirm.
    provisional = judgement.status != Status.ERROR and (
        weight > PROVISIONAL_RUBRIC_WEIGHT or not judgement.tests or suspected
    )
    return Score(
        total=total,
        tests=tests,
        rubric=rubric,
        weight=weight,
        tests_fraction=fraction,
        state=ScoreState.PROVISIONAL if provisional else ScoreState.FINAL,
    )
