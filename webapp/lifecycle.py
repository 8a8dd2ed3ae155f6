"""Submission state changes as conditional updates: a late or repeated message never moves
a submission backwards, and a second, different result is refused. Every change is
published (webapp.events) for the clients following the submission's event stream.

Grading rounds: every update from the pipeline names the round it belongs to and applies
only while that round is the submission's current one, so a message of an earlier round
(a late runner, a redelivered task) can never touch a newer one. A regrade (`start_round`)
moves a final submission to the next round in one atomic update that also appends the
previous result to `history`."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from enum import Enum
from typing import Any

from bson import ObjectId
from redis import Redis

from runner_image.contract import FINAL_STATUSES, OPEN_STATUSES, Result, Status, Verdict
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
    STALE = "stale"  # a regrade started another round meanwhile


def result_digest(result: Result) -> str:
    canonical = json.dumps(result.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _elapsed_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return int((end - start).total_seconds() * 1000)


def round_started(submission: Submission) -> datetime | None:
    """When the current round's bundle was built and its task first sent."""
    return submission.round_started_at or submission.created_at


def _status_now(submission_id: ObjectId) -> Status | None:
    shown = Submission._get_collection().find_one({"_id": submission_id}, {"status": True})
    return Status(shown["status"]) if shown is not None else None


def _move(
    submission_id: ObjectId, grading_round: int, statuses: list[Status], to: dict[str, object]
) -> bool:
    """One conditional update of a submission in `grading_round` and one of `statuses`,
    on the raw collection: the callbacks make three per submission, and mongoengine's
    query and update building cost more than the update itself on the stand-in."""
    moved = Submission._get_collection().update_one(
        {"_id": submission_id, "round": grading_round, "status": {"$in": statuses}},
        {"$set": to},
    )
    return moved.matched_count == 1


def mark_scheduled(
    redis: Redis, submission_id: ObjectId, job_name: str | None, grading_round: int = 0
) -> tuple[bool, Status | None]:
    """Whether the round moved to `scheduled`, and the submission's status now. The job's
    name is kept even when it did not (a fast runner may report before the scheduler):
    one update when it moves, as it nearly always does."""
    named = {"job_name": job_name} if job_name else {}
    to = {"status": Status.SCHEDULED, "scheduled_at": utcnow(), **named}
    if _move(submission_id, grading_round, [Status.QUEUED], to):
        publish_status(redis, submission_id, Status.SCHEDULED)
        return True, Status.SCHEDULED
    if named:
        Submission._get_collection().update_one(
            {"_id": submission_id, "round": grading_round}, {"$set": named}
        )
    return False, _status_now(submission_id)


def mark_running(
    redis: Redis, submission_id: ObjectId, grading_round: int = 0
) -> tuple[bool, Status | None]:
    """Whether the round moved to `running`, and the submission's status now."""
    to = {"status": Status.RUNNING, "started_at": utcnow()}
    if _move(submission_id, grading_round, [Status.QUEUED, Status.SCHEDULED], to):
        publish_status(redis, submission_id, Status.RUNNING)
        return True, Status.RUNNING
    return False, _status_now(submission_id)


def store_result(redis: Redis, submission: Submission, result: Result) -> StoreOutcome:
    """`submission` as last read; the update itself is conditional on the stored round (the
    result's) and status. An `error` gives the attempt back only for the grading at
    submission (round 0): a regrade never took one, nor did a reference solution."""
    digest = result_digest(result)
    finished = utcnow()
    metrics = dict(result.metrics)
    metrics["queue_wait_ms"] = _elapsed_ms(round_started(submission), submission.started_at)
    metrics["total_ms"] = _elapsed_ms(round_started(submission), finished)
    # The late penalty was decided at submit time (webapp.deadlines).
    scored = apply_penalty(result.score, submission.max_score, submission.penalty_percent)
    stored = {
        "status": result.status,
        "verdict": result.verdict,
        "score": scored.score,
        "raw_score": scored.raw_score,
        "penalty": scored.penalty,
        "tests_score": result.tests_score,
        "rubric_score": result.rubric_score,
        "score_state": result.score_state if result.score is not None else None,
        "fail_tags": result.fail_tags,
        "instructor_tags": result.instructor_tags,
        "feedback": result.feedback,
        "tests": [row.model_dump(mode="json") for row in result.tests],
        "metrics": metrics,
        "result_digest": digest,
        "finished_at": finished,
    }
    updated = _move(submission.id, result.round, list(OPEN_STATUSES), stored)
    if updated:
        GRADING_SECONDS.observe(metrics["total_ms"] / 1000)
        uses_attempt = result.round == 0 and not submission.is_reference
        if result.status == Status.ERROR and uses_attempt:
            release_attempt(submission.assignment_id, submission.user_id)
        publish_status(redis, submission.id, result.status)
        refresh_student(submission.assignment_id, submission.user_id)
        return StoreOutcome.STORED
    submission.reload()
    if submission.round != result.round:
        return StoreOutcome.STALE
    if submission.result_digest != digest:
        return StoreOutcome.CONFLICT
    # A repeat (the runner retrying) also redoes a statistics refresh that failed.
    refresh_student(submission.assignment_id, submission.user_id)
    return StoreOutcome.REPEATED


def fail_unqueued(redis: Redis, submission: Submission) -> bool:
    """A submission whose task could not be sent (the broker is down) ends in `error` at
    once, and its attempt is given back: the student is told to submit again."""
    failed = Submission.objects(id=submission.id, round=0, status=Status.QUEUED).update_one(
        set__status=Status.ERROR,
        set__verdict=Verdict.INTERNAL_ERROR,
        set__feedback="The grading queue was unavailable; this attempt does not count. "
        "Please submit again.",
        set__finished_at=utcnow(),
    )
    if failed:
        if not submission.is_reference:
            release_attempt(submission.assignment_id, submission.user_id)
        publish_status(redis, submission.id, Status.ERROR)
        refresh_student(submission.assignment_id, submission.user_id)
    return bool(failed)


# What a round's result is made of: kept in `history` when the next round starts, and put
# back if that round could not be queued.
RESULT_FIELDS = (
    "status",
    "verdict",
    "score",
    "raw_score",
    "penalty",
    "tests_score",
    "rubric_score",
    "score_state",
    "review",
    "max_score",
    "fail_tags",
    "instructor_tags",
    "feedback",
    "tests",
    "metrics",
    "job_name",
    "result_digest",
    "scheduled_at",
    "started_at",
    "finished_at",
)
# A history entry keeps each test's verdict, score and figures but not the program's output
# or message (up to 8 KiB per test): a submission with many rounds of 200 tests must stay
# far below MongoDB's 16 MiB per document.
HISTORY_TEST_FIELDS = ("name", "verdict", "score", "max_score", "time_ms", "memory_kb", "hidden")


def history_entry(submission: Submission) -> dict[str, Any]:
    """The current round's result as `history` keeps it."""
    entry: dict[str, Any] = {
        field: getattr(submission, field) for field in RESULT_FIELDS if field != "tests"
    }
    entry["fail_tags"] = list(submission.fail_tags)
    entry["instructor_tags"] = list(submission.instructor_tags)
    entry["metrics"] = dict(submission.metrics)
    entry["tests"] = [
        {key: row[key] for key in HISTORY_TEST_FIELDS if key in row} for row in submission.tests
    ]
    entry["round"] = submission.round
    entry["round_started_at"] = round_started(submission)
    entry["low_priority"] = submission.low_priority
    return entry


def start_round(
    redis: Redis, submission: Submission, max_score: float, low_priority: bool = False
) -> Submission | None:
    """Move a final submission to its next grading round: its result goes to `history`, it
    is `queued` again, and nothing else changes (not its attempt, nor any attempt counter).
    One conditional update decides, on the round and the final status as read, so two
    regrade requests racing start one round, and a submission still being graded starts
    none. `max_score` is the assignment's now (the new round is graded out of it). Returns
    the submission as updated, or None when it is not final (or was just regraded by
    someone else). The caller then queues the round (webapp.grading)."""
    if submission.status not in FINAL_STATUSES:
        return None
    now = utcnow()
    entry = history_entry(submission)
    # Every field of the result is reset (it is in history now), to these values or None.
    values: dict[str, Any] = dict.fromkeys(RESULT_FIELDS) | {
        "round": submission.round + 1,
        "status": Status.QUEUED,
        "max_score": max_score,
        "fail_tags": [],
        "instructor_tags": [],
        "tests": [],
        "metrics": {},
        "round_started_at": now,
        "enqueued_at": now,
        "low_priority": low_priority,
        "relaunches": 0,
    }
    # An update, not a find-and-modify: one round trip, and the new state is known here.
    updated = Submission.objects(
        id=submission.id, round=submission.round, status=submission.status
    ).update_one(push__history=entry, **{f"set__{name}": v for name, v in values.items()})
    if not updated:
        return None
    started = Submission._from_son(submission.to_mongo())
    for name, value in values.items():
        setattr(started, name, value)
    started.history = [*submission.history, entry]
    publish_status(redis, started.id, Status.QUEUED)
    return started


def abandon_round(redis: Redis, previous: Submission) -> bool:
    """The round `start_round` began from `previous` (the submission as it was before) could
    not be queued: put the previous result back, as if the regrade had never been asked,
    rather than leave a grade replaced by nothing. Only while that round is still queued."""
    restored: dict[str, Any] = {
        f"set__{field}": getattr(previous, field) for field in RESULT_FIELDS
    }
    restored |= {
        "set__round": previous.round,
        "set__round_started_at": previous.round_started_at,
        "set__enqueued_at": previous.enqueued_at,
        "set__low_priority": previous.low_priority,
        "pop__history": 1,
    }
    undone = Submission.objects(
        id=previous.id, round=previous.round + 1, status=Status.QUEUED
    ).update_one(**restored)
    if undone:
        publish_status(redis, previous.id, previous.status)
    return bool(undone)
