"""What of the model's answer reaches the student. Pure.

In order: explanations of tests that did not run and fail are dropped; an answer that quotes
a hidden test, the system prompt or the rubric (`leak_filtered`), or that contradicts the
run or states a score (`inconsistent`), is discarded whole, for the deterministic feedback;
and the tags the run does not support are dropped (review.evidence). What was dropped and
why is kept on the reply for the staff-only metrics.
"""

from __future__ import annotations

from dataclasses import replace

from runner_image.contract import Bundle
from runner_image.grading.judge import Judgement
from runner_image.review.answer import TestExplanation
from runner_image.review.consistency import (
    QUOTES_RUBRIC,
    QUOTES_SYSTEM_PROMPT,
    inconsistency,
)
from runner_image.review.evidence import grounded_tags
from runner_image.review.filters import hidden_leak
from runner_image.review.llm import INCONSISTENT, LEAK_FILTERED, LlmReply
from runner_image.review.prompt import explained_tests

QUOTES_HIDDEN_TEST = "quotes_hidden_test"


def _discarded(reply: LlmReply, status: str, reason: str, detail: str) -> LlmReply:
    return replace(
        reply,
        status=status,
        detail=f"the LLM feedback was dropped: it {detail}",
        answer=None,
        tags=[],
        discarded_reason=reason,
    )


def vet(reply: LlmReply, bundle: Bundle, judgement: Judgement) -> LlmReply:
    """The reply as the student may see it; a reply without an answer is returned as is."""
    answer = reply.answer
    if answer is None:
        return reply
    explainable = set(explained_tests(judgement))
    explanations: dict[str, str] = {}
    for item in answer.explanations:
        if item.test in explainable and item.test not in explanations and item.explanation:
            explanations[item.test] = item.explanation
    dropped_explanations = len(answer.explanations) - len(explanations)
    leaked = hidden_leak("\n".join([answer.feedback, *explanations.values()]), bundle)
    if leaked is not None:
        return _discarded(reply, LEAK_FILTERED, QUOTES_HIDDEN_TEST, "quoted a hidden test")
    problem = inconsistency(
        answer.feedback, explanations, bundle, judgement, reply.system_prompt or ""
    )
    if problem is not None:
        leak = problem.reason in (QUOTES_SYSTEM_PROMPT, QUOTES_RUBRIC)
        status = LEAK_FILTERED if leak else INCONSISTENT
        return _discarded(reply, status, problem.reason, problem.detail)
    tags, dropped_tags = grounded_tags(reply.tags, bundle, judgement, reply.rubric_score)
    kept = [TestExplanation(test=name, explanation=text) for name, text in explanations.items()]
    return replace(
        reply,
        answer=answer.model_copy(update={"explanations": kept}),
        tags=tags,
        dropped_tags=dropped_tags,
        dropped_explanations=dropped_explanations,
    )
