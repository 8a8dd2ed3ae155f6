"""Provisional scores and staff's reviews of them, read for the review queue and the
statistics."""

from __future__ import annotations

from bson import ObjectId
from mongoengine.queryset.visitor import Q

from runner_image.contract import ScoreState, Status
from webapp.models import Submission
from webapp.responses import ReviewAgreementOut

JUDGED = (Status.GRADED, Status.FAILED)


def pending_reviews(assignment_id: ObjectId) -> Q:
    return Q(assignment_id=assignment_id, score_state=ScoreState.PROVISIONAL, status__in=JUDGED)


def review_agreement(assignment_id: ObjectId) -> ReviewAgreementOut:
    """Read from the reviewed submissions themselves: as many as staff reviewed, not as
    many as were submitted. Staff who kept the model's rubric score agreed with it. Every
    submission holds a `review`, null until staff review it: `$exists` would read them all,
    on every poll of an instructor's dashboard."""
    reviewed_rows = (
        Submission.objects(assignment_id=assignment_id, review__ne=None).only("review").as_pymongo()
    )
    changes = [
        row["review"]["rubric_score"] - row["review"]["model_rubric_score"]
        for row in reviewed_rows
        if row["review"]
    ]
    reviewed = len(changes)
    confirmed = sum(1 for change in changes if change == 0)
    return ReviewAgreementOut(
        pending=Submission.objects(pending_reviews(assignment_id)).count(),
        reviewed=reviewed,
        confirmed=confirmed,
        overridden=reviewed - confirmed,
        confirmed_share=confirmed / reviewed if reviewed else None,
        mean_change=sum(changes) / reviewed if reviewed else None,
        mean_abs_change=sum(abs(c) for c in changes) / reviewed if reviewed else None,
    )
