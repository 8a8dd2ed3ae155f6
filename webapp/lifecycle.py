"""Submission state changes as conditional updates: a late or repeated message never moves
a submission backwards, and a second, different result is refused."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import Enum

from bson import ObjectId

from webapp.attempts import release_attempt
from webapp.metrics import GRADING_SECONDS
from webapp.models import OPEN_STATUSES, Submission, TestResult, utcnow
from webapp.schemas import ResultBody


class StoreOutcome(Enum):
    STORED = "stored"
    REPEATED = "repeated"
    CONFLICT = "conflict"


def result_digest(result: ResultBody) -> str:
    canonical = json.dumps(result.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _elapsed_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


def mark_scheduled(submission_id: ObjectId, job_name: str | None) -> bool:
    if job_name:
        Submission.objects(id=submission_id).update_one(set__job_name=job_name)
    return bool(
        Submission.objects(id=submission_id, status="queued").update_one(
            set__status="scheduled", set__scheduled_at=utcnow()
        )
    )


def mark_running(submission_id: ObjectId) -> bool:
    return bool(
        Submission.objects(id=submission_id, status__in=["queued", "scheduled"]).update_one(
            set__status="running", set__started_at=utcnow()
        )
    )


def store_result(submission: Submission, result: ResultBody) -> StoreOutcome:
    """`submission` as last read; the update itself is conditional on the stored status."""
    digest = result_digest(result)
    finished = utcnow()
    metrics = dict(result.metrics)
    metrics["queue_wait_ms"] = _elapsed_ms(submission.created_at, submission.started_at)
    metrics["total_ms"] = _elapsed_ms(submission.created_at, finished)
    updated = Submission.objects(id=submission.id, status__in=list(OPEN_STATUSES)).update_one(
        set__status=result.status,
        set__verdict=result.verdict,
        set__score=result.score,
        set__fail_tags=result.fail_tags,
        set__instructor_tags=result.instructor_tags,
        set__feedback=result.feedback,
        set__tests=[TestResult(**t.model_dump()) for t in result.tests],
        set__metrics=metrics,
        set__result_digest=digest,
        set__finished_at=finished,
    )
    if updated:
        GRADING_SECONDS.observe(metrics["total_ms"] / 1000)
        if result.status == "error":
            release_attempt(submission.assignment_id, submission.user_id)
        return StoreOutcome.STORED
    submission.reload()
    return StoreOutcome.REPEATED if submission.result_digest == digest else StoreOutcome.CONFLICT
