"""Callbacks from the scheduler and the runner, authenticated by scoped tokens
(runner_image.contract.tokens): one per submission, one for the sweep."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, jsonify, request

from runner_image.contract import (
    RESULT_TOKEN_HEADER,
    Result,
    Status,
    submission_token,
    sweep_token,
    token_matches,
)
from webapp.auth import object_id_or_404
from webapp.errors import ApiError, not_found, parse_body
from webapp.grading import discard_bundle
from webapp.lifecycle import StoreOutcome, mark_running, mark_scheduled, store_result
from webapp.models import Submission
from webapp.openapi import internal_api, operation
from webapp.responses import StatusChangeOut, StoredOut, SweepOut
from webapp.schemas import StatusBody
from webapp.services import app_settings, services
from webapp.sweeper import sweep

bp = Blueprint("internal", __name__, url_prefix="/internal")

# A result carries up to 500 test rows with clipped outputs: more than the public API's limit.
MAX_RESULT_BYTES = 16 * 1024 * 1024


@bp.before_request
def _allow_full_results() -> None:
    request.max_content_length = MAX_RESULT_BYTES


def _server_secret() -> str:
    return app_settings().internal_result_token.get_secret_value()


def _require_token(expected: str) -> None:
    if not token_matches(expected, request.headers.get(RESULT_TOKEN_HEADER)):
        raise ApiError(401, "invalid_token", f"missing or invalid {RESULT_TOKEN_HEADER}")


def _authorised_submission(submission_id: str) -> Submission:
    """Check the token before anything else, so an unknown id reveals nothing without one."""
    _require_token(submission_token(_server_secret(), submission_id))
    submission = Submission.objects(id=object_id_or_404(submission_id, "submission")).first()
    if submission is None:
        raise not_found("submission")
    return submission


TOKEN = "result_token"
BAD_TOKEN = {401: "`invalid_token`, before anything else is looked at"}


@bp.post("/submissions/<submission_id>/status")
@operation(
    internal_api,
    tags=("internal",),
    body=StatusBody,
    ok={200: StatusChangeOut},
    errors=BAD_TOKEN | {404: ""},
    security=TOKEN,
)
def post_status(submission_id: str):
    """A submission was scheduled or started (scheduler, runner); never moves it backwards."""
    oid = _authorised_submission(submission_id).id
    body = parse_body(StatusBody)
    if body.status == Status.SCHEDULED:
        changed = mark_scheduled(services().redis, oid, body.job_name)
    else:
        changed = mark_running(services().redis, oid)
    status = Submission.objects(id=oid).only("status").first().status
    return jsonify(StatusChangeOut(status=status, changed=changed).json_body())


@bp.post("/submissions/<submission_id>/result")
@operation(
    internal_api,
    tags=("internal",),
    body=Result,
    ok={200: StoredOut},
    errors=BAD_TOKEN
    | {400: "a score above max_score", 404: "", 409: "`result_conflict`: another result"},
    security=TOKEN,
)
def post_result(submission_id: str):
    """A submission's result (runner; scheduler and reconciler for an `error`): an identical
    repeat is `stored: false`."""
    submission = _authorised_submission(submission_id)
    result = parse_body(Result)
    if result.score is not None and result.score > submission.max_score + 1e-9:
        raise ApiError(
            400,
            "invalid_body",
            f"score {result.score} is above the maximum of {submission.max_score}",
        )
    outcome = store_result(services().redis, submission, result)
    if outcome is StoreOutcome.STORED:
        discard_bundle(submission.id, services())
    if outcome is StoreOutcome.CONFLICT:
        raise ApiError(409, "result_conflict", "a different result is already stored")
    return jsonify(StoredOut(stored=outcome is StoreOutcome.STORED).json_body())


@bp.post("/sweep")
@operation(internal_api, tags=("internal",), ok={200: SweepOut}, errors=BAD_TOKEN, security=TOKEN)
def post_sweep():
    """Re-send stale tasks and end what outlived every deadline: run by the reconciler on
    every pass, under a token scoped to this one call."""
    _require_token(sweep_token(_server_secret()))
    report = sweep(app_settings(), services())
    return jsonify(SweepOut(**asdict(report)).json_body())
