"""Staff in the loop: a score the model weighs on (a rubric weight above 0.3, an assignment
without tests, a suspected injection) is `provisional` until the course's staff confirm the
model's rubric score or override it. Each decision is kept, and the statistics report how
far staff agree with the model."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from runner_image.contract import ScoreState
from webapp.auth import login_required
from webapp.blueprints.stats import staff_assignment_or_404
from webapp.blueprints.submissions import readable_submission
from webapp.deadlines import apply_penalty
from webapp.errors import ApiError, parse_body
from webapp.models import Submission, User, utcnow
from webapp.openapi import operation, public_api
from webapp.pagination import PageQuery, paginated
from webapp.responses import SubmissionOut, SubmissionPage
from webapp.reviews import JUDGED, pending_reviews
from webapp.schemas import ReviewBody
from webapp.serializers import submission_json
from webapp.stats_store import refresh_student

bp = Blueprint("reviews", __name__, url_prefix="/api")


@bp.post("/submissions/<submission_id>/review")
@operation(
    public_api,
    tags=("reviews",),
    body=ReviewBody,
    ok={200: SubmissionOut},
    errors={
        403: "the submission's own student",
        404: "",
        409: "`not_provisional`: nothing waits for a review (or another reviewer was first)",
        422: "`rubric_score_too_high`: above the rubric's share of max_score",
    },
)
@login_required()
def review(submission_id: str):
    """Confirm the model's rubric score of a provisional submission, or override it (the
    course's staff); the score becomes final."""
    submission, assignment, is_staff = readable_submission(g.user, submission_id)
    if not is_staff:
        raise ApiError(403, "forbidden", "only the course's staff review scores")
    body = parse_body(ReviewBody)
    if submission.score_state != ScoreState.PROVISIONAL or submission.status not in JUDGED:
        raise ApiError(409, "not_provisional", "this submission's score is not provisional")
    rubric_max = assignment.feedback_settings.rubric_weight * submission.max_score
    model_score = submission.rubric_score or 0.0
    staff_score = model_score if body.rubric_score is None else body.rubric_score
    if staff_score > rubric_max + 1e-9:
        raise ApiError(
            422,
            "rubric_score_too_high",
            f"rubric_score {staff_score} is above the rubric's {rubric_max:g} points",
            {"max_rubric_score": rubric_max},
        )
    scored = apply_penalty(
        (submission.tests_score or 0.0) + staff_score,
        submission.max_score,
        submission.penalty_percent,
    )
    decision = {
        "action": "confirmed" if body.rubric_score is None else "overridden",
        "by": str(g.user.id),
        "at": utcnow(),
        "model_rubric_score": model_score,
        "rubric_score": staff_score,
        "note": body.note,
    }
    settled = Submission.objects(id=submission.id, score_state=ScoreState.PROVISIONAL).update_one(
        set__score_state=ScoreState.FINAL,
        set__rubric_score=staff_score,
        set__score=scored.score,
        set__raw_score=scored.raw_score,
        set__penalty=scored.penalty,
        set__review=decision,
    )
    if not settled:
        raise ApiError(409, "not_provisional", "another reviewer settled this score first")
    refresh_student(submission.assignment_id, submission.user_id)
    submission.reload()
    student = User.objects(id=submission.user_id).first()
    return jsonify(submission_json(submission, assignment, True, student).json_body())


@bp.get("/assignments/<assignment_id>/reviews")
@operation(
    public_api,
    tags=("reviews",),
    query=PageQuery,
    ok={200: SubmissionPage},
    errors={403: "a student who can see the assignment", 404: ""},
)
@login_required()
def review_queue(assignment_id: str):
    """The assignment's provisional scores waiting for a review, oldest first (staff)."""
    assignment = staff_assignment_or_404(g.user, assignment_id)
    students: dict = {}

    def shown(submission: Submission) -> SubmissionOut:
        if submission.user_id not in students:
            students[submission.user_id] = User.objects(id=submission.user_id).first()
        return submission_json(submission, assignment, True, students[submission.user_id])

    return paginated(
        Submission.objects(pending_reviews(assignment.id)).order_by("finished_at"), shown
    )
