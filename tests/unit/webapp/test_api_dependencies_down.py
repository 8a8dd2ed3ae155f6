"""MongoDB or Redis unreachable: 503 dependency_unavailable with Retry-After, never a 500."""

from __future__ import annotations

import pymongo.errors
import pytest

from webapp.blueprints import accounts


def test_mongodb_unreachable_is_503(client, monkeypatch):
    class Unreachable:
        def __call__(self, *args, **kwargs):
            raise pymongo.errors.ServerSelectionTimeoutError("db:27017: timed out")

    monkeypatch.setattr(accounts.User, "objects", Unreachable())

    response = client.post("/api/auth/login", json={"email": "a@b.org", "password": "x" * 8})

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "dependency_unavailable"
    assert response.headers["Retry-After"] == "5"


def test_redis_unreachable_for_the_limits_is_503(make_app, settings_with):
    app = make_app(settings=settings_with(rate_limit_storage_uri="redis://127.0.0.1:1/0"))

    response = app.test_client().post(
        "/api/auth/login", json={"email": "a@b.org", "password": "x" * 8}
    )

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "dependency_unavailable"


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/register"])
def test_nothing_of_the_error_reaches_the_client(make_app, settings_with, path):
    app = make_app(settings=settings_with(rate_limit_storage_uri="redis://127.0.0.1:1/0"))

    response = app.test_client().post(path, json={"email": "a@b.org", "password": "x" * 8})

    assert "127.0.0.1" not in response.get_data(as_text=True)
