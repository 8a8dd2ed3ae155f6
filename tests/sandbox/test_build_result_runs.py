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
        Completion(
            {
                "feedback": "`negative` fails: `abs()` drops the sign of the numbers.",
                "fail_tags": ["edge_case", "full_marks"],
            },
            prompt_tokens=700,
            completion_tokens=90,
        )
    )
    result = submit(HALF_RIGHT, llm_settings(fake_llm.base_url))
    assert result.status == "graded"
    assert result.score == 66.67
    assert result.fail_tags == ["wrong_answer", "partial", "edge_case"]
    assert "`negative` fails: `abs()` drops the sign" in result.feedback
    assert "Tests not passing yet" not in result.feedback
    metrics = result.metrics
    assert (metrics["llm"], metrics["llm_tokens_in"], metrics["llm_tokens_out"]) == ("ok", 700, 90)
    assert metrics["llm_model"] == "fake-gpt"
    assert metrics["llm_latency_ms"] >= 0
    [request] = fake_llm.received
    assert "print(abs(a) + abs(b))" in request.prompt
    assert '"actual_output": "7\\n"' in request.prompt


def test_a_failing_hidden_test_is_named_but_never_quoted(submit, fake_llm):
    fake_llm.script(
        Completion({"feedback": "Big inputs go wrong; `hidden big` fails.", "fail_tags": []})
    )
    result = submit(HIDDEN_WRONG, llm_settings(fake_llm.base_url))
    assert "`hidden big` fails" in result.feedback
    prompt = fake_llm.received[0].prompt
    for secret in (HIDDEN_STDIN.strip(), HIDDEN_EXPECTED.strip()):
        assert secret not in prompt
        assert secret not in result.feedback


def test_a_model_that_quotes_a_hidden_test_is_not_stored(submit, fake_llm):
    fake_llm.script(Completion({"feedback": "`hidden big` expects 777777.", "fail_tags": []}))
    result = submit(HIDDEN_WRONG, llm_settings(fake_llm.base_url))
    assert result.metrics["llm"] == "leak_filtered"
    assert "777777" not in result.feedback
    assert "- `hidden big` (hidden test): **wrong_answer**" in result.feedback


def test_llm_down_adds_at_most_its_budget_and_still_grades(submit, fake_llm):
    """The contract: a silent LLM costs at most the configured timeout, retries included,
    then the submission is graded from its tests with deterministic feedback."""
    fake_llm.reset(default=Sleep(60, then=Completion({"feedback": "late", "fail_tags": []})))
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
    fake_llm.script(Completion({"feedback": "Line 1 lacks a colon.", "fail_tags": []}))
    result = submit("def f()\n    return 1\n", llm_settings(fake_llm.base_url))
    assert result.status == "failed"
    assert result.score == 0
    assert "syntax_error" in result.fail_tags
    assert "Line 1 lacks a colon." in result.feedback
    assert "Compiler output:" in result.feedback
    assert "SyntaxError" in fake_llm.received[0].prompt


def test_the_rubric_blends_only_its_bounded_share(submit, fake_llm):
    fake_llm.script(
        Completion({"feedback": "`negative` fails.", "fail_tags": [], "rubric_score": 0.5})
    )
    result = submit(
        HALF_RIGHT,
        llm_settings(fake_llm.base_url),
        rubric="Readable names; no magic numbers.",
        rubric_weight=0.2,
    )
    assert result.metrics["tests_score"] == 66.67
    assert result.score == round(66.67 * 0.8 + 0.5 * 100 * 0.2, 2)
    assert [t.score for t in result.tests] == [33.33, 0.0, 33.33]
