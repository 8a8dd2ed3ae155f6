"""Hand a saved submission to the grading pipeline: the bundle in Redis, a task on the queue."""

from __future__ import annotations

import contextlib

from redis.exceptions import RedisError

from runner_image.contract import AssignmentText, Bundle, bundle_key
from tasks.celery_app import SCHEDULE_TASK
from tasks.launchers.deadline import runner_deadline_seconds
from webapp.models import Assignment, Submission
from webapp.services import Services
from webapp.settings import WebappSettings


def build_bundle(submission: Submission, assignment: Assignment) -> Bundle:
    """Everything the trusted runner needs; it alone ever sees the expected outputs."""
    return Bundle(
        submission_id=str(submission.id),
        assignment_id=str(assignment.id),
        language=submission.language,
        code=submission.code,
        tests=tuple(assignment.test_cases),
        time_limit_ms=assignment.time_limit_ms,
        memory_limit_mb=assignment.memory_limit_mb,
        max_score=assignment.max_score,
        feedback=assignment.feedback_settings,
        assignment=AssignmentText(title=assignment.title, description=assignment.description),
    )


def enqueue_grading(
    submission: Submission, assignment: Assignment, services: Services, settings: WebappSettings
) -> None:
    """Raises redis/kombu errors when the broker is down; the caller decides what that means."""
    services.redis.set(
        bundle_key(submission.id),
        build_bundle(submission, assignment).model_dump_json(),
        ex=settings.bundle_ttl_seconds,
    )
    send_grading_task(submission, assignment, services, settings)


def send_grading_task(
    submission: Submission,
    assignment: Assignment,
    services: Services,
    settings: WebappSettings,
    attempt: int = 1,
) -> None:
    """`attempt` > 1 asks for a fresh runner (the sweep's, after one never reported)."""
    deadline = runner_deadline_seconds(len(assignment.tests), assignment.time_limit_ms, settings)
    kwargs = {"deadline_seconds": deadline} | ({"attempt": attempt} if attempt > 1 else {})
    services.celery.send_task(
        SCHEDULE_TASK, args=[str(submission.id)], kwargs=kwargs, queue=settings.queue_submissions
    )


def discard_bundle(submission_id: object, services: Services) -> None:
    """Best effort: a bundle nobody will read again (the result is stored, or the task was
    never sent) should not hold Redis memory until its TTL."""
    with contextlib.suppress(RedisError):
        services.redis.delete(bundle_key(submission_id))
