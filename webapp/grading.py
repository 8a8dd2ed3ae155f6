"""Hand a saved submission to the grading pipeline: the bundle in Redis, a task on the queue.
Every grading round (the first, and each regrade) goes through here the same way."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from runner_image.contract import AssignmentText, Bundle, bundle_key
from tasks.celery_app import REGRADE_PRIORITY, SCHEDULE_TASK
from tasks.launchers.deadline import runner_deadline_seconds
from webapp.errors import ApiError
from webapp.lifecycle import fail_unqueued
from webapp.models import Assignment, Submission
from webapp.services import Services
from webapp.settings import WebappSettings

log = logging.getLogger(__name__)

# What sending a task can raise when the broker is unreachable.
QUEUE_ERRORS = (RedisError, KombuError, OSError)


def assignment_bundle(assignment: Assignment) -> Bundle:
    """The assignment's part of every bundle (its tests are validated once): a bulk regrade
    builds it once for all its submissions."""
    return Bundle(
        submission_id="",
        assignment_id=str(assignment.id),
        language=assignment.language,
        code="",
        tests=tuple(assignment.test_cases),
        time_limit_ms=assignment.time_limit_ms,
        memory_limit_mb=assignment.memory_limit_mb,
        max_score=assignment.max_score,
        feedback=assignment.feedback_settings,
        assignment=AssignmentText(title=assignment.title, description=assignment.description),
    )


def build_bundle(
    submission: Submission, assignment: Assignment, base: Bundle | None = None
) -> Bundle:
    """Everything the trusted runner needs; it alone ever sees the expected outputs. The
    tests are the assignment's as they are now: a regrade grades against the fixed tests.
    `base`: assignment_bundle(assignment), when the caller already built it."""
    return (base or assignment_bundle(assignment)).model_copy(
        update={
            "submission_id": str(submission.id),
            "language": submission.language,
            "code": submission.code,
            "round": submission.round,
        }
    )


def enqueue_grading(
    submission: Submission,
    assignment: Assignment,
    services: Services,
    settings: WebappSettings,
    base: Bundle | None = None,
) -> None:
    """Grade the submission's current round. Raises redis/kombu errors when the broker is
    down; the caller decides what that means."""
    services.redis.set(
        bundle_key(submission.id, submission.round),
        build_bundle(submission, assignment, base).model_dump_json(),
        ex=settings.bundle_ttl_seconds,
    )
    send_grading_task(submission, assignment, services, settings)


def enqueue_gradings(
    submissions: Sequence[Submission],
    assignment: Assignment,
    services: Services,
    settings: WebappSettings,
    base: Bundle | None = None,
) -> Iterator[Submission]:
    """Grade many submissions' current rounds (a bulk regrade): every bundle in one Redis
    round trip, then one task each; yields each submission once its task is sent, so a
    caller meeting the broker's error knows which were queued."""
    base = base or assignment_bundle(assignment)
    with services.redis.pipeline(transaction=False) as pipe:
        for submission in submissions:
            pipe.set(
                bundle_key(submission.id, submission.round),
                build_bundle(submission, assignment, base).model_dump_json(),
                ex=settings.bundle_ttl_seconds,
            )
        pipe.execute()
    for submission in submissions:
        send_grading_task(submission, assignment, services, settings)
        yield submission


def send_grading_task(
    submission: Submission,
    assignment: Assignment,
    services: Services,
    settings: WebappSettings,
    attempt: int = 1,
) -> None:
    """Submissions and single regrades on QUEUE_SUBMISSIONS; a bulk regrade's rounds
    (`low_priority`) on QUEUE_REGRADES at REGRADE_PRIORITY, behind every submission.
    `attempt` > 1 asks for a fresh runner (the sweep's, after one never reported)."""
    deadline = runner_deadline_seconds(len(assignment.tests), assignment.time_limit_ms, settings)
    kwargs: dict[str, object] = {"deadline_seconds": deadline}
    if submission.round:
        kwargs["grading_round"] = submission.round
    if attempt > 1:
        kwargs["attempt"] = attempt
    options: dict[str, object] = {"queue": settings.queue_submissions}
    if submission.low_priority:
        kwargs["low_priority"] = True
        options = {"queue": settings.queue_regrades, "priority": REGRADE_PRIORITY}
    services.celery.send_task(SCHEDULE_TASK, args=[str(submission.id)], kwargs=kwargs, **options)


def discard_bundle(submission_id: object, services: Services, grading_round: int = 0) -> None:
    """Best effort: a bundle nobody will read again (the result is stored, or the task was
    never sent) should not hold Redis memory until its TTL."""
    with contextlib.suppress(RedisError):
        services.redis.delete(bundle_key(submission_id, grading_round))


def queue_new_submission(
    submission: Submission, assignment: Assignment, services: Services, settings: WebappSettings
) -> None:
    """Grade a just-saved submission (a student's or a reference), or end it in `error` at
    once, its attempt given back, and answer 503: nothing waits for a task never sent."""
    try:
        enqueue_grading(submission, assignment, services, settings)
    except QUEUE_ERRORS as exc:
        log.error("could not queue submission %s: %s", submission.id, exc)
        discard_bundle(submission.id, services)
        fail_unqueued(services.redis, submission)
        raise queue_unavailable() from exc


def queue_unavailable(details: dict[str, object] | None = None) -> ApiError:
    return ApiError(
        503, "queue_unavailable", "the grading queue is unavailable; please retry", details
    )
