"""The scoped tokens of the internal API. Each is an HMAC of one scope under the server's
INTERNAL_RESULT_TOKEN, so a runner holds a token for its own submission and nothing else,
and the reconciler's sweep token opens no submission.

A submission is graded in rounds (round 0 when it is submitted, one more per regrade), and a
submission token is scoped to one round: once a regrade starts round n, the tokens of the
earlier rounds no longer open it, so a late runner cannot overwrite the new round's result.
Round 0's token is the HMAC of `result:<id>`, as before rounds existed (runners in flight
across an upgrade keep working); round n > 0's is the HMAC of `result:<id>:<n>`."""

from __future__ import annotations

import hashlib
import hmac

RESULT_TOKEN_HEADER = "X-Result-Token"


def _scoped_token(server_secret: str, scope: str) -> str:
    return hmac.new(server_secret.encode(), scope.encode(), hashlib.sha256).hexdigest()


def submission_token(server_secret: str, submission_id: str, grading_round: int = 0) -> str:
    """What a runner (or the scheduler, the reconciler) shows to report on one grading round
    of one submission."""
    if grading_round < 0:
        raise ValueError("a grading round is 0 or more")
    scope = (
        f"result:{submission_id}"
        if grading_round == 0
        else f"result:{submission_id}:{grading_round}"
    )
    return _scoped_token(server_secret, scope)


def token_round(
    server_secret: str, submission_id: str, presented: str | None, current_round: int
) -> int | None:
    """The round of `submission_id`, from 0 to `current_round`, whose token `presented` is;
    None when it is none of them. The current round is tried first: the usual case costs
    one HMAC, and only a refused token costs one per round."""
    for grading_round in range(current_round, -1, -1):
        expected = submission_token(server_secret, submission_id, grading_round)
        if token_matches(expected, presented):
            return grading_round
    return None


def sweep_token(server_secret: str) -> str:
    """What the reconciler shows for POST /internal/sweep."""
    return _scoped_token(server_secret, "sweep")


def token_matches(expected: str, presented: str | None) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(expected.encode(), (presented or "").encode())
