"""What the API server's answers mean: the reason of a Status, how long a Retry-After asks
us to wait. Pure; shared by the launcher and the watch that feeds its cache."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

RETRY_AFTER_DEFAULT = 5.0
RETRY_AFTER_MAX = 300.0


def api_status(exc: ApiException) -> tuple[str, str]:
    """The (reason, message) of the Status object in an API error, as far as there is one."""
    try:
        body: dict[str, Any] = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return str(body.get("reason") or exc.reason or ""), str(body.get("message") or "")


def is_already_exists(exc: ApiException) -> bool:
    return exc.status == 409 and api_status(exc)[0] == "AlreadyExists"


def retry_after_seconds(headers: Any) -> float:
    """Retry-After as seconds (delta or HTTP date), within [1, RETRY_AFTER_MAX]."""
    raw = (headers or {}).get("Retry-After")
    seconds = RETRY_AFTER_DEFAULT
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                seconds = RETRY_AFTER_DEFAULT
    return max(1.0, min(RETRY_AFTER_MAX, seconds))
