"""Accounts: register, login, /api/me (api.md, section Accounts)."""

from __future__ import annotations

import pytest

from webapp.models import User
from webapp.security import issue_access_token

CREDENTIALS = {"email": "ada@example.com", "password": "analytical", "name": "Ada"}


@pytest.fixture
def secret_key(settings) -> str:
    """The server's SECRET_KEY, which signs the users' bearer tokens."""
    return settings.secret_key.get_secret_value()


def _error_code(response) -> str:
    return response.get_json()["error"]["code"]


def _register(client, **overrides):
    return client.post("/api/auth/register", json={**CREDENTIALS, **overrides})


def test_register_creates_a_student_and_never_returns_the_password_hash(client):
    response = _register(client)

    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "email", "name", "role"}
    assert body["role"] == "student"
    assert body["email"] == "ada@example.com"
    assert "analytical" not in response.get_data(as_text=True)
    stored = User.objects.get(id=body["id"])
    assert stored.password_hash.startswith("$argon2id$")
    assert "analytical" not in stored.password_hash


def test_register_normalises_the_email(client):
    response = _register(client, email="  Ada@Example.COM ")

    assert response.status_code == 201
    assert response.get_json()["email"] == "ada@example.com"


def test_register_cannot_choose_its_role(client):
    response = _register(client, role="instructor")

    assert response.status_code == 400
    assert _error_code(response) == "invalid_body"
    assert User.objects.count() == 0


def test_register_duplicate_email_is_409_email_taken(client):
    assert _register(client).status_code == 201

    response = _register(client, email="ADA@example.com", name="Impostor")

    assert response.status_code == 409
    assert _error_code(response) == "email_taken"
    assert User.objects.count() == 1


def test_register_short_password_is_400(client):
    response = _register(client, password="1234567")

    assert response.status_code == 400
    assert _error_code(response) == "invalid_body"
    assert [e["field"] for e in response.get_json()["error"]["details"]["errors"]] == ["password"]
    assert User.objects.count() == 0


def test_register_malformed_json_is_400_malformed_json(client):
    response = client.post(
        "/api/auth/register", data='{"email": "a@b.co",', content_type="application/json"
    )

    assert response.status_code == 400
    assert _error_code(response) == "malformed_json"


@pytest.mark.parametrize("payload", ["[]", '"text"', "null", ""])
def test_register_non_object_body_is_400_invalid_body(client, payload):
    response = client.post("/api/auth/register", data=payload, content_type="application/json")

    assert response.status_code == 400
    assert _error_code(response) == "invalid_body"


@pytest.mark.parametrize("missing", ["email", "password", "name"])
def test_register_missing_field_is_400_naming_the_field(client, missing):
    payload = {k: v for k, v in CREDENTIALS.items() if k != missing}

    response = client.post("/api/auth/register", json=payload)

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_body"
    assert missing in [e["field"] for e in error["details"]["errors"]]


def test_register_unknown_extra_field_is_400(client):
    response = _register(client, nickname="countess")

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_body"
    assert "nickname" in [e["field"] for e in error["details"]["errors"]]


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a b@c.de"])
def test_register_invalid_email_is_400(client, email):
    response = _register(client, email=email)

    assert response.status_code == 400
    assert _error_code(response) == "invalid_body"


def test_login_returns_a_bearer_token(client):
    _register(client)

    response = client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": "analytical"}
    )

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and body["access_token"]


def test_login_wrong_password_is_401_invalid_credentials(client):
    _register(client)

    response = client.post(
        "/api/auth/login", json={"email": "ada@example.com", "password": "wrong-password"}
    )

    assert response.status_code == 401
    assert _error_code(response) == "invalid_credentials"
    assert "access_token" not in response.get_json()


def test_login_unknown_email_is_the_same_401(client):
    response = client.post(
        "/api/auth/login", json={"email": "nobody@example.com", "password": "analytical"}
    )

    assert response.status_code == 401
    assert _error_code(response) == "invalid_credentials"


def test_login_missing_password_is_400(client):
    response = client.post("/api/auth/login", json={"email": "ada@example.com"})

    assert response.status_code == 400
    assert _error_code(response) == "invalid_body"


def test_me_with_token_returns_the_profile(client, login):
    user_id = _register(client).get_json()["id"]

    response = client.get("/api/me", headers=login("ada@example.com", "analytical"))

    assert response.status_code == 200
    assert response.get_json() == {
        "id": user_id,
        "email": "ada@example.com",
        "name": "Ada",
        "role": "student",
    }


def test_me_for_an_instructor_shows_the_role(client, instructor):
    response = client.get("/api/me", headers=instructor.headers)

    assert response.status_code == 200
    assert response.get_json()["role"] == "instructor"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWRhOmFuYWx5dGljYWw="},
        {"Authorization": "Bearer not.a.jwt"},
    ],
)
def test_me_without_a_usable_token_is_401(client, headers):
    response = client.get("/api/me", headers=headers)

    assert response.status_code == 401
    assert _error_code(response) == "unauthorized"


def test_me_with_an_expired_token_is_401(client, secret_key):
    user_id = _register(client).get_json()["id"]
    token = issue_access_token(user_id, secret_key, ttl_seconds=-10)

    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert _error_code(response) == "unauthorized"


def test_me_with_a_token_signed_by_another_secret_is_401(client):
    user_id = _register(client).get_json()["id"]
    forged = issue_access_token(user_id, "x" * 32, ttl_seconds=3600)

    response = client.get("/api/me", headers={"Authorization": f"Bearer {forged}"})

    assert response.status_code == 401


def test_me_with_a_token_for_a_deleted_user_is_401(client, secret_key):
    user_id = _register(client).get_json()["id"]
    token = issue_access_token(user_id, secret_key, ttl_seconds=3600)
    User.objects(id=user_id).delete()

    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401


def test_me_with_a_token_whose_subject_is_not_an_object_id_is_401(client, secret_key):
    token = issue_access_token("admin", secret_key, ttl_seconds=3600)

    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
