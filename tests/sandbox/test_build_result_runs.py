"""main.build_result end to end: the real isolation probe and grader run the code, then the LLM
step talks to the fake server over HTTP. The bundle is handed in, as if read from Redis."""

from __future__ import annotations

import time

import pytest

from runner_image.main import build_result
from tests.llm_fake_server import Completion, Sleep, Status
from tests.unit.llm.llm_cases import (
    HIDDEN_EXPECTED,
    HIDDEN_STDIN,
    llm_settings,
    make_bundle,
)

# Right for non-negative numbers only: `negative` fails, `small` and `hidden big` pass.
HALF_RIGHT = "a, b = map(int, input().split())\nprint(abs(a) + abs(b))\n"
# Wrong on the hidden test only.
HIDDEN_WRONG = "a, b = map(int, input().split())\nprint(a + b if a < 1000 else 0)\n"


def said(feedback: str, tags=(), rubric_score=None, **explanations: str) -> Completion:
    """A model's answer in the schema: feedback, explanations by test name, tags."""
    answer = {
        "feedback": feedback,
        "explanations": [{"test": n, "explanation": e} for n, e in explanations.items()],
        "fail_tags": list(tags),
    }
    if rubric_score is not None:
        answer["rubric_score"] = rubric_score
    return Completion(answer, prompt_tokens=700, completion_tokens=90)


@pytest.fixture
def submit():
    """build_result for `code`, as if its bundle had been read from Redis."""

    def run(code: str, settings, **bundle_args):
        return build_result(settings, make_bundle(code, **bundle_args))

    return run


def test_without_an_llm_grading_completes_with_deterministic_feedback(submit):
    result = submit(HALF_RIGHT, llm_settings(None, llm_api_key=None))
    assert result.status == "graded"
    assert result.score == 66.67
    assert result.metrics["llm"] == "not_configured"
    assert result.metrics["llm_detail"] == "no LLM is configured (LLM_API_KEY is not set)"
    assert result.feedback.splitlines()[0] == "**Score: 66.67 / 100**: 2 of 3 tests passed."
    assert "- `negative`: **wrong_answer**: the output differs" in result.feedback
    assert result.instructor_tags == []


def test_with_an_llm_the_feedback_explains_and_names_the_failing_tests(submit, fake_llm):
    fake_llm.script(
        said(
            "Mind the signs of the numbers.",
            ["edge_case", "full_marks", "inefficient"],
            negative="`abs()` drops the sign of the numbers.",
        )
    )
    result = submit(HALF_RIGHT, llm_settings(fake_llm.base_url))
    assert result.status == "graded"
    assert result.score == 66.67
    # `edge_case` has its evidence (some tests pass, one fails); `inefficient` has none.
    assert result.fail_tags == ["wrong_answer", "partial", "edge_case"]
    assert result.metrics["llm_dropped_tags"] == {
        "inefficient": "needs a time or memory limit exceeded, or a test within 80% of a limit"
    }
    assert "- `negative`: **wrong_answer**: `abs()` drops the sign" in result.feedback
    metrics = result.metrics
    assert (metrics["llm"], metrics["llm_tokens_in"], metrics["llm_tokens_out"]) == ("ok", 700, 90)
    assert metrics["llm_model"] == "fake-gpt"
    assert metrics["llm_latency_ms"] >= 0
    [request] = fake_llm.received
    assert "print(abs(a) + abs(b))" in request.prompt
    assert '"actual_output": "7\\n"' in request.prompt


def test_a_failing_hidden_test_is_named_but_never_quoted(submit, fake_llm):
    fake_llm.script(said("Big inputs go wrong.", **{"hidden big": "Large sums are cut to 0."}))
    result = submit(HIDDEN_WRONG, llm_settings(fake_llm.base_url))
    assert "`hidden big` (hidden test): **wrong_answer**: Large sums are cut" in result.feedback
    prompt = fake_llm.received[0].prompt
    for secret in (HIDDEN_STDIN.strip(), HIDDEN_EXPECTED.strip()):
        assert secret not in prompt
        assert secret not in result.feedback


def test_a_model_that_quotes_a_hidden_test_is_not_stored(submit, fake_llm):
    fake_llm.script(said("Nearly there.", **{"hidden big": "It expects 777777."}))
    result = submit(HIDDEN_WRONG, llm_settings(fake_llm.base_url))
    assert result.metrics["llm"] == "leak_filtered"
    assert result.metrics["llm_discarded_reason"] == "quotes_hidden_test"
    assert "777777" not in result.feedback
    assert "- `hidden big` (hidden test): **wrong_answer**" in result.feedback


def test_llm_down_adds_at_most_its_budget_and_still_grades(submit, fake_llm):
    """The contract: a silent LLM costs at most the configured timeout, retries included,
    then the submission is graded from its tests with deterministic feedback."""
    fake_llm.reset(default=Sleep(60, then=said("late")))
    timeout, retries = 1.0, 1
    started = time.monotonic()
    result = submit(
        HALF_RIGHT,
        llm_settings(fake_llm.base_url, llm_timeout_seconds=timeout, llm_max_retries=retries),
    )
    elapsed = time.monotonic() - started
    assert elapsed < timeout + 5
    assert result.status == "graded"
    assert result.score == 66.67
    assert result.metrics["llm"] == "timeout"
    assert result.metrics["llm_detail"] == "the LLM API gave no complete answer within 1 s"
    assert "- `negative`: **wrong_answer**" in result.feedback
    assert "late" not in result.feedback


def test_llm_errors_still_grade(submit, fake_llm):
    fake_llm.reset(default=Status(500))
    result = submit(HALF_RIGHT, llm_settings(fake_llm.base_url))
    assert result.status == "graded"
    assert result.score == 66.67
    assert result.metrics["llm"] == "unavailable"


def test_a_compile_error_is_explained_and_its_message_kept(submit, fake_llm):
    fake_llm.script(said("Line 1 lacks a colon."))
    result = submit("def f()\n    return 1\n", llm_settings(fake_llm.base_url))
    assert result.status == "failed"
    assert result.score == 0
    assert "syntax_error" in result.fail_tags
    assert "Line 1 lacks a colon." in result.feedback
    assert "Compiler output:" in result.feedback
    assert "SyntaxError" in fake_llm.received[0].prompt


def test_the_rubric_share_is_earned_by_the_tests_passed(submit, fake_llm):
    fake_llm.script(said("Readable.", rubric_score=0.5, negative="Signs."))
    result = submit(
        HALF_RIGHT,
        llm_settings(fake_llm.base_url),
        rubric="Readable names; no magic numbers.",
        rubric_weight=0.2,
    )
    assert result.metrics["tests_score"] == 66.67
    assert result.tests_score == round(66.67 * 0.8, 2)
    assert result.rubric_score == round(0.2 * 100 * 0.5 * 0.6667, 2)
    assert result.score == round(result.tests_score + result.rubric_score, 2)
    assert result.score_state == "final"
    assert [t.score for t in result.tests] == [33.33, 0.0, 33.33]


@pytest.mark.parametrize(
    ("language", "code", "status", "verdict"),
    [
        ("python", "def total(xs):\n    return sum(xs)\n", "graded", None),
        ("c", "int main(void) { return 0 }\n", "failed", "compile_error"),
    ],
)
def test_an_assignment_without_tests_is_graded_by_its_rubric_alone(
    submit, fake_llm, language, code, status, verdict
):
    fake_llm.script(said("Clear and short.", rubric_score=0.8))
    bundle = make_bundle(code, tests=(), rubric="A function `total` that sums a list.")
    result = build_result(
        llm_settings(fake_llm.base_url), bundle.model_copy(update={"language": language})
    )
    assert (result.status, result.verdict) == (status, verdict)
    assert result.score_state == "provisional"
    assert result.tests == [] and result.tests_score is None
    # A build that fails earns no rubric point, whatever the model said.
    expected = 80.0 if status == "graded" else 0.0
    assert result.score == result.rubric_score == expected
    assert "rubric_score" in fake_llm.received[0].schema["properties"]
