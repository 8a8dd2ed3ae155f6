"""grading.score and review.feedback: the final score and its parts, whether it is
provisional, the headline, the LLM-explained feedback and the assembled result. Pure, no
model involved."""

from __future__ import annotations

import itertools

import pytest

from runner_image.contract import Result, ScoreState, Status, Verdict
from runner_image.grading.judge import compile_failure, judge
from runner_image.grading.score import blended_score, final_score
from runner_image.review.answer import FeedbackAnswer, RubricFeedbackAnswer, TestExplanation
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
        ("tests", "rubric", "weight", "fraction", "expected"),
        [
            (60.0, None, 0.0, 0.6, (60.0, None)),
            (60.0, 1.0, 0.0, 0.6, (60.0, None)),
            (60.0, None, 0.3, 0.6, (60.0, None)),  # no rubric score: the tests give it all
            (60.0, 1.0, 0.3, 0.6, (42.0, 18.0)),
            (60.0, 0.0, 0.3, 0.6, (42.0, 0.0)),
            (100.0, 1.0, 0.3, 1.0, (70.0, 30.0)),
            (0.0, 1.0, 0.3, 0.0, (0.0, 0.0)),  # no test passed: no rubric point
            (0.0, 1.0, 1.0, 0.0, (0.0, 0.0)),
            (60.0, 0.5, 1.0, 0.6, (0.0, 30.0)),
            (60.0, 1.0, 1.7, 0.6, (0.0, 60.0)),  # the weight is capped at 1
            (60.0, 7.0, 0.3, 0.6, (42.0, 18.0)),  # the rubric score is clamped to [0, 1]
            (60.0, -3.0, 0.3, 0.6, (42.0, 0.0)),
            (60.0, 1.0, 0.3, 4.0, (42.0, 30.0)),  # and the fraction too
            (60.0, float("nan"), 0.3, 0.6, (60.0, None)),
            (60.0, 1.0, float("nan"), 0.6, (60.0, None)),
            (60.0, 1.0, 0.3, float("nan"), (42.0, 0.0)),
        ],
    )
    def test_formula(self, tests, rubric, weight, fraction, expected):
        parts = blended_score(tests, 100.0, rubric, weight, fraction)
        assert parts == pytest.approx(expected, abs=0.01)

    def test_rubric_points_are_earned_by_passing_tests(self):
        """rubric part = w * max * r * f with f = T / max: it never exceeds w * T, so the
        score never exceeds the tests' score and a submission failing every test gets 0."""
        for tests, rubric, weight in itertools.product(
            [0.0, 12.5, 50.0, 99.99, 100.0], [0.0, 0.3, 1.0, 2.0], [0.0, 0.05, 0.3, 0.6, 1.0]
        ):
            tests_part, rubric_part = blended_score(tests, 100.0, rubric, weight, tests / 100)
            assert tests_part == pytest.approx(tests * (1 - weight))
            assert (rubric_part or 0.0) <= weight * tests + 1e-9
            assert tests_part + (rubric_part or 0.0) <= tests + 1e-9


class TestFinalScore:
    def test_parts_add_up_and_a_small_weight_is_final(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        score = final_score(judgement, 0.3, 1.0, suspected=False)
        assert (score.tests, score.rubric) == (46.67, 20.0)
        assert score.total == 66.67
        assert score.state == ScoreState.FINAL

    @pytest.mark.parametrize(
        ("weight", "suspected", "state"),
        [
            (0.0, False, ScoreState.FINAL),
            (0.3, False, ScoreState.FINAL),
            (0.31, False, ScoreState.PROVISIONAL),
            (1.0, False, ScoreState.PROVISIONAL),
            (0.0, True, ScoreState.PROVISIONAL),
        ],
    )
    def test_provisional_when_the_rubric_weighs_more_than_0_3_or_injection(
        self, weight, suspected, state
    ):
        _, judgement = sum_judgement(negative="wrong_answer")
        assert final_score(judgement, weight, 0.5, suspected).state == state

    def test_a_failing_submission_earns_no_rubric_point(self):
        _, judgement = sum_judgement(
            small="wrong_answer", negative="wrong_answer", **{"hidden big": "runtime_error"}
        )
        score = final_score(judgement, 1.0, 1.0, suspected=False)
        assert (score.total, score.tests, score.rubric) == (0.0, 0.0, 0.0)

    def test_without_tests_the_rubric_grades_alone_and_provisionally(self):
        bundle = make_bundle(tests=(), rubric="Readable.")
        judgement = judge(bundle, [], "syntax_error")
        score = final_score(judgement, 1.0, 0.8, suspected=False)
        assert (score.total, score.tests, score.rubric) == (80.0, None, 80.0)
        assert score.state == ScoreState.PROVISIONAL
        unavailable = final_score(judgement, 1.0, None, suspected=False)
        assert (unavailable.total, unavailable.rubric) == (0.0, None)

    def test_without_tests_code_that_does_not_build_earns_nothing(self):
        bundle = make_bundle("int main( {", tests=(), rubric="Readable.")
        judgement = judge(bundle, [], "compile_error", build_error="main.c:1: error")
        assert judgement.verdict == Verdict.COMPILE_ERROR
        assert judgement.status == Status.FAILED
        assert final_score(judgement, 1.0, 1.0, suspected=False).total == 0.0

    def test_a_submission_that_could_not_be_judged_is_not_for_review(self):
        _, judgement = sum_judgement(small="internal_error")
        assert final_score(judgement, 1.0, 1.0, suspected=True).state == ScoreState.FINAL


def sum_judgement(**verdicts):
    bundle = make_bundle()
    return bundle, make_judgement(bundle, verdicts, {"negative": "7\n", "hidden big": "1\n"})


def explained(feedback: str, **explanations: str) -> FeedbackAnswer:
    items = [TestExplanation(test=name, explanation=text) for name, text in explanations.items()]
    return FeedbackAnswer(feedback=feedback, explanations=items, fail_tags=[])


class TestHeadline:
    def test_tests_only(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        assert headline(judgement) == "**Score: 66.67 / 100**: 2 of 3 tests passed."
        score = final_score(judgement, 0.0, None, suspected=False)
        assert headline(judgement, score) == "**Score: 66.67 / 100**: 2 of 3 tests passed."

    def test_with_rubric(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        score = final_score(judgement, 0.3, 0.5, suspected=False)
        assert headline(judgement, score) == (
            "**Score: 56.67 / 100**: 2 of 3 tests passed. The tests give 46.67 (66.67 x 0.7); "
            "the review against the rubric gives 10 of at most 30, earned in proportion to the "
            "tests passed (67%)."
        )

    def test_a_heavy_rubric_is_said_to_be_provisional(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        score = final_score(judgement, 0.5, 1.0, suspected=False)
        assert headline(judgement, score).endswith(
            "The rubric's part is provisional until your instructor reviews it."
        )

    def test_a_suspected_injection_is_not_mentioned(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        score = final_score(judgement, 0.0, None, suspected=True)
        assert score.state == ScoreState.PROVISIONAL
        assert headline(judgement, score) == "**Score: 66.67 / 100**: 2 of 3 tests passed."

    def test_rubric_unavailable(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        score = final_score(judgement, 0.3, None, suspected=False)
        assert headline(judgement, score).endswith(
            "The rubric review was unavailable, so the tests give the whole score."
        )

    def test_without_tests(self):
        bundle = make_bundle(tests=(), rubric="Readable.")
        judgement = judge(bundle, [], "syntax_error")
        assert headline(judgement, final_score(judgement, 1.0, 0.75, False)) == (
            "**Score: 75 / 100**: graded by a review of your code against the rubric, as there "
            "are no tests. This score is provisional until your instructor reviews it."
        )
        assert headline(judgement, final_score(judgement, 1.0, None, False)).endswith(
            "The review was unavailable; your instructor will grade it."
        )


class TestExplainedFeedback:
    def test_every_failing_test_is_listed_with_the_models_explanation_or_advice(self):
        _, judgement = sum_judgement(negative="wrong_answer", **{"hidden big": "runtime_error"})
        answer = explained("Mind the signs.", negative="`abs()` drops the sign.\nUse `a + b`.")
        assert explained_feedback(judgement, "HEAD", answer).splitlines() == [
            "HEAD",
            "",
            "Mind the signs.",
            "",
            "Tests not passing yet:",
            "",
            "- `negative`: **wrong_answer**: `abs()` drops the sign.",
            "  Use `a + b`.",
            "- `hidden big` (hidden test): **runtime_error**: the program crashed or exited "
            "with a non-zero code.",
        ]

    def test_nothing_is_appended_when_every_test_passed(self):
        _, judgement = sum_judgement()
        assert explained_feedback(judgement, "HEAD", explained("Tidy.")) == "HEAD\n\nTidy."

    def test_compile_error_appends_the_compiler_output(self):
        bundle = make_bundle("def f(:\n")
        judgement = judge(bundle, compile_failure(bundle.tests, "SyntaxError: x"), "syntax_error")
        text = explained_feedback(judgement, "HEAD", explained("A colon is misplaced."))
        assert (
            text == "HEAD\n\nA colon is misplaced.\n\nCompiler output:\n\n```\nSyntaxError: x\n```"
        )

    def test_without_tests_a_build_error_is_still_shown(self):
        bundle = make_bundle("def f(:\n", tests=())
        judgement = judge(bundle, [], "syntax_error", build_error="SyntaxError: y")
        assert "SyntaxError: y" in explained_feedback(judgement, "HEAD", explained("Colon."))
        assert "SyntaxError: y" in deterministic_feedback(judgement)


def reply(status="ok", answer=None, tags=(), **fields) -> LlmReply:
    return LlmReply(status, answer=answer, tags=list(tags), **fields)


class TestAssembleResult:
    def test_llm_feedback_tags_metrics_and_score(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        answer = explained("Handle signs.", negative="`abs()` drops them.")
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
        assert (result.tests_score, result.rubric_score) == (66.67, None)
        assert result.score_state == ScoreState.FINAL
        assert result.fail_tags == ["wrong_answer", "partial", "edge_case"]
        assert result.feedback.startswith("**Score: 66.67 / 100**: 2 of 3 tests passed.\n\n")
        assert "- `negative`: **wrong_answer**: `abs()` drops them." in result.feedback
        assert result.metrics == {
            **judgement.metrics,
            "llm": "ok",
            "llm_model": "gpt-4o-mini",
            "llm_latency_ms": 900,
            "llm_tokens_in": 300,
            "llm_tokens_out": 80,
            "llm_tokens": 380,
            "llm_tags_dropped": 0,
            "llm_explanations_dropped": 0,
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
        assert "llm_tags_dropped" not in result.metrics

    def test_what_the_vetting_dropped_is_counted(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        dropped = {"inefficient": "needs a time or memory limit exceeded"}
        result = assemble_result(
            judgement,
            reply(answer=explained("ok"), dropped_tags=dropped, dropped_explanations=2),
            0.0,
            [],
        )
        assert result.metrics["llm_tags_dropped"] == 1
        assert result.metrics["llm_dropped_tags"] == dropped
        assert result.metrics["llm_explanations_dropped"] == 2
        discarded = assemble_result(
            judgement, reply("inconsistent", discarded_reason="states_score"), 0.0, []
        )
        assert discarded.metrics["llm_discarded_reason"] == "states_score"

    def test_rubric_weight_scales_by_the_tests_passed_and_is_recorded(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        answer = RubricFeedbackAnswer(
            feedback="Signs.", explanations=[], fail_tags=[], rubric_score=0.5
        )
        result = assemble_result(judgement, reply(answer=answer), 0.3, [])
        assert result.tests_score == round(66.67 * 0.7, 2)
        assert result.rubric_score == round(0.3 * 100 * 0.5 * 0.6667, 2)
        assert result.score == round(result.tests_score + result.rubric_score, 2)
        assert result.metrics["tests_score"] == 66.67
        assert result.metrics["rubric_weight"] == 0.3
        assert result.metrics["rubric_score"] == 0.5
        assert result.metrics["tests_fraction"] == 0.6667

    def test_rubric_weight_without_a_rubric_score_keeps_the_tests_score(self):
        _, judgement = sum_judgement(negative="wrong_answer")
        result = assemble_result(judgement, reply("unavailable"), 0.3, [])
        assert result.score == result.tests_score == 66.67
        assert result.rubric_score is None
        assert result.metrics["rubric_score"] is None
        assert "rubric review was unavailable" in result.feedback

    def test_a_suspected_injection_makes_the_score_provisional(self):
        _, judgement = sum_judgement()
        result = assemble_result(judgement, reply("not_configured"), 0.0, ["suspected_injection"])
        assert result.score_state == ScoreState.PROVISIONAL
        assert result.score == 100.0

    def test_instructor_tags_stay_out_of_what_the_student_sees(self):
        _, judgement = sum_judgement()
        result = assemble_result(
            judgement,
            reply(answer=explained("All good.")),
            0.0,
            ["suspected_injection", "suspected_injection"],
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
