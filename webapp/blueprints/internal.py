"""Callbacks from the scheduler and the runner, authenticated by scoped tokens
(runner_image.contract.tokens): one per grading round of a submission, one for the sweep.

Only the submission's current round may report: a token of an earlier round (a runner a
regrade has replaced) is a 409 `stale_round`, whatever it reports, and changes nothing."""

from __future__ import annotations

from dataclasses import asdict

from bson import ObjectId
from flask import Blueprint, jsonify, request

from runner_image.contract import (
    RESULT_TOKEN_HEADER,
    Result,
    Status,
    sweep_token,
    token_matches,
    token_round,
)
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


def _require_round_token(
    submission_id: str, presented: str | None, where: str, current: int | None
) -> None:
    """`presented` must be the token of the submission's current round (`current`; None:
    no such submission). A token of no round is 401 whether or not the id exists (an unknown
    id reveals nothing without a token); one of an earlier round is 409 `stale_round`.
    `where` names the credential in the 401's message."""
    presented_round = token_round(_server_secret(), submission_id, presented, current or 0)
    if presented_round is None:
        raise ApiError(401, "invalid_token", f"missing or invalid {where}")
    if current is None:
        raise not_found("submission")
    if presented_round != current:
        raise ApiError(
            409,
            "stale_round",
            f"this token is for grading round {presented_round}; a regrade has started "
            f"round {current}",
            {"round": presented_round, "current_round": current},
        )


def authorised_submission(submission_id: str, presented: str | None, where: str) -> Submission:
    """The submission whose current grading round `presented` is the token of."""
    submission = None
    if ObjectId.is_valid(submission_id):
        submission = Submission.objects(id=ObjectId(submission_id)).first()
    current = submission.round if submission is not None else None
    _require_round_token(submission_id, presented, where, current)
    return submission


def _authorised_round(submission_id: str) -> tuple[ObjectId, int]:
    """The id and current round of the submission the request's token is for, read as a raw
    projection: the status callbacks (two per submission) need nothing else, and building
    the whole document cost them more than the rest of their work on the stand-in."""
    shown = None
    if ObjectId.is_valid(submission_id):
        shown = Submission._get_collection().find_one(
            {"_id": ObjectId(submission_id)}, {"round": True}
        )
    current = shown["round"] if shown is not None else None
    _require_round_token(
        submission_id, request.headers.get(RESULT_TOKEN_HEADER), RESULT_TOKEN_HEADER, current
    )
    return shown["_id"], current


def _authorised_submission(submission_id: str) -> Submission:
    return authorised_submission(
        submission_id, request.headers.get(RESULT_TOKEN_HEADER), RESULT_TOKEN_HEADER
    )


TOKEN = "result_token"
BAD_TOKEN = {401: "`invalid_token`, before anything else is looked at"}
STALE = "`stale_round`: the token is of a grading round a regrade has replaced"


@bp.post("/submissions/<submission_id>/status")
@operation(
    internal_api,
    tags=("internal",),
    body=StatusBody,
    ok={200: StatusChangeOut},
    errors=BAD_TOKEN | {404: "", 409: STALE},
    security=TOKEN,
)
def post_status(submission_id: str):
    """A submission's current round was scheduled or started (scheduler, runner); never
    moves it backwards."""
    oid, grading_round = _authorised_round(submission_id)
    body = parse_body(StatusBody)
    if body.status == Status.SCHEDULED:
        changed, status = mark_scheduled(services().redis, oid, body.job_name, grading_round)
    else:
        changed, status = mark_running(services().redis, oid, grading_round)
    if status is None:  # deleted meanwhile, with its assignment
        raise not_found("submission")
    return jsonify(StatusChangeOut(status=status, changed=changed).json_body())


@bp.post("/submissions/<submission_id>/result")
@operation(
    internal_api,
    tags=("internal",),
    body=Result,
    ok={200: StoredOut},
    errors=BAD_TOKEN
    | {
        400: "a score above max_score, a `round` other than the token's",
        404: "",
        409: "`result_conflict`: another result; " + STALE,
    },
    security=TOKEN,
)
def post_result(submission_id: str):
    """The result of a submission's current round (runner; scheduler and reconciler for an
    `error`): an identical repeat is `stored: false`."""
    submission = _authorised_submission(submission_id)
    result = parse_body(Result)
    if result.round != submission.round:
        raise ApiError(
            400,
            "invalid_body",
            f"the result is for round {result.round}, the token for round {submission.round}",
        )
    if result.score is not None and result.score > submission.max_score + 1e-9:
        raise ApiError(
            400,
            "invalid_body",
            f"score {result.score} is above the maximum of {submission.max_score}",
        )
    outcome = store_result(services().redis, submission, result)
    if outcome is StoreOutcome.STORED:
        discard_bundle(submission.id, services(), result.round)
    if outcome is StoreOutcome.CONFLICT:
        raise ApiError(409, "result_conflict", "a different result is already stored")
    if outcome is StoreOutcome.STALE:
        raise ApiError(
            409,
            "stale_round",
            f"a regrade replaced round {result.round} while its result arrived",
            {"round": result.round},
        )
    return jsonify(StoredOut(stored=outcome is StoreOutcome.STORED).json_body())


@bp.post("/sweep")
@operation(internal_api, tags=("internal",), ok={200: SweepOut}, errors=BAD_TOKEN, security=TOKEN)
def post_sweep():
    """Re-send stale tasks and end what outlived every deadline: run by the reconciler on
    every pass, under a token scoped to this one call."""
    _require_token(sweep_token(_server_secret()))
    report = sweep(app_settings(), services())
    return jsonify(SweepOut(**asdict(report)).json_body())
