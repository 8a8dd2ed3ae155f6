"""The step after the tests: injection check, LLM feedback (or the deterministic fallback),
and the final result. The score stays the tests' (see feedback.blended_score)."""

from __future__ import annotations

import logging
from typing import Any

from runner_image.bundle import Bundle
from runner_image.config import RunnerSettings
from runner_image.feedback import assemble_result
from runner_image.injection import INSTRUCTOR_TAG, detect_injection
from runner_image.judge import Judgement
from runner_image.llm import request_feedback
from runner_image.llm_prompt import rubric_weight

log = logging.getLogger("runner")


def review(bundle: Bundle, judgement: Judgement, settings: RunnerSettings) -> dict[str, Any]:
    """Never raises for an LLM problem: without an answer in time, the feedback is built
    from the verdicts and `metrics.llm` says why."""
    outputs = (row.get("stdout") or "" for row in judgement.tests)
    suspicions = detect_injection(bundle.code, *outputs)
    if suspicions:
        log.warning("submission %s: suspected injection (%s)", bundle.submission_id, suspicions)
    reply = request_feedback(bundle, judgement, settings)
    log.info("submission %s: LLM feedback %s", bundle.submission_id, reply.status)
    instructor_tags = [INSTRUCTOR_TAG] if suspicions else []
    return assemble_result(judgement, reply, rubric_weight(bundle), instructor_tags)
