"""`limit`/`offset` query parameters, validated the same way for every list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify, request
from mongoengine.queryset import QuerySet
from pydantic import BaseModel, Field

from webapp.errors import ApiError
from webapp.responses import Out

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 1_000_000  # MongoDB's skip takes a 64-bit integer; nobody pages this far


class PageQuery(BaseModel):
    """Documents the query; `paginated` parses it, answering `400 invalid_query`."""

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


def _non_negative_int(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "invalid_query", f"{name} must be a non-negative integer")
    return int(raw)


def paginated(queryset: QuerySet, render: Callable[[Any], Out]):
    limit = _non_negative_int("limit", DEFAULT_LIMIT)
    offset = _non_negative_int("offset", 0)
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_query", f"limit must be between 1 and {MAX_LIMIT}")
    if offset > MAX_OFFSET:
        raise ApiError(400, "invalid_query", f"offset must be at most {MAX_OFFSET}")
    items = [render(doc).json_body() for doc in queryset.skip(offset).limit(limit)]
    return jsonify({"items": items, "total": queryset.count(), "limit": limit, "offset": offset})
