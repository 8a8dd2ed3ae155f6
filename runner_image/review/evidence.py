"""Evidence rules: a tag the model suggests reaches the result only when the execution shows
what it claims, since instructors read the tags as statistics about their class. Pure.

One rule per tag (docs/llm.md lists them):
- any tag: not on a submission that passed every test (each tag names a problem);
- `edge_case`: some test passed and some ran and failed;
- `off_by_one`: some test gave a wrong answer or crashed;
- `inefficient`: some test ran out of time or memory, or came within `NEAR_LIMIT` of the
  time or memory limit;
- `style`: the assignment has a rubric to judge style by, and the model did not give it
  full marks;
- an assignment's own tag: one of the tests staff linked it to (`feedback.tag_tests`) ran
  and failed; a tag linked to no test needs any test that ran and failed.
"Ran and failed" means a wrong answer, a time, memory or output limit, or a crash: a compile
error says nothing about the logic, and a test that was not run says nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from runner_image.contract import Bundle, TestResult, Verdict
from runner_image.grading.judge import Judgement

NEAR_LIMIT = 0.8
EXECUTED_FAILURES = frozenset(
    {
        Verdict.WRONG_ANSWER,
        Verdict.TIME_LIMIT_EXCEEDED,
        Verdict.MEMORY_LIMIT_EXCEEDED,
        Verdict.OUTPUT_LIMIT_EXCEEDED,
        Verdict.RUNTIME_ERROR,
    }
)
RESOURCE_FAILURES = frozenset({Verdict.TIME_LIMIT_EXCEEDED, Verdict.MEMORY_LIMIT_EXCEEDED})


def _failed(rows: Iterable[TestResult], verdicts: frozenset[Verdict] = EXECUTED_FAILURES) -> bool:
    return any(row.verdict in verdicts for row in rows)


def _edge_case(bundle: Bundle, judgement: Judgement) -> str | None:
    if any(row.verdict == Verdict.ACCEPTED for row in judgement.tests) and _failed(judgement.tests):
        return None
    return "needs some tests passed and some failed"


def _off_by_one(bundle: Bundle, judgement: Judgement) -> str | None:
    if _failed(judgement.tests, frozenset({Verdict.WRONG_ANSWER, Verdict.RUNTIME_ERROR})):
        return None
    return "needs a wrong answer or a crash"


def _near_limit(row: TestResult, bundle: Bundle) -> bool:
    time_near = (row.time_ms or 0) >= NEAR_LIMIT * bundle.time_limit_ms
    memory_near = (row.memory_kb or 0) >= NEAR_LIMIT * bundle.memory_limit_mb * 1024
    return time_near or memory_near


def _inefficient(bundle: Bundle, judgement: Judgement) -> str | None:
    if _failed(judgement.tests, RESOURCE_FAILURES) or any(
        _near_limit(row, bundle) for row in judgement.tests
    ):
        return None
    return f"needs a time or memory limit exceeded, or a test within {NEAR_LIMIT:.0%} of a limit"


RULES: dict[str, Callable[[Bundle, Judgement], str | None]] = {
    "edge_case": _edge_case,
    "off_by_one": _off_by_one,
    "inefficient": _inefficient,
}


def _style(bundle: Bundle, rubric_score: float | None) -> str | None:
    if not (bundle.feedback.rubric or "").strip():
        return "needs a rubric to judge style by"
    if rubric_score is not None and rubric_score >= 1.0:
        return "the model gave the rubric full marks"
    return None


def _own_tag(tag: str, bundle: Bundle, judgement: Judgement) -> str | None:
    linked = bundle.feedback.linked_tests().get(tag)
    if linked is None:
        return None if _failed(judgement.tests) else "needs a test that ran and failed"
    if _failed(row for row in judgement.tests if row.name in linked):
        return None
    return "needs one of its linked tests to fail"


def tag_problem(
    tag: str, bundle: Bundle, judgement: Judgement, rubric_score: float | None
) -> str | None:
    """Why the run does not support `tag` (a tag of the vocabulary), or None when it does."""
    if judgement.tests and all(row.verdict == Verdict.ACCEPTED for row in judgement.tests):
        return "every test passed"
    if tag in RULES:
        return RULES[tag](bundle, judgement)
    if tag == "style":
        return _style(bundle, rubric_score)
    return _own_tag(tag, bundle, judgement)


def grounded_tags(
    tags: list[str], bundle: Bundle, judgement: Judgement, rubric_score: float | None
) -> tuple[list[str], dict[str, str]]:
    """(the tags the run supports, {each other tag: why it was dropped})."""
    kept: list[str] = []
    dropped: dict[str, str] = {}
    for tag in tags:
        problem = tag_problem(tag, bundle, judgement, rubric_score)
        if problem is None:
            kept.append(tag)
        else:
            dropped[tag] = problem
    return kept, dropped
