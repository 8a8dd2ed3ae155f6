"""Statistics in MongoDB: each student's StudentStanding and each assignment's
AssignmentStats (webapp.stats says what they count).

Whenever one of a student's submissions is made or gets a result (a first one, a repeat,
or a regrade's replacement), `refresh_student` recomputes that student's standing from all
of their submissions and moves the assignment's counters by the difference, with one
atomic $inc. Two results of one student landing at once cannot both write: the standing is
rewritten only if its `version` is still the one read before the submissions were read
(optimistic concurrency); the loser reads again and computes from both results, so its
difference is whatever the winner left out. Because a refresh recomputes rather than
accumulates, a refresh that never ran (the process died, MongoDB was briefly down) is made
good by that student's next one; the runner's retried result post is one. Only a crash
between the standing's write and the $inc can leave the totals off: `cloudemy
rebuild-stats` recomputes everything from the submissions.

A reference solution's submissions (`is_reference`, graded by staff to check the tests)
are never counted."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from mongoengine.queryset import QuerySet
from pymongo.errors import DuplicateKeyError, PyMongoError

from webapp.models import AssignmentStats, StudentStanding, Submission, utcnow
from webapp.stats import (
    FACT_FIELDS,
    Standing,
    SubmissionFacts,
    counter_delta,
    flatten,
    nest,
    standing_of,
)

log = logging.getLogger(__name__)

# A raw filter rather than `is_reference__ne=True`: mongoengine refuses a field the
# document does not declare, and this must hold before and after `is_reference` exists.
NOT_REFERENCE = {"is_reference": {"$ne": True}}
# Rewrites of one student's standing lost to concurrent ones before giving up (each loss
# means another refresh of the same student won, so this is never reached in practice).
MAX_TRIES = 20
FACT_PROJECTION = {("_id" if name == "id" else name): True for name in FACT_FIELDS}
STANDING_PROJECTION = ("_id", "version", "counters")


def counted_submissions(**filters: object) -> QuerySet:
    """The submissions that statistics and exports count: students' work, not references."""
    return Submission.objects(__raw__=NOT_REFERENCE, **filters)


def _facts(assignment_id: ObjectId, user_id: ObjectId) -> list[SubmissionFacts]:
    rows = Submission._get_collection().find(
        {**NOT_REFERENCE, "assignment_id": assignment_id, "user_id": user_id}, FACT_PROJECTION
    )
    return [SubmissionFacts.from_document(doc) for doc in rows]


def _standing_fields(state: Standing) -> dict[str, object]:
    latest, best, first = state.latest, state.best, state.first_accepted
    return {
        "submissions": state.submissions,
        "judged": state.judged,
        "latest_submission_id": latest.id if latest else None,
        "latest_at": latest.created_at if latest else None,
        "latest_score": latest.score if latest else None,
        "latest_verdict": latest.verdict if latest else None,
        "best_submission_id": best.id if best else None,
        "best_score": best.score if best else None,
        "first_accepted_attempt": first.attempt if first else None,
        "counters": nest(state.counters),
        "updated_at": utcnow(),
    }


def _write(old: Mapping[str, Any] | None, state: Standing, key: dict[str, ObjectId]) -> bool:
    """Replace the standing `old` was read as (or create it); False when another refresh
    changed it first."""
    standings = StudentStanding._get_collection()
    if old is None:
        if not state.submissions:
            return True
        try:
            standings.insert_one({**key, "version": 1, **_standing_fields(state)})
        except DuplicateKeyError:
            return False
        return True
    current = {"_id": old["_id"], "version": old["version"]}
    if not state.submissions:
        return standings.delete_one(current).deleted_count == 1
    update = {"$inc": {"version": 1}, "$set": _standing_fields(state)}
    return standings.update_one(current, update).matched_count == 1


def _move_totals(assignment_id: ObjectId, delta: dict[str, int]) -> None:
    if not delta:
        return
    update = {
        "$inc": {f"counters.{path}": change for path, change in delta.items()},
        "$set": {"updated_at": utcnow()},
    }
    totals = AssignmentStats._get_collection()
    try:
        totals.update_one({"assignment_id": assignment_id}, update, upsert=True)
    except DuplicateKeyError:  # two first upserts raced on the unique index: it exists now
        totals.update_one({"assignment_id": assignment_id}, update)


def refresh_student(assignment_id: ObjectId, user_id: ObjectId) -> None:
    """Recompute one student's standing and move the assignment's totals by the change.
    Call it after any of the student's submissions is made or its result is stored or
    replaced: the old result's share is taken out because the old standing held it. It
    runs on every submit and result, so it reads and writes raw documents: building
    mongoengine documents cost more than the queries on the stand-in."""
    key = {"assignment_id": assignment_id, "user_id": user_id}
    for _ in range(MAX_TRIES):
        old = StudentStanding._get_collection().find_one(key, STANDING_PROJECTION)
        state = standing_of(_facts(assignment_id, user_id))
        if _write(old, state, key):
            before = flatten(old.get("counters") or {}) if old is not None else {}
            _move_totals(assignment_id, counter_delta(before, state.counters))
            return
    log.error(
        "statistics of student %s at assignment %s: %d concurrent rewrites lost in a row; "
        "run `cloudemy rebuild-stats --assignment %s`",
        user_id,
        assignment_id,
        MAX_TRIES,
        assignment_id,
    )


def refresh_after_submit(submission: Submission) -> None:
    """Count a new submission at once. It is already queued, so a failure here must not
    fail the request: the student's next refresh (this submission's result) recounts it."""
    try:
        refresh_student(submission.assignment_id, submission.user_id)
    except PyMongoError as exc:
        log.warning("statistics not updated for new submission %s: %s", submission.id, exc)


@dataclass(frozen=True)
class Rebuilt:
    students: int
    submissions: int


def rebuild_stats(assignment_id: ObjectId) -> Rebuilt:
    """Recompute every standing and the totals of one assignment from its submissions,
    one student at a time over a cursor sorted by student (the (assignment, user) index).
    Results stored while it runs may leave the totals off: run it again when quiet."""
    totals: Counter[str] = Counter()
    seen: set[ObjectId] = set()
    submissions = 0

    def settle(user_id: ObjectId, facts: list[SubmissionFacts]) -> None:
        state = standing_of(facts)
        StudentStanding.objects(assignment_id=assignment_id, user_id=user_id).update_one(
            upsert=True,
            inc__version=1,
            **{f"set__{name}": value for name, value in _standing_fields(state).items()},
        )
        totals.update(state.counters)
        seen.add(user_id)

    rows = (
        counted_submissions(assignment_id=assignment_id)
        .only("user_id", *FACT_FIELDS)
        .order_by("user_id")
        .as_pymongo()
    )
    user_id, facts = None, []
    for doc in rows:
        submissions += 1
        if doc["user_id"] != user_id and facts:
            settle(user_id, facts)
            facts = []
        user_id = doc["user_id"]
        facts.append(SubmissionFacts.from_document(doc))
    if facts:
        settle(user_id, facts)
    for standing in StudentStanding.objects(assignment_id=assignment_id).only("user_id"):
        if standing.user_id not in seen:
            standing.delete()
    AssignmentStats.objects(assignment_id=assignment_id).update_one(
        upsert=True, set__counters=nest(+totals), set__updated_at=utcnow()
    )
    return Rebuilt(students=len(seen), submissions=submissions)


def read_counters(assignment_id: ObjectId) -> AssignmentStats | None:
    """One document, whatever the number of submissions."""
    return AssignmentStats.objects(assignment_id=assignment_id).first()
