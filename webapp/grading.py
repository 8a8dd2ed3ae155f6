"""Hand a saved submission to the grading pipeline: the bundle in Redis, a task on the queue."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from redis.exceptions import RedisError

from runner_image.bundle import BUNDLE_KEY
from tasks.celery_app import SCHEDULE_TASK
from webapp.config import Settings
from webapp.extensions import Services
from webapp.models import Assignment, Submission


def build_bundle(submission: Submission, assignment: Assignment) -> dict[str, Any]:
    """Everything the trusted runner needs; it alone ever sees the expected outputs."""
    return {
        "submission_id": str(submission.id),
        "assignment_id": str(assignment.id),
        "language": submission.language,
        "code": submission.code,
        "time_limit_ms": assignment.time_limit_ms,
        "memory_limit_mb": assignment.memory_limit_mb,
        "max_score": assignment.max_score,
        "feedback": {
            "llm": assignment.feedback.llm,
            "rubric": assignment.feedback.rubric,
            "rubric_weight": assignment.feedback.rubric_weight,
        },
        "assignment": {"title": assignment.title, "description": assignment.description},
        "tests": [
            {
                "name": t.name,
                "stdin": t.stdin,
                "expected_stdout": t.expected_stdout,
                "call": t.call,
                "expected": t.expected,
                "hidden": t.hidden,
                "weight": t.weight,
                "compare": t.compare,
                "tolerance": t.tolerance,
            }
            for t in assignment.tests
        ],
    }


def enqueue_grading(
    submission: Submission, assignment: Assignment, services: Services, settings: Settings
) -> None:
    """Raises redis/kombu errors when the broker is down; the caller decides what that means."""
    services.redis.set(
        BUNDLE_KEY.format(id=submission.id),
        json.dumps(build_bundle(submission, assignment)),
        ex=settings.bundle_ttl_seconds,
    )
    send_grading_task(submission, services, settings)


def send_grading_task(submission: Submission, services: Services, settings: Settings) -> None:
    services.celery.send_task(
        SCHEDULE_TASK, args=[str(submission.id)], queue=settings.queue_submissions
    )


def discard_bundle(submission_id: object, services: Services) -> None:
    """Best effort: a bundle nobody will read again (the result is stored, or the task was
    never sent) should not hold Redis memory until its TTL."""
    with contextlib.suppress(RedisError):
        services.redis.delete(BUNDLE_KEY.format(id=submission_id))
