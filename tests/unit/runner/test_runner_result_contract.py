"""contract.Result and STAFF_ONLY_METRICS: the score's parts and state, results from before
they existed, and the one list of `metrics` keys students never see (read as the webapp
reads it, `.values()`, and as a set)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runner_image.contract import (
    ALL_TESTS_METRICS,
    STAFF_ONLY_METRICS,
    Bundle,
    FeedbackSettings,
    Result,
    ScoreState,
)
from runner_image.review.answer import FeedbackAnswer
from runner_image.review.feedback import llm_metrics
from runner_image.review.llm import LlmReply


def test_a_result_from_before_the_score_parts_is_final_and_keeps_its_score():
    old = Result.model_validate({"status": "graded", "verdict": "accepted", "score": 10})
    assert (old.score, old.tests_score, old.rubric_score) == (10, None, None)
    assert old.score_state == ScoreState.FINAL


def test_the_parts_and_state_travel_in_the_json():
    result = Result(
        status="graded",
        score=56.67,
        max_score=100,
        tests_score=46.67,
        rubric_score=10,
        score_state="provisional",
    )
    body = result.model_dump(mode="json")
    assert (body["tests_score"], body["rubric_score"], body["score_state"]) == (
        46.67,
        10,
        "provisional",
    )
    assert Result.model_validate(body) == result


@pytest.mark.parametrize("field", ["tests_score", "rubric_score"])
def test_parts_are_not_negative(field):
    with pytest.raises(ValidationError, match=field):
        Result(status="graded", **{field: -1})


def test_every_staff_only_key_is_listed_once_and_read_either_way():
    assert {
        "run_ms_all_tests",
        "max_rss_kb_all_tests",
        "llm_detail",
        "llm_discarded_reason",
        "llm_tags_dropped",
        "llm_dropped_tags",
        "llm_explanations_dropped",
    } == STAFF_ONLY_METRICS
    assert set(ALL_TESTS_METRICS.values()) <= STAFF_ONLY_METRICS
    assert not set(ALL_TESTS_METRICS) & STAFF_ONLY_METRICS  # the public-tests figures


def test_the_llm_diagnostics_the_runner_reports_are_all_staff_only():
    answer = FeedbackAnswer(feedback="ok", explanations=[], fail_tags=[])
    kept = llm_metrics(
        LlmReply("ok", answer=answer, dropped_tags={"style": "why"}, dropped_explanations=1)
    )
    discarded = llm_metrics(
        LlmReply("inconsistent", "the LLM feedback was dropped", discarded_reason="states_score")
    )
    diagnostics = {key for key in {*kept, *discarded} if key not in ("llm",)}
    diagnostics -= {"llm_model", "llm_latency_ms", "llm_tokens_in", "llm_tokens_out", "llm_tokens"}
    assert diagnostics == {
        "llm_detail",
        "llm_discarded_reason",
        "llm_tags_dropped",
        "llm_dropped_tags",
        "llm_explanations_dropped",
    }
    assert diagnostics <= STAFF_ONLY_METRICS


def test_the_rubric_may_weigh_up_to_the_whole_score():
    assert FeedbackSettings(rubric="r", rubric_weight=1.0).rubric_weight == 1.0
    with pytest.raises(ValidationError, match="rubric_weight"):
        FeedbackSettings(rubric="r", rubric_weight=1.01)


def test_a_bundle_without_tests_is_valid():
    bundle = Bundle(submission_id="s", language="python", code="x = 1\n", tests=())
    assert bundle.tests == ()
