"""Liveness, readiness (MongoDB and Redis reachable) and Prometheus metrics."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from runner_image.contract import token_matches
from webapp.auth import bearer_token
from webapp.errors import ApiError
from webapp.metrics import REGISTRY
from webapp.openapi import operation, public_api
from webapp.responses import HealthOut, ReadyOut
from webapp.services import app_settings, services

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@operation(public_api, tags=("operations",), ok={200: HealthOut}, security=None)
def healthz():
    """Liveness: the process answers."""
    return jsonify(HealthOut(status="ok").json_body())


@bp.get("/readyz")
@operation(
    public_api,
    tags=("operations",),
    ok={200: ReadyOut},
    errors={503: "details name each unreachable dependency"},
    security=None,
)
def readyz():
    """Readiness: MongoDB and Redis reachable."""
    checks: dict[str, str] = {}
    try:
        services().database.command("ping")
        checks["mongodb"] = "ok"
    except Exception as exc:
        log.warning("readiness: MongoDB unreachable: %s", exc)
        checks["mongodb"] = f"unreachable: {type(exc).__name__}"
    try:
        services().redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        log.warning("readiness: Redis unreachable: %s", exc)
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        return (
            jsonify(
                {
                    "error": {
                        "code": "dependency_unavailable",
                        "message": "a dependency is unreachable",
                        "details": checks,
                    }
                }
            ),
            503,
        )
    return jsonify(ReadyOut(status="ready", checks=checks).json_body())


@bp.get("/metrics")
@operation(
    public_api,
    tags=("operations",),
    ok={200: "Prometheus text format"},
    errors={401: "`unauthorized`: not the METRICS_TOKEN", 403: "`metrics_disabled`"},
    security="bearer",
)
def metrics():
    """Prometheus metrics, with `Authorization: Bearer <METRICS_TOKEN>`: what they show
    (request counts, submissions by status) is no business of whoever else reaches the
    backend."""
    token = app_settings().metrics_token
    if token is None:
        raise ApiError(403, "metrics_disabled", "set METRICS_TOKEN to scrape /metrics")
    if not token_matches(token.get_secret_value(), bearer_token()):
        raise ApiError(401, "unauthorized", "/metrics needs the METRICS_TOKEN bearer token")
    return Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST)
