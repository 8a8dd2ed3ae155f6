"""The LLM gateway: runners reach the feedback model through the backend, never directly.

In a runner pod student code runs under the runner's own uid (the pod is the boundary, see
docs/sandbox.md), so no long-lived secret may be in it. A runner is therefore given this
gateway as its OpenAI base URL, `BACKEND_INTERNAL_URL/llm/<id>/v1`, and its one-submission
token as its API key (tasks.launchers.base.Launcher.runner_env); its `openai` client is
otherwise unchanged. Here the token is checked, the submission must still be open and
within its call budget, and the request goes on to the provider with the backend's own key,
the configured model and the output-token cap. The provider's status and body come back
unchanged, so the runner classifies a failure exactly as if it had called the provider.

What a stolen token buys: `LLM_GATEWAY_MAX_CALLS` capped completions with the configured
model, for that one submission, while it is open. The provider's key never leaves here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests
import urllib3
from flask import Blueprint, Response, jsonify, request
from redis.exceptions import RedisError

from runner_image.contract import OPEN_STATUSES
from webapp.auth import bearer_token
from webapp.blueprints.internal import authorised_submission
from webapp.errors import ApiError, json_object_body
from webapp.openapi import internal_api, operation
from webapp.services import app_settings, services
from webapp.settings import WebappSettings

log = logging.getLogger(__name__)

bp = Blueprint("llm_gateway", __name__, url_prefix="/internal/llm")

# A feedback prompt is code (clipped at 30,000 characters) plus test outcomes: far below this.
MAX_GATEWAY_REQUEST_BYTES = 1024 * 1024
# A completion capped at LLM_MAX_OUTPUT_TOKENS is a few KiB; anything this big is not one.
MAX_PROVIDER_RESPONSE_BYTES = 4 * 1024 * 1024
DEFAULT_PROVIDER_URL = "https://api.openai.com/v1"
CONNECT_TIMEOUT_SECONDS = 5.0
BUDGET_KEY_PREFIX = "llm-calls:"
TOKEN_LIMIT_PARAMETERS = ("max_completion_tokens", "max_tokens")
# Parameters that would multiply the cost of a call or change what comes back (several
# choices, a stream, a pricier tier, audio): dropped, so one call is one capped completion.
DROPPED_PARAMETERS = ("n", "stream", "stream_options", "service_tier", "audio", "modalities")


class _ProviderTooSlow(Exception):
    """The provider's answer did not arrive within LLM_TIMEOUT_SECONDS."""


class _ProviderTooLarge(Exception):
    """The provider's answer is larger than any capped completion."""


@bp.before_request
def _bounded_body() -> None:
    request.max_content_length = MAX_GATEWAY_REQUEST_BYTES


def budget_key(submission_id: str, grading_round: int = 0) -> str:
    """Each grading round has a budget of its own: a regrade's runner asks for feedback too."""
    key = f"{BUDGET_KEY_PREFIX}{submission_id}"
    return key if grading_round == 0 else f"{key}:r{grading_round}"


def _openai_error(status: int, code: str, message: str, kind: str) -> Response:
    """An error in OpenAI's shape, for failures on the provider's side of the gateway: the
    runner's client reads them as it would the provider's own."""
    response = jsonify({"error": {"message": message, "type": kind, "code": code}})
    response.status_code = status
    return response


@bp.post("/<submission_id>/v1/chat/completions")
@operation(
    internal_api,
    tags=("internal",),
    ok={200: "the provider's Chat Completions answer, unchanged"},
    errors={
        400: "a body that is not a JSON object",
        401: "`invalid_token`",
        404: "",
        409: "`submission_closed`, `stale_round` (a token of a round a regrade replaced)",
        413: "",
        415: "",
        429: "`llm_budget_exhausted`",
        502: "`llm_unreachable`, `llm_bad_response` (OpenAI's error shape)",
        503: "`llm_not_configured` (OpenAI's error shape)",
        504: "`llm_timeout` (OpenAI's error shape)",
    },
    security="bearer",
)
def chat_completions(submission_id: str) -> Response:
    """OpenAI Chat Completions for one submission's runner, with the backend's provider key:
    the runner's `openai` client uses `.../internal/llm/<id>/v1` as its base URL and the
    submission's token as its API key."""
    settings = app_settings()
    # The token first (of the current grading round), so an unknown id reveals nothing
    # without one.
    submission = authorised_submission(
        submission_id, (bearer_token() or "").strip(), "bearer token"
    )
    oid = submission.id
    if submission.status not in OPEN_STATUSES:
        raise ApiError(
            409,
            "submission_closed",
            f"submission is {submission.status}: the LLM is only for open submissions",
        )
    provider_key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
    if not provider_key:
        return _openai_error(
            503, "llm_not_configured", "no LLM provider is configured", "server_error"
        )
    body = _completion_request(settings)
    calls = _spend_one_call(str(oid), submission.round, settings)
    started = time.monotonic()
    response = _forward(body, provider_key, settings)
    log.info(
        "LLM gateway: %s call %d of %d: HTTP %d in %d ms",
        oid,
        calls,
        settings.llm_gateway_max_calls,
        response.status_code,
        round((time.monotonic() - started) * 1000),
    )
    return response


def _completion_request(settings: WebappSettings) -> dict[str, Any]:
    """The runner's body with the model forced, the output capped and cost multipliers
    dropped; 400 when it is not a JSON object."""
    body = json_object_body()
    for name in DROPPED_PARAMETERS:
        body.pop(name, None)
    body["model"] = settings.llm_model
    limit = settings.llm_max_output_tokens
    if limit:  # 0: the provider takes no limit parameter (docs/llm.md), so none is sent
        present = [name for name in TOKEN_LIMIT_PARAMETERS if body.get(name) is not None]
        for name in present:
            value = body[name]
            wellformed = isinstance(value, int) and not isinstance(value, bool)
            body[name] = min(value, limit) if wellformed else limit
        if not present:
            body["max_completion_tokens"] = limit
    return body


def _spend_one_call(submission_id: str, grading_round: int, settings: WebappSettings) -> int:
    """Count this call against the submission's budget and return its number; 429 once the
    budget is spent. Counted before the call, so a failed or abandoned call is spent too.
    The counter outlives any runner of the submission (its bundle, then its longest
    deadline), then expires."""
    key = budget_key(submission_id, grading_round)
    ttl = settings.bundle_ttl_seconds + settings.runner_max_deadline_seconds
    try:
        pipe = services().redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, ttl)
        calls, _ = pipe.execute()
    except RedisError as exc:
        log.warning("LLM gateway: cannot count the calls of %s: %s", submission_id, exc)
        raise ApiError(
            503, "dependency_unavailable", "the LLM call budget cannot be checked; retry later"
        ) from exc
    limit = settings.llm_gateway_max_calls
    if int(calls) > limit:
        log.warning("LLM gateway: %s has spent its %d calls", submission_id, limit)
        raise ApiError(
            429,
            "llm_budget_exhausted",
            f"this submission has used its {limit} LLM calls",
            {"limit": limit},
        )
    return int(calls)


def _forward(body: dict[str, Any], provider_key: str, settings: WebappSettings) -> Response:
    url = (settings.llm_base_url or DEFAULT_PROVIDER_URL).rstrip("/") + "/chat/completions"
    timeout = float(settings.llm_timeout_seconds)
    deadline = time.monotonic() + timeout
    try:
        with requests.post(
            url,
            json=body,
            headers={"Authorization": f"Bearer {provider_key}", "Accept": "application/json"},
            timeout=(min(timeout, CONNECT_TIMEOUT_SECONDS), timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            payload = _read_within(response, deadline)
            status = response.status_code
            content_type = response.headers.get("Content-Type", "application/json")
    except (requests.Timeout, urllib3.exceptions.TimeoutError, _ProviderTooSlow):
        log.warning("LLM gateway: the provider did not answer within %g s", timeout)
        return _openai_error(
            504, "llm_timeout", f"the LLM provider did not answer within {timeout:g} s", "timeout"
        )
    except _ProviderTooLarge:
        return _openai_error(
            502, "llm_bad_response", "the LLM provider's answer is too large", "server_error"
        )
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        # The exception's text can name the provider's host; the runner needs only the kind.
        log.warning("LLM gateway: cannot reach the provider: %s", exc)
        return _openai_error(
            502,
            "llm_unreachable",
            f"the LLM provider cannot be reached ({type(exc).__name__})",
            "server_error",
        )
    return Response(payload, status=status, content_type=content_type)


def _read_within(response: requests.Response, deadline: float) -> bytes:
    """The whole body, refused once `deadline` has passed with the body still incomplete.
    requests' read timeout applies to each read, so a provider trickling bytes would never
    trip it; each read1 returns what has arrived (urllib3's own errors are not wrapped by
    requests here, hence their own except clauses above)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.raw.read1(65536, decode_content=True)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_PROVIDER_RESPONSE_BYTES:
            raise _ProviderTooLarge
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise _ProviderTooSlow
