"""review.consistency and review.vetting: what of a model's answer a student may read. The
phrase lists are both ways: each discarded text has honest neighbours that must pass."""

from __future__ import annotations

import pytest

from runner_image.review.answer import (
    MAX_EXPLANATION_CHARS,
    MAX_EXPLANATIONS,
    MAX_FEEDBACK_CHARS,
    FeedbackAnswer,
    RubricFeedbackAnswer,
    TestExplanation,
)
from runner_image.review.consistency import inconsistency, prose, shared_run
from runner_image.review.llm import LlmReply
from runner_image.review.prompt import system_message
from runner_image.review.tags import FEEDBACK_TAGS
from runner_image.review.vetting import vet
from tests.unit.llm.llm_cases import make_bundle, make_judgement

SYSTEM = system_message("UNTRUSTED-0123456789ABCDEF", list(FEEDBACK_TAGS), True)
RUBRIC = "Award points only when the helper function is memoised and named clearly."


def failing():
    bundle = make_bundle(rubric=RUBRIC, rubric_weight=0.2)
    return bundle, make_judgement(bundle, {"negative": "wrong_answer"}, {"negative": "7\n"})


def passing():
    bundle = make_bundle(rubric=RUBRIC, rubric_weight=0.2)
    return bundle, make_judgement(bundle, {})


def reason(feedback, explanations=None, run=failing):
    bundle, judgement = run()
    found = inconsistency(feedback, explanations or {}, bundle, judgement, SYSTEM)
    return found.reason if found else None


class TestSuccessClaimsWhileTestsFail:
    @pytest.mark.parametrize(
        "text",
        [
            "All tests pass: your solution is correct.",
            "All 3 tests passed.",
            "Your code passes all the tests.",
            "Every test passes, nice.",
            "There are no failing tests.",
            "Great work. Your code is completely correct.",
            "Perfect solution!",
            "The program works correctly.",
            "Your implementation looks flawless.",
            "Your code has no bugs.",
        ],
    )
    def test_discarded(self, text):
        assert reason(text) == "claims_success"

    @pytest.mark.parametrize(
        "text",
        [
            "Not all tests pass yet.",
            "Once all tests pass, submit again.",
            "Make sure that every test passes.",
            "All tests will pass when you keep the sign.",
            "All tests pass except `negative`.",
            "Your code is correct for positive numbers but not for negative ones.",
            "The program works correctly only when both numbers are positive.",
            "A correct solution adds the numbers as they are.",
            "If the code were correct, `negative` would print -3.",
            "Your code is not correct yet: `negative` prints 7.",
            "Check that all tests pass before submitting.",
        ],
    )
    def test_honest_text_passes(self, text):
        assert reason(text) is None

    def test_success_may_be_said_when_every_test_passed(self):
        assert reason("All tests pass: your solution is correct.", run=passing) is None


class TestTestClaims:
    def test_a_failing_test_said_to_pass(self):
        assert reason("`negative` passes now.") == "contradicts_test"
        assert reason("The negative test passes.") == "contradicts_test"

    def test_a_passing_test_said_to_fail(self):
        assert reason("`small` fails because of the sign.") == "contradicts_test"

    def test_true_statements_about_tests_pass(self):
        assert reason("`small` passes, `negative` fails: the sign is dropped.") is None
        assert reason("`negative` does not pass yet.") is None

    def test_an_explanation_saying_its_failing_test_passes(self):
        assert reason("Mind signs.", {"negative": "This test passes."}) == "contradicts_test"
        said = {"negative": "The output is correct."}
        assert reason("Mind signs.", said) == "contradicts_test"
        honest = {"negative": "The output is 7 where -3 is expected: `abs` drops the sign."}
        assert reason("Mind signs.", honest) is None

    def test_failures_claimed_on_a_passing_submission(self):
        assert reason("Two tests fail on big inputs.", run=passing) == "contradicts_test"
        assert reason("None of the tests fail.", run=passing) is None


class TestScoreStatements:
    @pytest.mark.parametrize(
        "text",
        [
            "Perfect solution, full marks!",
            "This is worth 85/100.",
            "I would give it a score of 90.",
            "You earn 8 out of 10 points.",
            "This deserves an A.",
            "Maximum score for clean code.",
            "You get 30 points for the rubric.",
        ],
    )
    def test_discarded_even_on_a_passing_submission(self, text):
        assert reason(text, run=passing) == "states_score"

    @pytest.mark.parametrize(
        "text",
        [
            "2/3 tests pass; `negative` prints 7.",
            "`score = 100` in your code is never used.",
            "Use `x / 10` to get the tens digit.",
            "```python\nprint(100/100)\n```\nThat prints 1.0.",
            "A loop over 10 items is fine.",
        ],
    )
    def test_other_numbers_pass(self, text):
        assert reason(text, run=passing) is None

    def test_an_assignment_about_scores_may_speak_of_its_data(self):
        bundle = make_bundle(tests=make_bundle().tests)
        bundle = bundle.model_copy(
            update={
                "assignment": bundle.assignment.model_copy(
                    update={"description": "Print the total score of a bowling game."}
                )
            }
        )
        judgement = make_judgement(bundle, {})
        said = "Your total score is 30 for a strike, but the frame gives a score of 20."
        assert inconsistency(said, {}, bundle, judgement, SYSTEM) is None
        assert inconsistency("Full marks!", {}, bundle, judgement, SYSTEM) is not None


class TestQuotes:
    def test_echoing_the_system_prompt(self):
        assert reason(SYSTEM[:600], run=passing) == "quotes_system_prompt"

    def test_eight_words_of_it_are_enough_and_seven_are_not(self):
        words = "The score has already been computed by running the student's program"
        assert reason(f"Note: {words}.", run=passing) == "quotes_system_prompt"
        assert reason("Note: the score has already been computed by.", run=passing) is None

    def test_quoting_the_rubric(self):
        said = "Per the rubric: award points only when the helper function is memoised."
        assert reason(said, run=passing) == "quotes_rubric"
        assert reason("Consider caching results of the helper.", run=passing) is None

    def test_words_the_student_sees_anyway_are_not_a_quote(self):
        bundle = make_bundle(rubric="Read two integers on one line and print their sum.")
        judgement = make_judgement(bundle, {})
        said = "The task: read two integers on one line and print their sum."
        assert inconsistency(said, {}, bundle, judgement, SYSTEM) is None

    def test_shared_run(self):
        assert shared_run("a b c d e f g h i", "x a b c d e f g h y") == "a b c d e f g h"
        assert shared_run("a b c d e f g", "a b c d e f g") is None
        assert shared_run("a b c d e f g h", "a b c d e f g h", ["z A-B c d e f g h"]) is None


def test_prose_drops_code():
    assert prose("Use `a / 10` here.\n```\nprint(100/100)\n```\nDone.").split() == [
        "Use",
        "here.",
        "Done.",
    ]
    assert prose("a ``x`y`` b ` c\n~~~~\nq\n~~~\nstill\n~~~~\nend").split() == [
        "a",
        "b",
        "`",
        "c",
        "end",
    ]


@pytest.mark.parametrize("unit", ["`", "`a``b```c", "not all tests pass "])
def test_the_largest_answer_is_checked_in_linear_time(unit):
    """Backticks once took cubic time in a regex; a steered model can send 136,000 of them.
    (The suite's timeout would stop a regression.)"""
    bundle, judgement = failing()
    text = (unit * MAX_FEEDBACK_CHARS)[:MAX_FEEDBACK_CHARS]
    explanations = {f"t{i}": text[:MAX_EXPLANATION_CHARS] for i in range(MAX_EXPLANATIONS)}
    inconsistency(text, explanations, bundle, judgement, SYSTEM)


def answered(feedback="Mind the sign.", explanations=None, tags=(), rubric_score=None):
    items = [TestExplanation(test=n, explanation=e) for n, e in (explanations or {}).items()]
    if rubric_score is None:
        answer = FeedbackAnswer(feedback=feedback, explanations=items, fail_tags=list(tags))
    else:
        answer = RubricFeedbackAnswer(
            feedback=feedback, explanations=items, fail_tags=list(tags), rubric_score=rubric_score
        )
    return LlmReply("ok", answer=answer, tags=list(tags), system_prompt=SYSTEM)


class TestVet:
    def test_explanations_of_tests_that_did_not_fail_are_dropped(self):
        bundle, judgement = failing()
        explanations = {"negative": "Signs.", "small": "Fine.", "made up": "Nonsense."}
        vetted = vet(answered(explanations=explanations), bundle, judgement)
        assert [(e.test, e.explanation) for e in vetted.answer.explanations] == [
            ("negative", "Signs.")
        ]
        assert vetted.dropped_explanations == 2

    def test_ungrounded_tags_are_dropped_and_kept_for_staff(self):
        bundle, judgement = failing()
        vetted = vet(answered(tags=["edge_case", "inefficient"]), bundle, judgement)
        assert vetted.status == "ok"
        assert vetted.tags == ["edge_case"]
        assert list(vetted.dropped_tags) == ["inefficient"]

    def test_an_inconsistent_answer_is_discarded_whole_with_its_reason(self):
        bundle, judgement = failing()
        vetted = vet(
            answered("All tests pass.", tags=["edge_case"], rubric_score=1.0), bundle, judgement
        )
        assert (vetted.status, vetted.discarded_reason) == ("inconsistent", "claims_success")
        assert vetted.answer is None and vetted.tags == [] and vetted.rubric_score is None
        assert vetted.detail.startswith("the LLM feedback was dropped: it claims success")

    def test_leaks_are_discarded_as_leaks(self):
        bundle, judgement = failing()
        hidden = vet(answered("`hidden big` expects 777777."), bundle, judgement)
        assert (hidden.status, hidden.discarded_reason) == ("leak_filtered", "quotes_hidden_test")
        echo = vet(answered(SYSTEM[:500]), bundle, judgement)
        assert (echo.status, echo.discarded_reason) == ("leak_filtered", "quotes_system_prompt")

    def test_a_hidden_quote_in_an_explanation_counts(self):
        bundle = make_bundle()
        judgement = make_judgement(bundle, {"hidden big": "wrong_answer"})
        vetted = vet(answered(explanations={"hidden big": "It wants 777777."}), bundle, judgement)
        assert vetted.discarded_reason == "quotes_hidden_test"

    def test_a_reply_without_an_answer_is_left_alone(self):
        bundle, judgement = failing()
        reply = LlmReply("timeout", "no answer")
        assert vet(reply, bundle, judgement) is reply
