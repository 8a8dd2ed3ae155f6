"""grading.score and review.feedback: the final score, the headline, the LLM-explained
feedback and the assembled result. Pure, no model involved."""

from __future__ import annotations

import itertools

import pytest

from runner_image.contract import Result
from runner_image.grading.judge import compile_failure, judge
from runner_image.grading.score import blended_score
from runner_image.review.answer import FeedbackAnswer, RubricFeedbackAnswer
from runner_image.review.feedback import (
    assemble_result,
    deterministic_feedback,
    explained_feedback,
    headline,
)
from runner_image.review.llm import LlmReply
from tests.unit.llm.llm_cases import HIDDEN_EXPECTED, HIDDEN_STDIN, make_bundle, make_judgement


class TestBlendedScore:
    @pytest.mark.parametrize(
        ("tests", "rubric", "weight", "expected"),
        [
            (60.0, None, 0.0, 60.0),
            (60.0, 1.0, 0.0, 60.0),
            (60.0, None, 0.3, 60.0),  # no rubric score: the tests give the whole score
            (60.0, 1.0, 0.3, 72.0),
            (60.0, 0.0, 0.3, 42.0),
            (100.0, 1.0, 0.3, 100.0),
            (0.0, 1.0, 0.3, 30.0),
            (60.0, 1.0, 0.9, 72.0),  # the weight is capped at 0.3
            (60.0, 7.0, 0.3, 72.0),  # the rubric score is clamped to [0, 1]
            (60.0, -3.0, 0.3, 42.0),
            (60.0, float("nan"), 0.3, 60.0),
            (60.0, 1.0, float("nan"), 60.0),
            (33.33, 0.5, 0.1, 34.997),
        ],
    )
    def test_formula(self, tests, rubric, weight, expected):
        assert blended_score(tests, 100.0, rubric, weight) == pytest.approx(expected, abs=0.01)

    def test_the_tests_part_is_never_moved_by_the_rubric(self):
        for tests, rubric, weight in itertools.product(
            [0.0, 12.5, 50.0, 99.99, 100.0], [0.0, 0.3, 1.0, 2.0], [0.0, 0.05, 0.2, 0.3]
        ):
            score = blended_score(tests, 100.0, rubric, weight)
            rubric_part = min(rubric, 1.0) * 100.0 * weight
            assert score == pytest.approx(tests * (1 - weight) + rubric_part, abs=0.006)
            assert 0.0 <= score <= 100.0


def sum_judgement(**verdicts):
    bundle = make_bundle()
    return bundle, make_judgement(bundle, verdicts, {"negative": "7\n", "hidden big": "1\n"})


class TestHeadline:
    def test_tests_only(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        assert headline(judgement) == "**Score: 66.67 / 100**: 2 of 3 tests passed."

    def test_with_rubric(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        assert headline(judgement, 76.67, 0.3, 1.0) == (
            "**Score: 76.67 / 100**: 2 of 3 tests passed. The tests give 66.67 and count for "
            "70 %; the review of your code against the rubric gives 100 % and counts for 30 %."
        )

    def test_rubric_unavailable(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        assert headline(judgement, None, 0.3, None).endswith(
            "The rubric review was unavailable, so the tests give the whole score."
        )


class TestExplainedFeedback:
    def test_failing_tests_the_model_did_not_name_are_listed(self):
        _, judgement = sum_judgement(negative="wrong_answer", **{"hidden big": "runtime_error"})
        text = explained_feedback(judgement, "HEAD", "`negative` mixes up the signs.")
        assert text.splitlines() == [
            "HEAD",
            "",
            "`negative` mixes up the signs.",
            "",
            "Tests not passing yet:",
            "",
            "- `hidden big` (hidden test): **runtime_error**: the program crashed or exited "
            "with a non-zero code.",
        ]

    def test_nothing_is_appended_when_every_failing_test_is_named(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        assert explained_feedback(judgement, "HEAD", "`negative` fails.") == (
            "HEAD\n\n`negative` fails."
        )

    def test_compile_error_appends_the_compiler_output(self):
        bundle = make_bundle("def f(:\n")
        judgement = judge(bundle, compile_failure(bundle.tests, "SyntaxError: x"), "syntax_error")
        text = explained_feedback(judgement, "HEAD", "A colon is misplaced.")
        assert (
            text == "HEAD\n\nA colon is misplaced.\n\nCompiler output:\n\n```\nSyntaxError: x\n```"
        )


def reply(status="ok", answer=None, tags=(), **fields) -> LlmReply:
    return LlmReply(status, answer=answer, tags=list(tags), **fields)


class TestAssembleResult:
    def test_llm_feedback_tags_metrics_and_score(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        answer = FeedbackAnswer(feedback="`negative`: handle signs.", fail_tags=["edge_case"])
        result = assemble_result(
            judgement,
            reply(
                answer=answer,
                tags=["edge_case"],
                model="gpt-4o-mini",
                tokens_in=300,
                tokens_out=80,
                latency_ms=900,
            ),
            0.0,
            [],
        )
        assert isinstance(result, Result)
        assert result.score == judgement.score == 66.67
        assert result.fail_tags == ["wrong_answer", "partial", "edge_case"]
        assert result.feedback.startswith("**Score: 66.67 / 100**: 2 of 3 tests passed.\n\n")
        assert "`negative`: handle signs." in result.feedback
        assert result.metrics == {
            **judgement.metrics,
            "llm": "ok",
            "llm_model": "gpt-4o-mini",
            "llm_latency_ms": 900,
            "llm_tokens_in": 300,
            "llm_tokens_out": 80,
            "llm_tokens": 380,
            "tests_score": 66.67,
        }
        assert result.instructor_tags == []
        assert result.tests == judgement.tests
        assert result.status == judgement.status

    def test_without_an_answer_the_feedback_is_deterministic_and_says_nothing_of_the_llm(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        result = assemble_result(
            judgement, reply("timeout", detail="no answer within 20 s", latency_ms=41000), 0.0, []
        )
        assert result.feedback == deterministic_feedback(judgement)
        assert result.metrics["llm"] == "timeout"
        assert result.metrics["llm_detail"] == "no answer within 20 s"
        assert "llm_tokens" not in result.metrics

    def test_rubric_weight_blends_and_is_recorded(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        answer = RubricFeedbackAnswer(feedback="`negative`", fail_tags=[], rubric_score=0.5)
        result = assemble_result(judgement, reply(answer=answer), 0.3, [])
        assert result.score == round(66.67 * 0.7 + 0.5 * 100 * 0.3, 2)
        assert result.metrics["tests_score"] == 66.67
        assert result.metrics["rubric_weight"] == 0.3
        assert result.metrics["rubric_score"] == 0.5

    def test_rubric_weight_without_a_rubric_score_keeps_the_tests_score(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        result = assemble_result(judgement, reply("unavailable"), 0.3, [])
        assert result.score == 66.67
        assert result.metrics["rubric_score"] is None
        assert "rubric review was unavailable" in result.feedback

    def test_instructor_tags_stay_out_of_what_the_student_sees(self):
        _, judgement = sum_judgement()
        answer = FeedbackAnswer(feedback="All good.", fail_tags=[])
        result = assemble_result(
            judgement, reply(answer=answer), 0.0, ["suspected_injection", "suspected_injection"]
        )
        assert result.instructor_tags == ["suspected_injection"]
        student_view = result.model_dump(mode="json", exclude={"instructor_tags"})
        assert "injection" not in repr(student_view)

    def test_deterministic_feedback_never_quotes_a_hidden_test(self):
        _, judgement = sum_judgement(**{"hidden big": "wrong_answer"})
        result = assemble_result(judgement, reply("not_configured"), 0.0, [])
        assert HIDDEN_STDIN.strip() not in result.feedback
        assert HIDDEN_EXPECTED.strip() not in result.feedback
        assert "`hidden big` (hidden test): **wrong_answer**" in result.feedback
