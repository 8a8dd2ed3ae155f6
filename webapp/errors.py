"""One JSON error shape for every failure: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import json
import logging
from typing import Any, TypeVar

from flask import Flask, Response, jsonify, request
from pydantic import BaseModel, ValidationError
from pymongo.errors import PyMongoError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

log = logging.getLogger(__name__)

# An oversized body is read and discarded up to this size, so the client (still sending)
# receives the 413 instead of a reset connection; beyond it the connection is just closed.
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024
# No request of the API nests deeper (a call test's `expected` is the deepest thing).
MAX_JSON_DEPTH = 64

Body = TypeVar("Body", bound=BaseModel)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message, "details": details or {}}}), status


def json_object_body() -> dict[str, Any]:
    """The request's body as a JSON object, or a 4xx that says what is wrong with it. Only
    `application/json` is read: a `text/plain` body, which a browser may send cross-site
    without a CORS preflight, is refused."""
    raw = request.get_data(cache=True)
    if raw and request.mimetype != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the request body as application/json",
            {"content_type": request.mimetype or None},
        )
    too_deep = f"request body nests deeper than {MAX_JSON_DEPTH} levels"
    try:
        payload = json.loads(raw) if raw else None
    except RecursionError as exc:
        raise ApiError(400, "malformed_json", too_deep) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_body", "request body must be a JSON object")
    if _nests_deeper_than(payload, MAX_JSON_DEPTH):
        raise ApiError(400, "malformed_json", too_deep)
    return payload


def _nests_deeper_than(value: Any, limit: int) -> bool:
    """Iterative, so that no depth can exhaust the stack of whatever reads it next."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
    return False


def parse_body(model: type[Body]) -> Body:
    """Parse the request's JSON object into `model`, or raise a 400 that says what is wrong."""
    payload = json_object_body()
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        raise ApiError(
            400, "invalid_body", "request body is invalid", {"errors": problems}
        ) from exc


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        response, status = error_response(exc.status, exc.code, exc.message, exc.details)
        response.headers.update(exc.headers)
        return response, status

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        _drain_request_body()
        limit = request.max_content_length  # the route's own (the internal API's is larger)
        return error_response(
            413,
            "request_entity_too_large",
            f"request body is larger than {limit} bytes",
            {"limit_bytes": limit},
        )

    @app.errorhandler(PyMongoError)
    @app.errorhandler(RedisError)
    def _dependency_down(exc: Exception):
        """MongoDB or Redis unreachable: the client may retry, nothing was half-done that
        the conditional updates would not undo."""
        log.warning("%s %s: a dependency is unreachable: %s", request.method, request.path, exc)
        response, status = error_response(
            503,
            "dependency_unavailable",
            "a service the API depends on is unreachable; please retry",
            {"retry_after_seconds": 5},
        )
        response.headers["Retry-After"] = "5"
        return response, status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error")


def _drain_request_body() -> None:
    length = request.content_length or 0
    if length > DRAIN_LIMIT_BYTES:
        return
    stream = request.environ["wsgi.input"]
    while length > 0:
        chunk = stream.read(min(length, 65536))
        if not chunk:
            break
        length -= len(chunk)
