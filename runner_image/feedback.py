"""Deterministic feedback built from the verdicts: useful on its own, and the fallback
whenever no LLM is configured or it fails. Pure."""

from __future__ import annotations

import re

from runner_image.judge import ACCEPTED, Judgement

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


def deterministic_feedback(judgement: Judgement) -> str:
    passed = judgement.metrics.get("tests_passed", 0)
    total = judgement.metrics.get("tests_total", 0)
    lines = [
        f"**Score: {judgement.score:g} / {judgement.max_score:g}**: "
        f"{passed} of {total} tests passed.",
        "",
    ]
    compile_messages = {t["message"] for t in judgement.tests if t["verdict"] == "compile_error"}
    if compile_messages:
        lines += ["Your code does not compile:", "", fenced(next(iter(compile_messages))[:4000])]
        return "\n".join(lines)
    for test in judgement.tests:
        if test["verdict"] == ACCEPTED:
            lines.append(f"- `{test['name']}`: passed ({test['time_ms']} ms)")
            continue
        advice = VERDICT_ADVICE.get(test["verdict"], test["verdict"])
        where = " (hidden test)" if test["hidden"] else ""
        lines.append(f"- `{test['name']}`{where}: **{test['verdict']}**: {advice}.")
        if not test["hidden"] and test["verdict"] == "runtime_error" and test["message"]:
            lines.append("")
            lines.append(fenced(test["message"][-1500:]))
    return "\n".join(lines)
