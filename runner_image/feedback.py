"""Feedback and the final result. Pure.

The deterministic feedback is built from the verdicts: useful on its own, and the fallback
whenever no LLM is configured or it fails. With LLM feedback, the headline (the score) stays
deterministic and every failing test the model did not name is still listed, so the student
always sees the real score and every failing test whatever the model wrote.

The score: the tests own it. Only where the assignment gives its rubric a weight w (at most
0.3) is it `tests_score * (1 - w) + rubric_score * max_score * w`; without a rubric score
(no LLM, or it failed) the tests give the whole score.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from runner_image.judge import ACCEPTED, Judgement

if TYPE_CHECKING:
    from runner_image.llm import LlmReply

MAX_RUBRIC_WEIGHT = 0.3

VERDICT_ADVICE = {
    "wrong_answer": "the output differs from the expected output",
    "time_limit_exceeded": "the program ran past the time limit (an endless loop, or an "
    "algorithm too slow for the input size?)",
    "memory_limit_exceeded": "the program used more memory than allowed",
    "output_limit_exceeded": "the program printed far more than expected",
    "runtime_error": "the program crashed or exited with a non-zero code",
    "compile_error": "the code does not compile",
    "internal_error": "the grader could not run this test",
}


def fenced(text: str) -> str:
    """A markdown code block that the text itself cannot close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text}\n{fence}"


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


def _test_line(test: dict[str, Any]) -> str:
    advice = VERDICT_ADVICE.get(test["verdict"], test["verdict"])
    where = " (hidden test)" if test["hidden"] else ""
    return f"- `{test['name']}`{where}: **{test['verdict']}**: {advice}."


def _compile_message(judgement: Judgement) -> str | None:
    messages = [t["message"] for t in judgement.tests if t["verdict"] == "compile_error"]
    return next((m for m in messages if m), None)


def deterministic_feedback(judgement: Judgement, title: str | None = None) -> str:
    lines = [title or headline(judgement), ""]
    compile_message = _compile_message(judgement)
    if compile_message is not None:
        lines += ["Your code does not compile:", "", fenced(compile_message[:4000])]
        return "\n".join(lines)
    for test in judgement.tests:
        if test["verdict"] == ACCEPTED:
            lines.append(f"- `{test['name']}`: passed ({test['time_ms']} ms)")
            continue
        lines.append(_test_line(test))
        if not test["hidden"] and test["verdict"] == "runtime_error" and test["message"]:
            lines.append("")
            lines.append(fenced(test["message"][-1500:]))
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
        if test["verdict"] != ACCEPTED and f"`{test['name']}`" not in explanation
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
) -> dict[str, Any]:
    """The result the runner reports: the judgement, with the final score, the feedback,
    the model's extra tags, the LLM metrics and the instructor-only tags."""
    result = asdict(judgement)
    rubric_score = reply.rubric_score if weight > 0 else None
    score = blended_score(judgement.score, judgement.max_score, rubric_score, weight)
    title = headline(judgement, score, weight, rubric_score)
    if reply.answer is not None:
        result["feedback"] = explained_feedback(judgement, title, reply.answer.feedback)
    else:
        result["feedback"] = deterministic_feedback(judgement, title)
    result["score"] = score
    result["fail_tags"] = [
        *judgement.fail_tags,
        *(tag for tag in reply.tags if tag not in judgement.fail_tags),
    ]
    result["metrics"] |= llm_metrics(reply)
    result["metrics"]["tests_score"] = judgement.score
    if weight > 0:
        result["metrics"]["rubric_weight"] = weight
        result["metrics"]["rubric_score"] = rubric_score
    result["instructor_tags"] = sorted(set(instructor_tags))
    return result
