"""`GET /api/assignments/<id>/stats`: what the class gets right and wrong, for the
assignment's staff, read from counters kept up to date as results are stored
(webapp.stats_store), so it costs the same for ten submissions or a hundred thousand."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from webapp.access import can_see, is_staff_of
from webapp.auth import login_required, object_id_or_404
from webapp.errors import ApiError, not_found
from webapp.models import Assignment, User
from webapp.openapi import operation, public_api
from webapp.responses import AssignmentStatsOut
from webapp.reviews import review_agreement
from webapp.serializers import iso
from webapp.services import app_settings
from webapp.stats import Thresholds, stats_report
from webapp.stats_store import read_counters

bp = Blueprint("stats", __name__, url_prefix="/api/assignments")

STAFF_ONLY = {403: "a student who can see the assignment", 404: ""}


def staff_assignment_or_404(user: User, assignment_id: str) -> Assignment:
    """The assignment, if `user` is its staff (webapp.access); 403 for one who can see it
    but is not staff, 404 for anyone else (no existence oracle)."""
    oid = object_id_or_404(assignment_id, "assignment")
    assignment = Assignment.objects(id=oid).first()
    if is_staff_of(user, assignment):
        return assignment
    if can_see(user, assignment):
        raise ApiError(403, "forbidden", "only the assignment's staff may do this")
    raise not_found("assignment")


@bp.get("/<assignment_id>/stats")
@operation(public_api, tags=("statistics",), ok={200: AssignmentStatsOut}, errors=STAFF_ONLY)
@login_required()
def assignment_stats(assignment_id: str):
    """Counts by status, score histograms, pass rate per test (hidden ones included), fail
    tags, attempts to first accept, and cohort alerts (staff)."""
    assignment = staff_assignment_or_404(g.user, assignment_id)
    stored = read_counters(assignment.id)
    settings = app_settings()
    report = stats_report(
        assignment_id=str(assignment.id),
        max_score=assignment.max_score,
        tests=assignment.test_cases,
        nested=stored.counters if stored else {},
        thresholds=Thresholds(settings.stats_alert_share, settings.stats_alert_min_students),
        updated_at=iso(stored.updated_at) if stored else None,
    )
    report.review = review_agreement(assignment.id)
    return jsonify(report.json_body())
