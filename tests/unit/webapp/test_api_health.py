"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import pymongo.errors
import pytest
import redis


class _DownRedis:
    def ping(self):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")


class _DownDatabase:
    def command(self, *args, **kwargs):
        raise pymongo.errors.ServerSelectionTimeoutError("db:27017: timed out")


def test_healthz_is_200(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_mongo_and_redis_answer(client):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"mongodb": "ok", "redis": "ok"}}


def test_readyz_is_503_when_redis_is_down(make_app):
    client = make_app(redis=_DownRedis()).test_client()

    response = client.get("/readyz")

    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "dependency_unavailable"
    assert error["details"]["mongodb"] == "ok"
    assert error["details"]["redis"].startswith("unreachable")


def test_readyz_is_503_when_mongodb_is_down(make_app):
    client = make_app(database=_DownDatabase()).test_client()

    response = client.get("/readyz")

    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["code"] == "dependency_unavailable"
    assert error["details"]["mongodb"] == "unreachable: ServerSelectionTimeoutError"
    assert error["details"]["redis"] == "ok"


def test_health_endpoints_need_no_token(client):
    for path in ("/healthz", "/readyz"):
        assert client.get(path).status_code == 200, path


METRICS_TOKEN = "m" * 32


@pytest.fixture
def scraped(make_app, settings_with):
    """A backend with METRICS_TOKEN set, and a scrape of /metrics with that token."""
    app = make_app(settings=settings_with(metrics_token=METRICS_TOKEN))
    client = app.test_client()
    return client, lambda token: client.get(
        "/metrics", headers={"Authorization": f"Bearer {token}"} if token else {}
    )


def test_metrics_are_refused_without_a_configured_token(client):
    response = client.get("/metrics")

    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "metrics_disabled"


@pytest.mark.parametrize("token", [None, "", "wrong" * 8, METRICS_TOKEN[:-1]])
def test_metrics_need_the_configured_token(scraped, token):
    _, scrape = scraped

    response = scrape(token)

    assert response.status_code == 401
    assert "cloudemy_submissions" not in response.get_data(as_text=True)


def test_metrics_exposes_submissions_by_status(scraped, submit, student, assignment):
    submit(student, assignment["id"])
    _, scrape = scraped

    response = scrape(METRICS_TOKEN)

    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert "cloudemy_submissions" in text
    assert 'cloudemy_submissions{status="queued"} 1.0' in text
    assert 'cloudemy_submissions{status="graded"} 0.0' in text
    assert "cloudemy_http_requests_total" in text


def test_unknown_route_is_a_json_404(client):
    response = client.get("/api/nothing-here")

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_a_json_405(client):
    response = client.delete("/api/me")

    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
