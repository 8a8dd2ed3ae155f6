"""Submission state changes as conditional updates: a late or repeated message never moves
a submission backwards, and a second, different result is refused. Every change is
published (webapp.events) for the clients following the submission's event stream."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import Enum

from bson import ObjectId
from redis import Redis

from runner_image.contract import OPEN_STATUSES, Result, Status, Verdict
from webapp.attempts import release_attempt
from webapp.deadlines import apply_penalty
from webapp.events import publish_status
from webapp.metrics import GRADING_SECONDS
from webapp.models import Submission, utcnow
from webapp.stats_store import refresh_student


class StoreOutcome(Enum):
    STORED = "stored"
    REPEATED = "repeated"
    CONFLICT = "conflict"


def result_digest(result: Result) -> str:
    canonical = json.dumps(result.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _elapsed_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


def mark_scheduled(redis: Redis, submission_id: ObjectId, job_name: str | None) -> bool:
    if job_name:
        Submission.objects(id=submission_id).update_one(set__job_name=job_name)
    changed = bool(
        Submission.objects(id=submission_id, status=Status.QUEUED).update_one(
            set__status=Status.SCHEDULED, set__scheduled_at=utcnow()
        )
    )
    if changed:
        publish_status(redis, submission_id, Status.SCHEDULED)
    return changed


def mark_running(redis: Redis, submission_id: ObjectId) -> bool:
    changed = bool(
        Submission.objects(
            id=submission_id, status__in=[Status.QUEUED, Status.SCHEDULED]
        ).update_one(set__status=Status.RUNNING, set__started_at=utcnow())
    )
    if changed:
        publish_status(redis, submission_id, Status.RUNNING)
    return changed


def store_result(redis: Redis, submission: Submission, result: Result) -> StoreOutcome:
    """`submission` as last read; the update itself is conditional on the stored status."""
    digest = result_digest(result)
    finished = utcnow()
    metrics = dict(result.metrics)
    metrics["queue_wait_ms"] = _elapsed_ms(submission.created_at, submission.started_at)
    metrics["total_ms"] = _elapsed_ms(submission.created_at, finished)
    # The late penalty was decided at submit time (webapp.deadlines).
    scored = apply_penalty(result.score, submission.max_score, submission.penalty_percent)
    updated = Submission.objects(id=submission.id, status__in=list(OPEN_STATUSES)).update_one(
        set__status=result.status,
        set__verdict=result.verdict,
        set__score=scored.score,
        set__raw_score=scored.raw_score,
        set__penalty=scored.penalty,
        set__tests_score=result.tests_score,
        set__rubric_score=result.rubric_score,
        set__score_state=result.score_state if result.score is not None else None,
        set__fail_tags=result.fail_tags,
        set__instructor_tags=result.instructor_tags,
        set__feedback=result.feedback,
        set__tests=[row.model_dump(mode="json") for row in result.tests],
        set__metrics=metrics,
        set__result_digest=digest,
        set__finished_at=finished,
    )
    if updated:
        GRADING_SECONDS.observe(metrics["total_ms"] / 1000)
        if result.status == Status.ERROR:
            release_attempt(submission.assignment_id, submission.user_id)
        publish_status(redis, submission.id, result.status)
        refresh_student(submission.assignment_id, submission.user_id)
        return StoreOutcome.STORED
    submission.reload()
    if submission.result_digest != digest:
        return StoreOutcome.CONFLICT
    # A repeat (the runner retrying) also redoes a statistics refresh that failed.
    refresh_student(submission.assignment_id, submission.user_id)
    return StoreOutcome.REPEATED


def fail_unqueued(redis: Redis, submission: Submission) -> bool:
    """A submission whose task could not be sent (the broker is down) ends in `error` at
    once, and its attempt is given back: the student is told to submit again."""
    failed = Submission.objects(id=submission.id, status=Status.QUEUED).update_one(
        set__status=Status.ERROR,
        set__verdict=Verdict.INTERNAL_ERROR,
        set__feedback="The grading queue was unavailable; this attempt does not count. "
        "Please submit again.",
        set__finished_at=utcnow(),
    )
    if failed:
        release_attempt(submission.assignment_id, submission.user_id)
        publish_status(redis, submission.id, Status.ERROR)
        refresh_student(submission.assignment_id, submission.user_id)
    return bool(failed)
