"""The LLM gateway (/internal/llm/<id>/v1/chat/completions): runners reach the model through
the backend with their one-submission token; the provider's key never leaves the backend.

The provider is tests/llm_fake_server.py, a Chat Completions server on 127.0.0.1 in a thread
of this process (no process is started), which records what it received."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
import redis
import requests
from bson import ObjectId
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from runner_image.contract import RESULT_TOKEN_HEADER, submission_token, sweep_token
from tasks.launchers.base import llm_gateway_url
from tests import llm_fake_server as fake
from webapp.blueprints.llm_gateway import (
    MAX_GATEWAY_REQUEST_BYTES,
    MAX_PROVIDER_RESPONSE_BYTES,
    budget_key,
)
from webapp.models import Submission

PROVIDER_KEY = "sk-backend-provider-key"
MODEL = "gpt-configured"
MAX_OUTPUT_TOKENS = 300

COMPLETION = fake.Completion({"feedback": "Check `negative`.", "fail_tags": []})


def chat_path(submission_id: str) -> str:
    """The path a runner's openai client posts to: its base URL + /chat/completions."""
    base = llm_gateway_url("http://backend:8000/internal", submission_id)
    return base.removeprefix("http://backend:8000") + "/chat/completions"


def runner_request(**overrides: Any) -> dict[str, Any]:
    """What the runner's client sends (runner_image/review/llm.py)."""
    body: dict[str, Any] = {
        "model": "gpt-asked-for",
        "messages": [
            {"role": "system", "content": "You explain test outcomes."},
            {"role": "user", "content": "Test `negative` fails."},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "feedback", "strict": True, "schema": {"type": "object"}},
        },
        "max_completion_tokens": 1000,
    }
    body.update(overrides)
    return body


@pytest.fixture
def llm() -> Iterator[fake.FakeChatServer]:
    with fake.fake_chat_server(default=COMPLETION) as server:
        yield server


@pytest.fixture
def gateway_settings(settings_with, llm):
    """The backend's settings with LLM feedback on, pointed at the fake provider."""

    def _settings(**changes: Any):
        values: dict[str, Any] = {
            "llm_api_key": PROVIDER_KEY,
            "llm_base_url": llm.base_url,
            "llm_model": MODEL,
            "llm_max_output_tokens": MAX_OUTPUT_TOKENS,
            "llm_timeout_seconds": 5,
        }
        return settings_with(**(values | changes))

    return _settings


@pytest.fixture
def gateway_app(make_app, gateway_settings) -> Flask:
    return make_app(settings=gateway_settings())


@pytest.fixture
def gateway(gateway_app: Flask) -> FlaskClient:
    return gateway_app.test_client()


@pytest.fixture
def submission_id(submit, student, assignment) -> str:
    response = submit(student, assignment["id"])
    assert response.status_code == 202
    return response.get_json()["id"]


@pytest.fixture
def token(secret: str, submission_id: str) -> str:
    """What the runner of `submission_id` holds (its LLM_API_KEY, its result token)."""
    return submission_token(secret, submission_id)


@pytest.fixture
def ask(gateway: FlaskClient, secret: str) -> Callable[..., Any]:
    """POST a chat completion to the gateway as the runner of `submission_id` would."""

    def _ask(
        submission_id: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        client: FlaskClient | None = None,
    ):
        if token is None:
            token = submission_token(secret, submission_id)
        if headers is None:
            headers = {"Authorization": f"Bearer {token}"}
        return (client or gateway).post(
            chat_path(submission_id),
            json=runner_request() if body is None else body,
            headers=headers,
        )

    return _ask


def _error(response) -> dict[str, Any]:
    return response.get_json()["error"]


def _close(submission_id: str, status: str) -> None:
    Submission.objects(id=submission_id).update_one(set__status=status)


# --- who may call -------------------------------------------------------------------------


def test_the_runners_token_gets_the_providers_completion(ask, submission_id, llm):
    response = ask(submission_id)

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == (
        '{"feedback": "Check `negative`.", "fail_tags": []}'
    )
    assert len(llm.received) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic " + "dXNlcjpwYXNz"},
    ],
    ids=["none", "empty", "no-token", "wrong", "basic"],
)
def test_no_or_a_wrong_token_is_401_and_nothing_is_forwarded(
    ask, submission_id, llm, fake_redis, headers
):
    response = ask(submission_id, headers=headers)

    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_token"
    assert llm.received == []
    assert fake_redis.get(budget_key(submission_id)) is None  # no budget spent either


def test_the_token_in_the_result_header_is_not_enough(ask, submission_id, token, llm):
    response = ask(submission_id, headers={RESULT_TOKEN_HEADER: token})

    assert response.status_code == 401
    assert llm.received == []


def test_another_submissions_token_is_401(ask, submit, student, assignment, secret, llm):
    victim = submit(student, assignment["id"]).get_json()["id"]
    attacker = submit(student, assignment["id"]).get_json()["id"]

    response = ask(victim, token=submission_token(secret, attacker))

    assert response.status_code == 401
    assert llm.received == []


@pytest.mark.parametrize("which", ["server secret", "sweep token", "provider key"])
def test_no_other_secret_opens_the_gateway(ask, submission_id, secret, llm, which):
    token = {"server secret": secret, "sweep token": sweep_token(secret)}.get(which, PROVIDER_KEY)

    assert ask(submission_id, token=token).status_code == 401
    assert llm.received == []


def test_the_token_is_checked_before_anything_else(
    ask, submission_id, make_app, gateway_settings, llm
):
    """Without a valid token, unknown, closed and unconfigured all look the same."""
    unconfigured = make_app(settings=gateway_settings(llm_api_key=None)).test_client()
    _close(submission_id, "graded")

    for response in (
        ask(str(ObjectId()), token="wrong"),
        ask(submission_id, token="wrong"),
        ask(submission_id, token="wrong", client=unconfigured),
        ask(submission_id, body=[1, 2], token="wrong"),
    ):
        assert response.status_code == 401
        assert _error(response)["code"] == "invalid_token"
    assert llm.received == []


def test_unknown_submission_with_its_valid_token_is_404(ask, llm):
    response = ask(str(ObjectId()))

    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"
    assert llm.received == []


def test_malformed_id_with_its_valid_token_is_404(ask, llm):
    assert ask("not-an-id").status_code == 404
    assert llm.received == []


@pytest.mark.parametrize("status", ["graded", "failed", "error"])
def test_a_closed_submission_is_409(ask, submission_id, llm, status):
    _close(submission_id, status)

    response = ask(submission_id)

    assert response.status_code == 409
    error = _error(response)
    assert error["code"] == "submission_closed"
    assert set(error) == {"code", "message", "details"}  # the API's envelope
    assert llm.received == []


@pytest.mark.parametrize("status", ["queued", "scheduled", "running"])
def test_an_open_submission_is_served(ask, submission_id, llm, status):
    _close(submission_id, status)

    assert ask(submission_id).status_code == 200
    assert len(llm.received) == 1


# --- what goes to the provider ------------------------------------------------------------


def test_the_provider_gets_the_backends_key_never_the_runners_token(
    ask, submission_id, token, secret, llm
):
    assert ask(submission_id).status_code == 200

    [received] = llm.received
    assert received.path == "/v1/chat/completions"
    assert received.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    seen = str(received.headers) + str(received.body)
    assert token not in seen
    assert secret not in seen


def test_the_model_is_forced_and_the_rest_of_the_request_kept(ask, submission_id, llm):
    sent = runner_request(model="gpt-4-expensive", temperature=0.2)

    assert ask(submission_id, body=sent).status_code == 200

    [received] = llm.received
    assert received.body["model"] == MODEL
    assert received.body["messages"] == sent["messages"]
    assert received.body["response_format"] == sent["response_format"]
    assert received.body["temperature"] == 0.2


@pytest.mark.parametrize(
    ("sent", "forwarded"),
    [
        ({"max_completion_tokens": 100_000}, {"max_completion_tokens": MAX_OUTPUT_TOKENS}),
        ({"max_completion_tokens": 50}, {"max_completion_tokens": 50}),
        ({"max_tokens": 100_000}, {"max_tokens": MAX_OUTPUT_TOKENS}),
        (
            {"max_tokens": 100_000, "max_completion_tokens": 200},
            {"max_tokens": MAX_OUTPUT_TOKENS, "max_completion_tokens": 200},
        ),
        ({"max_completion_tokens": "lots"}, {"max_completion_tokens": MAX_OUTPUT_TOKENS}),
        ({"max_completion_tokens": True}, {"max_completion_tokens": MAX_OUTPUT_TOKENS}),
        ({"max_completion_tokens": None}, {"max_completion_tokens": MAX_OUTPUT_TOKENS}),
        ({}, {"max_completion_tokens": MAX_OUTPUT_TOKENS}),  # no limit sent: the cap is
    ],
)
def test_the_output_is_capped(ask, submission_id, llm, sent, forwarded):
    body = runner_request()
    del body["max_completion_tokens"]

    assert ask(submission_id, body=body | sent).status_code == 200

    [received] = llm.received
    limits = {
        k: v for k, v in received.body.items() if k in ("max_tokens", "max_completion_tokens")
    }
    assert limits == forwarded


def test_a_zero_cap_sends_no_limit(make_app, gateway_settings, ask, submission_id, llm):
    """LLM_MAX_OUTPUT_TOKENS=0: the provider takes no limit parameter (docs/llm.md)."""
    client = make_app(settings=gateway_settings(llm_max_output_tokens=0)).test_client()
    body = runner_request()
    del body["max_completion_tokens"]

    assert ask(submission_id, body=body, client=client).status_code == 200
    assert "max_completion_tokens" not in llm.received[0].body


def test_cost_multipliers_are_dropped(ask, submission_id, llm):
    sent = runner_request(n=64, stream=True, stream_options={"include_usage": True})

    assert ask(submission_id, body=sent).status_code == 200

    [received] = llm.received
    assert not {"n", "stream", "stream_options"} & received.body.keys()


@pytest.mark.parametrize(
    "behaviour",
    [
        fake.Status(400, "response_format is not supported"),
        fake.Status(401, "invalid api key"),
        fake.Status(429, "slow down", {"Retry-After": "30"}),
        fake.Status(500, "overloaded"),
        fake.Status(503, "maintenance"),
        fake.Raw(b"this is not JSON"),
    ],
    ids=lambda b: str(getattr(b, "code", "")),
)
def test_the_providers_status_and_body_come_back_unchanged(ask, submission_id, llm, behaviour):
    """So the runner classifies a failure as if it had called the provider itself."""
    llm.script(behaviour)

    response = ask(submission_id)

    assert response.status_code == behaviour.code
    if isinstance(behaviour, fake.Raw):
        assert response.data == behaviour.body
    else:
        assert response.get_json() == {
            "error": {"message": behaviour.message, "type": "fake_error"}
        }
    assert len(llm.received) == 1


# --- budget -------------------------------------------------------------------------------


def test_the_budget_is_per_submission(
    make_app, gateway_settings, ask, submit, student, assignment, llm, fake_redis
):
    client = make_app(settings=gateway_settings(llm_gateway_max_calls=2)).test_client()
    first = submit(student, assignment["id"]).get_json()["id"]
    second = submit(student, assignment["id"]).get_json()["id"]

    assert ask(first, client=client).status_code == 200
    assert ask(first, client=client).status_code == 200
    over = ask(first, client=client)
    again = ask(first, client=client)

    assert (over.status_code, again.status_code) == (429, 429)
    assert _error(over)["code"] == "llm_budget_exhausted"
    assert _error(over)["details"] == {"limit": 2}
    assert len(llm.received) == 2
    # Another submission has its own budget.
    assert ask(second, client=client).status_code == 200
    assert len(llm.received) == 3
    # The counter expires on its own once no runner of the submission can still be alive.
    assert 0 < fake_redis.ttl(budget_key(first)) <= 24 * 3600 + 3600


def test_failed_calls_spend_the_budget_too(make_app, gateway_settings, ask, submission_id, llm):
    client = make_app(settings=gateway_settings(llm_gateway_max_calls=2)).test_client()
    llm.reset(default=fake.Status(500))

    codes = [ask(submission_id, client=client).status_code for _ in range(3)]

    assert codes == [500, 500, 429]
    assert len(llm.received) == 2


def test_the_default_budget_covers_the_runners_retries(gateway_app):
    """The runner makes 1 + LLM_MAX_RETRIES calls (a second pod of a Job as many again)."""
    settings = gateway_app.config["SETTINGS"]
    assert settings.llm_gateway_max_calls == 4
    assert settings.llm_gateway_max_calls >= 2 * (1 + settings.llm_max_retries)


def test_a_body_that_is_no_json_object_is_400_and_spends_no_budget(
    ask, submission_id, llm, fake_redis
):
    for body in ([1, 2], "text", 3):
        response = ask(submission_id, body=body)
        assert response.status_code == 400
        assert _error(response)["code"] == "invalid_body"
    assert llm.received == []
    assert fake_redis.get(budget_key(submission_id)) is None


def test_malformed_json_is_400(gateway, submission_id, token, llm):
    response = gateway.post(
        chat_path(submission_id),
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 400
    assert _error(response)["code"] == "malformed_json"
    assert llm.received == []


def test_a_body_over_one_mib_is_413(ask, submission_id, llm):
    padding = "x" * MAX_GATEWAY_REQUEST_BYTES
    body = runner_request(messages=[{"role": "user", "content": padding}])

    response = ask(submission_id, body=body)

    assert response.status_code == 413
    assert llm.received == []


def test_redis_down_is_503_and_nothing_is_forwarded(
    make_app, gateway_settings, ask, submission_id, llm
):
    down = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    client = make_app(settings=gateway_settings(), redis=down).test_client()

    response = ask(submission_id, client=client)

    assert response.status_code == 503
    assert _error(response)["code"] == "dependency_unavailable"
    assert llm.received == []


# --- the provider in trouble --------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _openai_error(response) -> dict[str, Any]:
    error = _error(response)
    assert set(error) == {"message", "type", "code"}
    return error


def test_no_provider_key_is_503_not_configured(
    make_app, gateway_settings, ask, submission_id, llm, fake_redis
):
    client = make_app(settings=gateway_settings(llm_api_key=None)).test_client()

    response = ask(submission_id, client=client)

    assert response.status_code == 503
    assert _openai_error(response)["code"] == "llm_not_configured"
    assert llm.received == []
    assert fake_redis.get(budget_key(submission_id)) is None


def test_a_provider_that_cannot_be_reached_is_502(make_app, gateway_settings, ask, submission_id):
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    client = make_app(settings=gateway_settings(llm_base_url=base_url)).test_client()

    response = ask(submission_id, client=client)

    assert response.status_code == 502
    error = _openai_error(response)
    assert error["code"] == "llm_unreachable"
    assert "127.0.0.1" not in error["message"]  # where the provider is stays here


@pytest.mark.parametrize(
    "behaviour",
    [fake.Sleep(10), fake.Trickle(seconds=10, interval=0.05)],
    ids=["silent", "trickling"],
)
def test_a_provider_slower_than_the_timeout_is_504(
    make_app, gateway_settings, ask, submission_id, llm, behaviour
):
    client = make_app(settings=gateway_settings(llm_timeout_seconds=0.5)).test_client()
    llm.script(behaviour)

    started = time.monotonic()
    response = ask(submission_id, client=client)
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert _openai_error(response)["code"] == "llm_timeout"
    assert elapsed < 3, "the whole call is bounded, not each read"


def test_an_answer_larger_than_any_completion_is_502(ask, submission_id, llm):
    llm.script(fake.Raw(b"x" * (MAX_PROVIDER_RESPONSE_BYTES + 1)))

    response = ask(submission_id)

    assert response.status_code == 502
    assert _openai_error(response)["code"] == "llm_bad_response"


def test_the_default_provider_is_openai(
    make_app, gateway_settings, ask, submission_id, monkeypatch
):
    seen: dict[str, Any] = {}

    def refuse(url: str, **kwargs: Any):
        seen.update(url=url, **kwargs)
        raise requests.ConnectionError("no network in unit tests")

    monkeypatch.setattr(requests, "post", refuse)
    client = make_app(settings=gateway_settings(llm_base_url=None)).test_client()

    response = ask(submission_id, client=client)

    assert response.status_code == 502
    assert seen["url"] == "https://api.openai.com/v1/chat/completions"
    assert seen["headers"]["Authorization"] == f"Bearer {PROVIDER_KEY}"
    assert seen["allow_redirects"] is False  # the key is never sent on to another host


# --- the runner's own client --------------------------------------------------------------


@pytest.fixture
def served_gateway(gateway_app: Flask) -> Iterator[str]:
    """The gateway app on a real HTTP port, in a thread, for the real openai client."""
    server = make_server("127.0.0.1", 0, gateway_app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/internal"
    finally:
        server.shutdown()
        server.server_close()


def _client(served_gateway: str, submission_id: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=token,
        base_url=llm_gateway_url(served_gateway, submission_id),
        max_retries=0,
        timeout=10,
    )


def test_the_openai_client_only_changes_its_base_url(served_gateway, submission_id, token, llm):
    with _client(served_gateway, submission_id, token) as client:
        completion = client.chat.completions.create(
            model="anything", messages=[{"role": "user", "content": "hi"}]
        )

    assert completion.choices[0].message.content == (
        '{"feedback": "Check `negative`.", "fail_tags": []}'
    )
    assert llm.received[0].headers["authorization"] == f"Bearer {PROVIDER_KEY}"


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        (fake.Status(500), openai.InternalServerError),
        (fake.Status(429), openai.RateLimitError),
        (fake.Status(401), openai.AuthenticationError),
        (fake.Status(400), openai.BadRequestError),
    ],
)
def test_the_openai_client_sees_the_providers_failures(
    served_gateway, submission_id, token, llm, behaviour, error
):
    llm.script(behaviour)

    with _client(served_gateway, submission_id, token) as client, pytest.raises(error) as caught:
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])

    assert caught.value.status_code == behaviour.code


def test_the_openai_client_with_a_wrong_token_is_refused(served_gateway, submission_id, llm):
    with (
        _client(served_gateway, submission_id, "sk-guess") as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    assert llm.received == []
