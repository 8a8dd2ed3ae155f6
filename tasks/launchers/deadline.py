"""How long a runner may take, from its bundle: used by both launchers (the Kubernetes Job's
activeDeadlineSeconds, the local launcher's kill timer). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What a deadline is made of (seconds): the build (the runner's compile wall limit, 2 x 20 s),
# each test (its wall limit: 2 x time limit + 0.5 s), the LLM feedback call, and a margin for
# pod start-up, loading the bundle and reporting the result with retries.
COMPILE_BUDGET_SECONDS = 40
LLM_BUDGET_SECONDS = 60
MARGIN_SECONDS = 40


def runner_deadline_seconds(
    bundle: Mapping[str, Any] | None, minimum: int = 120, maximum: int = 3600
) -> int:
    """activeDeadlineSeconds for a bundle: never below `minimum` (the seed's 120 s), raised
    for many or slow tests, capped at `maximum` so a bad assignment cannot pin a node."""
    if not bundle:
        return minimum
    try:
        time_limit_ms = int(bundle.get("time_limit_ms") or 0)
        n_tests = len(bundle.get("tests") or ())
    except (TypeError, ValueError):
        return minimum
    return max(minimum, min(maximum, runner_seconds_needed(n_tests, time_limit_ms)))


def runner_seconds_needed(n_tests: int, time_limit_ms: int) -> int:
    """The worst case: a build, every test running to its wall limit, the LLM budget."""
    tests_ms = n_tests * (2 * max(time_limit_ms, 0) + 500)
    return COMPILE_BUDGET_SECONDS + -(-tests_ms // 1000) + LLM_BUDGET_SECONDS + MARGIN_SECONDS
