"""Regrading and reference solutions: the staff's tools for when a test was wrong.

A regrade is the next grading round of the same submission through the same pipeline
(bundle, task, launcher, runner), against the assignment's tests as they are now. The
previous result goes to the submission's `history`, no attempt is used, and a submission
still being graded is not queued again (webapp.lifecycle.start_round decides atomically).
Bulk regrades go to their own lower-priority queue, behind every submission
(webapp.grading.send_grading_task).

A reference solution is the staff's own code for an assignment, graded like a submission
(flagged `is_reference`: no attempt, in no student list or statistics); the tests it fails
are reported as `broken_tests` before any student meets them, and a bulk regrade is
refused while the reference, graded against the current tests, fails some.

Who: the assignment's staff (webapp.access.is_staff_of) regrade and read the reference;
only those who may edit it (can_edit) set the reference. Anyone else gets 404, or 403 where
they can already see the object (a student's own submission, a TA's reference).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

from bson import ObjectId
from flask import Blueprint, g, jsonify

from runner_image.contract import FINAL_STATUSES, Bundle, Status, Verdict
from webapp.access import can_edit, is_staff_of
from webapp.auth import login_required, object_id_or_404
from webapp.errors import ApiError, not_found, parse_body
from webapp.grading import (
    QUEUE_ERRORS,
    assignment_bundle,
    discard_bundle,
    enqueue_grading,
    enqueue_gradings,
    queue_new_submission,
    queue_unavailable,
)
from webapp.lifecycle import abandon_round, round_started, start_round
from webapp.limits import limiter, signed_in_user
from webapp.models import Assignment, Submission, User
from webapp.openapi import operation, public_api
from webapp.responses import BulkRegradeOut, ReferenceOut, SubmissionOut
from webapp.schemas import ReferenceBody, RegradeBody
from webapp.serializers import submission_json
from webapp.services import app_settings, services

log = logging.getLogger(__name__)

bp = Blueprint("regrade", __name__, url_prefix="/api")

# Submissions read per query of a bulk regrade: bounded memory for any class size.
BATCH = 500


def _regrade_limit() -> str:
    return app_settings().rate_limit_regrade


def _staff_assignment_or_404(user: User, assignment_id: str) -> Assignment:
    assignment = Assignment.objects(id=object_id_or_404(assignment_id, "assignment")).first()
    if not is_staff_of(user, assignment):
        raise not_found("assignment")
    return assignment


def _queue_round(previous: Submission, assignment: Assignment) -> Submission | None:
    """Start the next round of `previous` and queue it on the submissions' queue; None when
    it is still being graded. When the round cannot be queued, the previous result is put
    back and 503 raised."""
    started = start_round(services().redis, previous, assignment.max_score)
    if started is None:
        return None
    try:
        enqueue_grading(started, assignment, services(), app_settings())
    except QUEUE_ERRORS as exc:
        log.error("could not queue round %d of %s: %s", started.round, started.id, exc)
        discard_bundle(started.id, services(), started.round)
        abandon_round(services().redis, previous)
        raise queue_unavailable() from exc
    return started


def _in_flight(submission: Submission) -> ApiError:
    return ApiError(
        409,
        "regrade_in_flight",
        f"submission is {submission.status} (round {submission.round}): it is graded once "
        "that round ends; regrade it then",
        {"round": submission.round, "status": submission.status},
    )


@bp.post("/submissions/<submission_id>/regrade")
@operation(
    public_api,
    tags=("regrade",),
    ok={202: SubmissionOut},
    errors={
        403: "the submission's own student (not staff)",
        404: "",
        409: "`regrade_in_flight`: still being graded (details: round, status)",
        429: "RATE_LIMIT_REGRADE, per account",
        503: "`queue_unavailable` (the previous result is kept)",
    },
)
@login_required()
@limiter.limit(_regrade_limit, key_func=signed_in_user)
def regrade_submission(submission_id: str):
    """Grade a final submission again, against the assignment's current tests, as its next
    round: the previous result moves to `history`, no attempt is used."""
    submission = Submission.objects(id=object_id_or_404(submission_id, "submission")).first()
    if submission is None:
        raise not_found("submission")
    assignment = Assignment.objects(id=submission.assignment_id).first()
    if not is_staff_of(g.user, assignment):
        if submission.user_id == g.user.id:
            raise ApiError(403, "forbidden", "only the assignment's staff may regrade")
        raise not_found("submission")
    started = _queue_round(submission, assignment)
    if started is None:
        submission.reload()
        raise _in_flight(submission)
    response = jsonify(submission_json(started, assignment, is_instructor=True).json_body())
    response.headers["Location"] = f"/api/submissions/{started.id}"
    return response, 202


def latest_reference(assignment: Assignment) -> Submission | None:
    return (
        Submission.objects(assignment_id=assignment.id, is_reference=True)
        .order_by("-created_at")
        .first()
    )


def broken_tests(reference: Submission) -> list[str] | None:
    """The tests the reference fails in its current round; None until it is graded."""
    if reference.status not in (Status.GRADED, Status.FAILED):
        return None
    return [row.name for row in reference.test_results if row.verdict != Verdict.ACCEPTED]


def _reference_json(reference: Submission, assignment: Assignment) -> ReferenceOut:
    started = round_started(reference)
    return ReferenceOut(
        submission=submission_json(reference, assignment, is_instructor=True),
        broken_tests=broken_tests(reference),
        up_to_date=started is not None
        and (assignment.updated_at is None or started >= assignment.updated_at),
    )


def _scope_ids(assignment: Assignment, scope: str) -> Iterator[ObjectId]:
    """The students' submissions to regrade, oldest first: all, or each one's latest."""
    students = Submission.objects(assignment_id=assignment.id, is_reference__ne=True)
    if scope == "all":
        yield from students.order_by("created_at").scalar("id")
        return
    latest: dict[ObjectId, tuple[object, ObjectId]] = {}
    for user_id, created_at, oid in students.scalar("user_id", "created_at", "id"):
        if user_id not in latest or (created_at, oid) > latest[user_id]:
            latest[user_id] = (created_at, oid)
    yield from (oid for _, oid in sorted(latest.values()))


def _batches(ids: Iterable[ObjectId]) -> Iterator[list[ObjectId]]:
    batch: list[ObjectId] = []
    for oid in ids:
        batch.append(oid)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _reference_first(assignment: Assignment, force: bool) -> ReferenceOut | None:
    """Before a bulk regrade: a reference graded against the current tests that fails some
    stops it (unless forced); one graded before the assignment last changed is regraded
    first, on the submissions' queue, so it is graded ahead of the bulk."""
    reference = latest_reference(assignment)
    if reference is None:
        return None
    shown = _reference_json(reference, assignment)
    if shown.up_to_date:
        if shown.broken_tests and not force:
            raise ApiError(
                409,
                "reference_fails_tests",
                f"the reference solution fails {', '.join(shown.broken_tests)}: fix the tests, "
                'or send "force": true',
                {"broken_tests": shown.broken_tests, "reference_id": str(reference.id)},
            )
        return shown
    if reference.status in FINAL_STATUSES:
        reference = _queue_round(reference, assignment) or reference
    return _reference_json(reference, assignment)


def _queue_batch(previous: list[Submission], assignment: Assignment, base: Bundle) -> list[str]:
    """Start the next round of each final submission of `previous` (low priority), then
    queue them all at once: none starts grading (and competes with this request) before the
    batch is queued. Returns the ids still being graded, which were left alone. When the
    broker fails, those not queued yet get their previous result back and 503 is raised
    (`details.queued`: how many of this batch were queued)."""
    redis = services().redis
    started: list[tuple[Submission, Submission]] = []
    in_flight: list[str] = []
    for submission in previous:
        next_round = start_round(redis, submission, assignment.max_score, low_priority=True)
        if next_round is None:
            in_flight.append(str(submission.id))
        else:
            started.append((submission, next_round))
    queued = 0
    try:
        for _ in enqueue_gradings(
            [s for _, s in started], assignment, services(), app_settings(), base
        ):
            queued += 1
    except QUEUE_ERRORS as exc:
        log.error("bulk regrade of %s stopped after %d: %s", assignment.id, queued, exc)
        for before, after in started[queued:]:
            discard_bundle(after.id, services(), after.round)
            abandon_round(redis, before)
        raise queue_unavailable({"queued": queued}) from exc
    return in_flight


@bp.post("/assignments/<assignment_id>/regrade")
@operation(
    public_api,
    tags=("regrade",),
    body=RegradeBody,
    ok={202: BulkRegradeOut},
    errors={
        404: "",
        409: "`reference_fails_tests` (details: broken_tests): the reference solution, "
        "graded against the current tests, fails some; `force` regrades anyway",
        429: "RATE_LIMIT_REGRADE, per account",
        503: "`queue_unavailable` (details.queued: how many were queued before)",
    },
)
@login_required()
@limiter.limit(_regrade_limit, key_func=signed_in_user)
def regrade_assignment(assignment_id: str):
    """Regrade every submission of the assignment (`all`) or each student's latest one
    (`latest`), on the lower-priority regrade queue; the reference solution first."""
    assignment = _staff_assignment_or_404(g.user, assignment_id)
    body = parse_body(RegradeBody)
    reference = _reference_first(assignment, body.force)
    base = assignment_bundle(assignment)
    queued, skipped = 0, []
    for batch in _batches(_scope_ids(assignment, body.scope)):
        submissions = list(Submission.objects(id__in=batch).order_by("created_at"))
        try:
            in_flight = _queue_batch(submissions, assignment, base)
        except ApiError as exc:
            exc.details = {"queued": queued + exc.details["queued"]}
            raise
        skipped += in_flight
        queued += len(submissions) - len(in_flight)
    log.info(
        "bulk regrade of assignment %s (%s) by %s: %d queued, %d in flight",
        assignment.id,
        body.scope,
        g.user.id,
        queued,
        len(skipped),
    )
    answer = BulkRegradeOut(
        queued=queued, skipped_in_flight=len(skipped), skipped_ids=skipped, reference=reference
    )
    return jsonify(answer.json_body()), 202


def _check_code(code: str) -> None:
    settings = app_settings()
    size = len(code.encode())
    if size > settings.max_code_bytes:
        raise ApiError(
            413,
            "code_too_large",
            f"code is {size} bytes; the limit is {settings.max_code_bytes}",
            {"limit_bytes": settings.max_code_bytes, "size_bytes": size},
        )
    if not code.strip():
        raise ApiError(400, "invalid_body", "code is empty")


def _new_reference(assignment: Assignment, code: str) -> Submission:
    reference = Submission(
        assignment_id=assignment.id,
        user_id=g.user.id,
        language=assignment.language,
        code=code,
        attempt=0,
        max_score=assignment.max_score,
        is_reference=True,
    )
    reference.save()
    queue_new_submission(reference, assignment, services(), app_settings())
    return reference


@bp.put("/assignments/<assignment_id>/reference")
@operation(
    public_api,
    tags=("regrade",),
    body=ReferenceBody,
    ok={202: ReferenceOut},
    errors={
        400: "empty code",
        403: "staff who may not edit the assignment (a TA)",
        404: "",
        413: "`code_too_large` (over MAX_CODE_BYTES)",
        429: "RATE_LIMIT_REGRADE, per account",
        503: "`queue_unavailable`",
    },
)
@login_required()
@limiter.limit(_regrade_limit, key_func=signed_in_user)
def put_reference(assignment_id: str):
    """Set the assignment's reference solution and grade it against the current tests (the
    same code again: its next round); read the outcome with GET."""
    assignment = _staff_assignment_or_404(g.user, assignment_id)
    if not can_edit(g.user, assignment):
        raise ApiError(403, "forbidden", "only those who may edit the assignment set its reference")
    body = parse_body(ReferenceBody)
    _check_code(body.code)
    current = latest_reference(assignment)
    if current is not None and current.code == body.code:
        # Being graded already: that grading answers this request too.
        reference = _queue_round(current, assignment) or current
    else:
        reference = _new_reference(assignment, body.code)
    response = jsonify(_reference_json(reference, assignment).json_body())
    response.headers["Location"] = f"/api/assignments/{assignment.id}/reference"
    return response, 202


@bp.get("/assignments/<assignment_id>/reference")
@operation(
    public_api,
    tags=("regrade",),
    ok={200: ReferenceOut},
    errors={404: "not the assignment's staff, or no reference solution yet"},
)
@login_required()
def get_reference(assignment_id: str):
    """The assignment's reference solution, its latest grading and the tests it fails."""
    assignment = _staff_assignment_or_404(g.user, assignment_id)
    reference = latest_reference(assignment)
    if reference is None:
        raise not_found("reference solution")
    return jsonify(_reference_json(reference, assignment).json_body())
