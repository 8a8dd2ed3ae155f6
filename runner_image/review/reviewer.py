"""The review step: injection check, LLM feedback vetted against the run (or the
deterministic fallback), and the final result. The tests own the score; the rubric's share
is earned by passing them (see grading.score)."""

from __future__ import annotations

import logging
from dataclasses import replace

from runner_image.contract import Bundle, Result
from runner_image.grading.judge import Judgement
from runner_image.grading.score import rubric_weight
from runner_image.review.feedback import assemble_result
from runner_image.review.injection import INSTRUCTOR_TAG, detect_injection
from runner_image.review.llm import ERROR, LlmReply, request_feedback
from runner_image.review.vetting import vet
from runner_image.settings import RunnerSettings

log = logging.getLogger("runner")


def review(bundle: Bundle, judgement: Judgement, settings: RunnerSettings) -> Result:
    """Never raises for an LLM problem: without an answer in time, the feedback is built
    from the verdicts and `metrics.llm` says why."""
    outputs = (row.stdout or "" for row in judgement.tests)
    suspicions = detect_injection(bundle.code, *outputs)
    if suspicions:
        log.warning("submission %s: suspected injection (%s)", bundle.submission_id, suspicions)
    reply = _vetted(request_feedback(bundle, judgement, settings), bundle, judgement)
    log.info("submission %s: LLM feedback %s", bundle.submission_id, reply.status)
    if reply.discarded_reason or reply.dropped_tags:
        log.warning(
            "submission %s: LLM answer %s, tags dropped %s",
            bundle.submission_id,
            reply.discarded_reason or "kept",
            sorted(reply.dropped_tags),
        )
    instructor_tags = [INSTRUCTOR_TAG] if suspicions else []
    return assemble_result(judgement, reply, rubric_weight(bundle), instructor_tags)


def _vetted(reply: LlmReply, bundle: Bundle, judgement: Judgement) -> LlmReply:
    """The vetted reply; a bug in the vetting costs the model's answer, never the grading."""
    try:
        return vet(reply, bundle, judgement)
    except Exception:
        log.exception("submission %s: vetting the LLM answer failed", bundle.submission_id)
        detail = "vetting the LLM answer failed unexpectedly; it was dropped"
        return replace(reply, status=ERROR, detail=detail, answer=None, tags=[])
