"""Feedback and the final result. Pure.

The deterministic feedback is built from the verdicts: useful on its own, and the fallback
whenever no LLM is configured, it fails, or its answer is discarded. With LLM feedback, the
headline (the score) stays deterministic and every failing test is listed, with the model's
explanation of it or the verdict's advice, so the student always sees the real score and
every failing test whatever the model wrote.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from runner_image.contract import Result, TestResult, Verdict
from runner_image.grading.judge import Judgement
from runner_image.grading.score import PROVISIONAL_RUBRIC_WEIGHT, Score, final_score
from runner_image.review.answer import FeedbackAnswer
from runner_image.review.injection import INSTRUCTOR_TAG

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


def headline(judgement: Judgement, score: Score | None = None) -> str:
    """The first line: the real score, and how the tests and the rubric made it."""
    total = judgement.score if score is None else score.total
    line = f"**Score: {total:g} / {judgement.max_score:g}**: "
    if score is not None and not judgement.tests:
        line += "graded by a review of your code against the rubric, as there are no tests."
        if score.rubric is None:
            return line + " The review was unavailable; your instructor will grade it."
        return line + " This score is provisional until your instructor reviews it."
    passed = judgement.metrics.get("tests_passed", 0)
    total_tests = judgement.metrics.get("tests_total", 0)
    line += f"{passed} of {total_tests} tests passed."
    if score is None or not score.weight > 0:
        return line
    if score.rubric is None:
        line += " The rubric review was unavailable, so the tests give the whole score."
    else:
        w = score.weight
        line += (
            f" The tests give {score.tests:g} ({judgement.score:g} x {1 - w:g}); the review "
            f"against the rubric gives {score.rubric:g} of at most "
            f"{w * judgement.max_score:g}, earned in proportion to the tests passed "
            f"({score.tests_fraction:.0%})."
        )
    if score.weight > PROVISIONAL_RUBRIC_WEIGHT:
        line += " The rubric's part is provisional until your instructor reviews it."
    return line


def _test_line(test: TestResult, explanation: str | None = None) -> str:
    """A failing test's line: the model's explanation of it, or the verdict's advice."""
    where = " (hidden test)" if test.hidden else ""
    if explanation:
        # Continuation lines indented, so that the explanation stays in its list item.
        said = "\n  ".join(explanation.strip().splitlines())
        return f"- `{test.name}`{where}: **{test.verdict}**: {said}"
    advice = VERDICT_ADVICE.get(test.verdict, test.verdict)
    return f"- `{test.name}`{where}: **{test.verdict}**: {advice}."


def deterministic_feedback(judgement: Judgement, title: str | None = None) -> str:
    lines = [title or headline(judgement), ""]
    compile_message = judgement.build_message
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


def explained_feedback(judgement: Judgement, title: str, answer: FeedbackAnswer) -> str:
    """The model's feedback under the deterministic headline, followed by the compiler's
    message or by every failing test, each with the model's explanation when it gave one
    (else the verdict's advice): every failing test is listed whatever the model wrote."""
    parts = [title, "", answer.feedback.strip()]
    compile_message = judgement.build_message
    if compile_message is not None:
        parts += ["", "Compiler output:", "", fenced(compile_message[:4000])]
        return "\n".join(parts)
    explanations = {item.test: item.explanation for item in answer.explanations}
    failing = [test for test in judgement.tests if test.verdict != Verdict.ACCEPTED]
    if failing:
        parts += ["", "Tests not passing yet:", ""]
        parts += [_test_line(test, explanations.get(test.name)) for test in failing]
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
    if reply.discarded_reason:
        metrics["llm_discarded_reason"] = reply.discarded_reason
    if reply.answer is not None:
        metrics["llm_tags_dropped"] = len(reply.dropped_tags)
        metrics["llm_explanations_dropped"] = reply.dropped_explanations
        if reply.dropped_tags:
            metrics["llm_dropped_tags"] = dict(reply.dropped_tags)
    return metrics


def assemble_result(
    judgement: Judgement, reply: LlmReply, weight: float, instructor_tags: list[str]
) -> Result:
    """The result the runner reports: the judgement, with the final score and its parts,
    the feedback, the model's grounded tags, the LLM metrics and the instructor-only tags.
    `reply` has been vetted (review.vetting)."""
    rubric_score = reply.rubric_score if weight > 0 else None
    score = final_score(judgement, weight, rubric_score, INSTRUCTOR_TAG in instructor_tags)
    title = headline(judgement, score)
    if reply.answer is not None:
        feedback = explained_feedback(judgement, title, reply.answer)
    else:
        feedback = deterministic_feedback(judgement, title)
    metrics = {**judgement.metrics, **llm_metrics(reply), "tests_score": judgement.score}
    if weight > 0:
        metrics |= {
            "rubric_weight": weight,
            "rubric_score": rubric_score,
            "tests_fraction": round(score.tests_fraction, 4),
        }
    return Result(
        status=judgement.status,
        verdict=judgement.verdict,
        score=score.total,
        max_score=judgement.max_score,
        tests_score=score.tests,
        rubric_score=score.rubric,
        score_state=score.state,
        fail_tags=[
            *judgement.fail_tags,
            *(tag for tag in reply.tags if tag not in judgement.fail_tags),
        ],
        instructor_tags=sorted(set(instructor_tags)),
        feedback=feedback,
        tests=judgement.tests,
        metrics=metrics,
    )
