"""Feedback and the final result. Pure.

The deterministic feedback is built from the verdicts: useful on its own, and the fallback
whenever no LLM is configured or it fails. With LLM feedback, the headline (the score) stays
deterministic and every failing test the model did not name is still listed, so the student
always sees the real score and every failing test whatever the model wrote.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from runner_image.contract import Result, TestResult, Verdict
from runner_image.grading.judge import Judgement
from runner_image.grading.score import blended_score

if TYPE_CHECKING:
    from runner_image.review.llm import LlmReply

VERDICT_ADVICE = {
    Verdict.WRONG_ANSWER: "the output differs from the expected output",
    Verdict.TIME_LIMIT_EXCEEDED: "the program ran past the time limit (an endless loop, or an "
    "algorithm too slow for the input size?)",
    Verdict.MEMORY_LIMIT_EXCEEDED: "the program used more memory than allowed",
    Verdict.OUTPUT_LIMIT_EXCEEDED: "the program printed far more than expected",
    Verdict.RUNTIME_ERROR: "the program crashed or exited with a non-zero code",
    Verdict.COMPILE_ERROR: "the code does not compile",
    Verdict.SKIPPED: "the test was not run",
    Verdict.INTERNAL_ERROR: "the grader could not run this test",
}


def fenced(text: str) -> str:
    """A markdown code block that the text itself cannot close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


def headline(
    judgement: Judgement,
    score: float | None = None,
    weight: float = 0.0,
    rubric_score: float | None = None,
) -> str:
    passed = judgement.metrics.get("tests_passed", 0)
    total = judgement.metrics.get("tests_total", 0)
    score = judgement.score if score is None else score
    line = f"**Score: {score:g} / {judgement.max_score:g}**: {passed} of {total} tests passed."
    if weight > 0 and rubric_score is not None:
        line += (
            f" The tests give {judgement.score:g} and count for {(1 - weight) * 100:g} %; "
            f"the review of your code against the rubric gives {rubric_score * 100:.0f} % and "
            f"counts for {weight * 100:g} %."
        )
    elif weight > 0:
        line += " The rubric review was unavailable, so the tests give the whole score."
    return line


def _test_line(test: TestResult) -> str:
    advice = VERDICT_ADVICE.get(test.verdict, test.verdict)
    where = " (hidden test)" if test.hidden else ""
    return f"- `{test.name}`{where}: **{test.verdict}**: {advice}."


def _compile_message(judgement: Judgement) -> str | None:
    messages = [t.message for t in judgement.tests if t.verdict == Verdict.COMPILE_ERROR]
    return next((m for m in messages if m), None)


def deterministic_feedback(judgement: Judgement, title: str | None = None) -> str:
    lines = [title or headline(judgement), ""]
    compile_message = _compile_message(judgement)
    if compile_message is not None:
        lines += ["Your code does not compile:", "", fenced(compile_message[:4000])]
        return "\n".join(lines)
    for test in judgement.tests:
        if test.verdict == Verdict.ACCEPTED:
            lines.append(f"- `{test.name}`: passed ({test.time_ms} ms)")
            continue
        lines.append(_test_line(test))
        if not test.hidden and test.verdict == Verdict.RUNTIME_ERROR and test.message:
            lines.append("")
            lines.append(fenced(test.message[-1500:]))
    return "\n".join(lines)


def explained_feedback(judgement: Judgement, title: str, explanation: str) -> str:
    """The model's explanation under the deterministic headline, followed by the compiler's
    message or by every failing test the explanation does not name."""
    parts = [title, "", explanation.strip()]
    compile_message = _compile_message(judgement)
    if compile_message is not None:
        parts += ["", "Compiler output:", "", fenced(compile_message[:4000])]
        return "\n".join(parts)
    unnamed = [
        test
        for test in judgement.tests
        if test.verdict != Verdict.ACCEPTED and f"`{test.name}`" not in explanation
    ]
    if unnamed:
        parts += ["", "Tests not passing yet:", ""] + [_test_line(test) for test in unnamed]
    return "\n".join(parts)


def llm_metrics(reply: LlmReply) -> dict[str, Any]:
    """What `metrics` records of the LLM step: why there is no feedback, or what it cost."""
    metrics: dict[str, Any] = {"llm": reply.status}
    if reply.detail:
        metrics["llm_detail"] = reply.detail
    if reply.model:
        metrics["llm_model"] = reply.model
    if reply.latency_ms is not None:
        metrics["llm_latency_ms"] = reply.latency_ms
    if reply.tokens_in is not None or reply.tokens_out is not None:
        metrics["llm_tokens_in"] = reply.tokens_in
        metrics["llm_tokens_out"] = reply.tokens_out
        metrics["llm_tokens"] = (reply.tokens_in or 0) + (reply.tokens_out or 0)
    return metrics


def assemble_result(
    judgement: Judgement, reply: LlmReply, weight: float, instructor_tags: list[str]
) -> Result:
    """The result the runner reports: the judgement, with the final score, the feedback,
    the model's extra tags, the LLM metrics and the instructor-only tags."""
    rubric_score = reply.rubric_score if weight > 0 else None
    score = blended_score(judgement.score, judgement.max_score, rubric_score, weight)
    title = headline(judgement, score, weight, rubric_score)
    if reply.answer is not None:
        feedback = explained_feedback(judgement, title, reply.answer.feedback)
    else:
        feedback = deterministic_feedback(judgement, title)
    metrics = {**judgement.metrics, **llm_metrics(reply), "tests_score": judgement.score}
    if weight > 0:
        metrics |= {"rubric_weight": weight, "rubric_score": rubric_score}
    return Result(
        status=judgement.status,
        verdict=judgement.verdict,
        score=score,
        max_score=judgement.max_score,
        fail_tags=[
            *judgement.fail_tags,
            *(tag for tag in reply.tags if tag not in judgement.fail_tags),
        ],
        instructor_tags=sorted(set(instructor_tags)),
        feedback=feedback,
        tests=judgement.tests,
        metrics=metrics,
    )
