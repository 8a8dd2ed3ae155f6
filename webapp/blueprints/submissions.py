"""Submitting code and reading results. Another student's submission is a 404, never a 403."""

from __future__ import annotations

from datetime import datetime
from functools import cache

from bson import ObjectId
from flask import Blueprint, g, jsonify, request

from webapp.access import is_staff_of
from webapp.attempts import reserve_attempt
from webapp.auth import login_required, object_id_or_404
from webapp.blueprints.assignments import visible_assignment_or_404
from webapp.deadlines import Lateness, lateness, student_deadlines
from webapp.errors import ApiError, not_found, parse_body
from webapp.grading import queue_new_submission
from webapp.limits import limiter, signed_in_user
from webapp.models import Assignment, Extension, Submission, User, utcnow
from webapp.openapi import operation, public_api
from webapp.pagination import PageQuery, paginated
from webapp.responses import SubmissionOut, SubmissionPage
from webapp.schemas import SubmissionCreateBody
from webapp.serializers import iso, submission_json
from webapp.services import app_settings, services
from webapp.stats_store import refresh_after_submit

bp = Blueprint("submissions", __name__, url_prefix="/api")


def _check_can_submit(assignment: Assignment, body: SubmissionCreateBody) -> None:
    """Raises the api.md error that forbids this submission, if any."""
    settings = app_settings()
    size = len(body.code.encode())
    if size > settings.max_code_bytes:
        raise ApiError(
            413,
            "code_too_large",
            f"code is {size} bytes; the limit is {settings.max_code_bytes}",
            {"limit_bytes": settings.max_code_bytes, "size_bytes": size},
        )
    if not body.code.strip():
        raise ApiError(400, "invalid_body", "code is empty")
    if body.language is not None and body.language != assignment.language:
        raise ApiError(
            422,
            "language_mismatch",
            f"this assignment is graded in {assignment.language}, not {body.language}",
        )


def _lateness(assignment: Assignment, user_id: ObjectId, now: datetime) -> Lateness:
    """On time, late (with the penalty decided now), or 422 past_due; by the student's
    extension when they have one."""
    extension = None
    if assignment.due_at is not None:
        extension = Extension.objects(assignment_id=assignment.id, user_id=user_id).first()
    deadlines = student_deadlines(assignment.deadlines, extension and extension.deadlines)
    judged = lateness(now, deadlines, assignment.penalty)
    if judged is None:
        raise ApiError(
            422,
            "past_due",
            "the due date of this assignment has passed",
            {"due_at": iso(deadlines.due_at), "late_until": iso(deadlines.late_until)},
        )
    return judged


class SubmissionListQuery(PageQuery):
    assignment_id: str | None = None


@bp.post("/assignments/<assignment_id>/submissions")
@operation(
    public_api,
    tags=("submissions",),
    body=SubmissionCreateBody,
    ok={202: SubmissionOut},
    errors={
        400: "empty code",
        404: "",
        409: "`attempts_exhausted`",
        413: "`code_too_large` (over MAX_CODE_BYTES)",
        422: "`past_due`, `language_mismatch`",
        429: "per client address and per account",
        503: "`queue_unavailable` (the attempt is not counted)",
    },
)
@limiter.limit(lambda: app_settings().rate_limit_submit_per_address)
@login_required()
@limiter.limit(lambda: app_settings().rate_limit_submit, key_func=signed_in_user)
def create_submission(assignment_id: str):
    """Submit code for grading: answered at once with `status: queued`; follow it with
    `GET /api/submissions/{id}` or its event stream."""
    assignment = visible_assignment_or_404(g.user, assignment_id)
    body = parse_body(SubmissionCreateBody)
    _check_can_submit(assignment, body)
    now = utcnow()
    late = _lateness(assignment, g.user.id, now)
    attempt = reserve_attempt(assignment, g.user.id)
    submission = Submission(
        assignment_id=assignment.id,
        user_id=g.user.id,
        language=assignment.language,
        code=body.code,
        attempt=attempt,
        max_score=assignment.max_score,
        created_at=now,
        late=late.late,
        penalty_percent=late.penalty_percent,
    )
    submission.save()
    queue_new_submission(submission, assignment, services(), app_settings())
    refresh_after_submit(submission)
    response = jsonify(submission_json(submission, assignment, is_instructor=False).json_body())
    response.headers["Location"] = f"/api/submissions/{submission.id}"
    return response, 202


def readable_submission(
    user: User, submission_id: str
) -> tuple[Submission, Assignment | None, bool]:
    """The submission, its assignment and whether `user` teaches it, if `user` owns it or
    teaches it; else 404."""
    submission = Submission.objects(id=object_id_or_404(submission_id, "submission")).first()
    if submission is None:
        raise not_found("submission")
    assignment = Assignment.objects(id=submission.assignment_id).first()
    is_instructor = is_staff_of(user, assignment)
    if submission.user_id != user.id and not is_instructor:
        raise not_found("submission")
    return submission, assignment, is_instructor


@bp.get("/submissions/<submission_id>")
@operation(public_api, tags=("submissions",), ok={200: SubmissionOut}, errors={404: ""})
@login_required()
def get_submission(submission_id: str):
    """One submission, as its student or the assignment's instructor may see it."""
    submission, assignment, is_instructor = readable_submission(g.user, submission_id)
    student = User.objects(id=submission.user_id).first() if is_instructor else None
    shown = submission_json(submission, assignment, is_instructor, student)
    return jsonify(shown.json_body())


@bp.get("/submissions")
@operation(
    public_api,
    tags=("submissions",),
    query=SubmissionListQuery,
    ok={200: SubmissionPage},
    errors={404: "an `assignment_id` that is not an id"},
)
@login_required()
def list_submissions():
    """The caller's own submissions; with `assignment_id`, an instructor gets all of their
    assignment's."""
    user = g.user
    query = Submission.objects(user_id=user.id)
    assignment = None
    if "assignment_id" in request.args:
        assignment_oid = object_id_or_404(request.args["assignment_id"], "assignment")
        assignment = Assignment.objects(id=assignment_oid).first()
        if is_staff_of(user, assignment):
            query = Submission.objects(assignment_id=assignment_oid)
        else:
            query = query.filter(assignment_id=assignment_oid)
    is_instructor = is_staff_of(user, assignment)
    students = cache(lambda user_id: User.objects(id=user_id).first())
    return paginated(
        query.order_by("-created_at"),
        lambda s: submission_json(
            s, assignment, is_instructor, students(s.user_id) if is_instructor else None
        ),
    )
