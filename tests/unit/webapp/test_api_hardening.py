"""Bodies the API refuses before anything reads them: not JSON by media type (so that no
browser can post one cross-site without a CORS preflight), nested too deep, too large;
never a 500."""

from __future__ import annotations

import json

import pytest

from runner_image.contract import RESULT_TOKEN_HEADER, submission_token
from tests.unit.webapp.conftest import PASSWORD
from webapp.blueprints.internal import MAX_RESULT_BYTES
from webapp.errors import MAX_JSON_DEPTH

LOGIN = {"email": "ana@example.org", "password": PASSWORD}


def _code(response) -> str:
    return response.get_json()["error"]["code"]


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None],
)
def test_a_body_that_is_not_declared_json_is_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    for path in ("/api/auth/login", "/api/auth/register"):
        response = client.post(path, data=json.dumps(LOGIN), headers=headers)

        assert response.status_code == 415
        assert _code(response) == "unsupported_media_type"


def test_json_with_a_charset_is_json(client, register):
    register(email=LOGIN["email"])

    response = client.post(
        "/api/auth/login",
        data=json.dumps(LOGIN),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert response.status_code == 200


def test_a_bodyless_post_is_not_a_media_type_problem(client, secret):
    response = client.post(
        "/internal/sweep", headers={RESULT_TOKEN_HEADER: submission_token(secret, "x")}
    )

    assert response.status_code == 401  # judged on its token, not its (absent) body


@pytest.mark.parametrize("depth", [100_000, 1_000, MAX_JSON_DEPTH + 1])
def test_a_body_nested_too_deep_is_400_never_500(client, depth):
    body = '{"email": ' + "[" * depth + "]" * depth + ', "password": "x"}'

    response = client.post(
        "/api/auth/login", data=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert _code(response) == "malformed_json"
    assert str(MAX_JSON_DEPTH) in response.get_json()["error"]["message"]


def test_nesting_up_to_the_limit_reaches_validation(client):
    nested = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    body = '{"email": ' + nested + ', "password": "x"}'

    response = client.post(
        "/api/auth/login", data=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert _code(response) == "invalid_body"  # parsed, then refused field by field


def test_the_internal_413_states_the_internal_limit(client, secret, submit, student, assignment):
    submission_id = submit(student, assignment["id"]).get_json()["id"]
    body = b"x" * (MAX_RESULT_BYTES + 1)

    response = client.post(
        f"/internal/submissions/{submission_id}/result",
        data=body,
        headers={
            "Content-Type": "application/json",
            RESULT_TOKEN_HEADER: submission_token(secret, submission_id),
        },
    )

    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["details"]["limit_bytes"] == MAX_RESULT_BYTES
    assert str(MAX_RESULT_BYTES) in error["message"]


def test_the_public_413_states_the_public_limit(client, settings):
    body = b"x" * (settings.max_request_bytes + 1)

    response = client.post(
        "/api/auth/login", data=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.get_json()["error"]["details"]["limit_bytes"] == settings.max_request_bytes
