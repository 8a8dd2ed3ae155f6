"""Attempt accounting: reserve before saving a submission, give back when the platform
could not judge it (status `error` is never the student's attempt)."""

from __future__ import annotations

from bson import ObjectId
from mongoengine import NotUniqueError

from webapp.errors import ApiError
from webapp.models import Assignment, AttemptCounter


def reserve_attempt(assignment: Assignment, user_id: ObjectId) -> int:
    """The attempt number, or 409 attempts_exhausted. One atomic update decides: when every
    attempt is used the filter matches nothing, and the upsert hits the unique index."""
    counter = AttemptCounter.objects(assignment_id=assignment.id, user_id=user_id)
    if assignment.max_attempts is not None:
        counter = counter.filter(used__lt=assignment.max_attempts)
    try:
        return counter.modify(upsert=True, new=True, inc__used=1).used
    except NotUniqueError as exc:
        raise ApiError(
            409,
            "attempts_exhausted",
            f"all {assignment.max_attempts} attempts are used",
            {"max_attempts": assignment.max_attempts},
        ) from exc


def release_attempt(assignment_id: ObjectId, user_id: ObjectId) -> None:
    AttemptCounter.objects(assignment_id=assignment_id, user_id=user_id, used__gt=0).update_one(
        dec__used=1
    )
