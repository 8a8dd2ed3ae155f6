"""Rate limits and the login back-off: every refusal a 429 with Retry-After in the error
envelope; limits per client address and per account; failed logins slow a guesser down
without locking the student out."""

from __future__ import annotations

import pytest

from runner_image.settings import ConfigError
from tests.unit.webapp.conftest import PASSWORD
from webapp.limits import LOGIN_BLOCKED_KEY
from webapp.settings import WebappSettings


def _login(client, email: str, password: str, address: str | None = None):
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post(
        "/api/auth/login", json={"email": email, "password": password}, headers=headers
    )


def _assert_429(response, code: str) -> int:
    assert response.status_code == 429
    error = response.get_json()["error"]
    assert error["code"] == code
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    assert error["details"]["retry_after_seconds"] == retry_after
    return retry_after


def test_twenty_wrong_logins_for_one_account_in_a_minute_get_429(client, student):
    answers = [_login(client, student.email, "wrong password").status_code for _ in range(20)]

    assert answers[:5] == [401] * 5  # the free failures
    assert 429 in answers
    _assert_429(_login(client, student.email, "wrong password"), "login_backoff")


def test_the_back_off_doubles_with_each_failure(client, student, fake_redis):
    blocked = LOGIN_BLOCKED_KEY.format(email=student.email)
    for _ in range(5):
        assert _login(client, student.email, "wrong password").status_code == 401
    waits = []
    for _ in range(4):
        assert _login(client, student.email, "wrong password").status_code == 401
        waits.append(round(fake_redis.pttl(blocked) / 1000))
        fake_redis.delete(blocked)  # as if the wait were over
    assert waits == [1, 2, 4, 8]


def test_the_back_off_is_capped_and_never_locks_the_account(
    make_app, settings_with, register, fake_redis
):
    app = make_app(settings=settings_with(login_free_failures=1, login_backoff_max_seconds=3))
    client = app.test_client()
    student = register()
    blocked = LOGIN_BLOCKED_KEY.format(email=student.email)
    for _ in range(6):
        _login(client, student.email, "wrong password")
        assert fake_redis.pttl(blocked) <= 3000
        fake_redis.delete(blocked)

    assert _login(client, student.email, PASSWORD).status_code == 200


def test_a_success_clears_the_failures(client, student, fake_redis):
    for _ in range(5):
        _login(client, student.email, "wrong password")
    assert _login(client, student.email, PASSWORD).status_code == 200

    assert _login(client, student.email, "wrong password").status_code == 401  # free again


def test_the_back_off_is_per_account(client, register):
    guessed, other = register(), register()
    for _ in range(8):
        _login(client, guessed.email, "wrong password")

    assert _login(client, other.email, PASSWORD).status_code == 200


def test_logins_are_limited_per_client_address(make_app, settings_with, register):
    app = make_app(settings=settings_with(rate_limit_login="3/minute", trusted_proxy_hops=1))
    client = app.test_client()
    student = register()
    for _ in range(3):
        assert _login(client, student.email, PASSWORD, "203.0.113.7").status_code == 200

    _assert_429(_login(client, student.email, PASSWORD, "203.0.113.7"), "rate_limited")
    # Another address behind the trusted proxy still gets in.
    assert _login(client, student.email, PASSWORD, "198.51.100.9").status_code == 200


def test_forwarded_addresses_are_ignored_without_trusted_proxies(make_app, settings_with, register):
    app = make_app(settings=settings_with(rate_limit_login="2/minute"))
    client = app.test_client()
    student = register()
    for address in ("203.0.113.7", "198.51.100.9"):
        assert _login(client, student.email, PASSWORD, address).status_code == 200

    _assert_429(_login(client, student.email, PASSWORD, "192.0.2.1"), "rate_limited")


def test_registrations_are_limited_per_client_address(make_app, settings_with):
    app = make_app(settings=settings_with(rate_limit_register="2/minute"))
    client = app.test_client()
    answers = [
        client.post(
            "/api/auth/register",
            json={"email": f"probe{i}@example.org", "password": PASSWORD, "name": "P"},
        )
        for i in range(3)
    ]

    assert [a.status_code for a in answers[:2]] == [201, 201]
    _assert_429(answers[2], "rate_limited")


def test_submissions_are_limited_per_account(make_app, settings_with, register, make_instructor):
    app = make_app(settings=settings_with(rate_limit_submit="2/minute"))
    client = app.test_client()
    teacher = make_instructor()
    created = client.post(
        "/api/assignments",
        json={
            "title": "Echo",
            "tests": [{"name": "t", "stdin": "", "expected_stdout": "x\n"}],
        },
        headers=teacher.headers,
    )
    assert created.status_code == 201, created.get_json()
    path = f"/api/assignments/{created.get_json()['id']}/submissions"
    eager, patient = register(), register()
    codes = [
        client.post(path, json={"code": "print('x')"}, headers=eager.headers).status_code
        for _ in range(3)
    ]

    assert codes[:2] == [202, 202]
    _assert_429(
        client.post(path, json={"code": "print('x')"}, headers=eager.headers), "rate_limited"
    )
    # The same address, another account: its own count.
    assert (
        client.post(path, json={"code": "print('x')"}, headers=patient.headers).status_code == 202
    )


@pytest.mark.parametrize("value", ["lots", "30/fortnight", "-1/minute"])
def test_a_malformed_limit_is_a_config_error_naming_it(value):
    with pytest.raises(ConfigError, match="RATE_LIMIT_LOGIN"):
        WebappSettings.from_env(
            {
                "MONGO_URI": "mongodb://db",
                "REDIS_URL": "redis://redis:6379/0",
                "INTERNAL_RESULT_TOKEN": "t" * 32,
                "SECRET_KEY": "s" * 32,
                "RATE_LIMIT_LOGIN": value,
            }
        )
