"""The scoped tokens of the internal API. Each is an HMAC of one scope under the server's
INTERNAL_RESULT_TOKEN, so a runner holds a token for its own submission and nothing else,
and the reconciler's sweep token opens no submission."""

from __future__ import annotations

import hashlib
import hmac

RESULT_TOKEN_HEADER = "X-Result-Token"


def _scoped_token(server_secret: str, scope: str) -> str:
    return hmac.new(server_secret.encode(), scope.encode(), hashlib.sha256).hexdigest()


def submission_token(server_secret: str, submission_id: str) -> str:
    """What a runner (or the scheduler, the reconciler) shows to report on one submission."""
    return _scoped_token(server_secret, f"result:{submission_id}")


def sweep_token(server_secret: str) -> str:
    """What the reconciler shows for POST /internal/sweep."""
    return _scoped_token(server_secret, "sweep")


def token_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(expected.encode(), (presented or "").encode())
