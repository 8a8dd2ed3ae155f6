"""How long a runner may take: a Kubernetes Job's activeDeadlineSeconds, the local
launcher's kill timer. The webapp sizes it when it queues a submission (it knows the
assignment) and refuses assignments that could never fit. Pure."""

from __future__ import annotations

from tasks.settings import SchedulerSettings

# What a deadline is made of (seconds): the build (the runner's compile wall limit, 2 x 20 s),
# each test (its wall limit: 2 x time limit + 0.5 s), the LLM feedback call, and a margin for
# pod start-up, loading the bundle and reporting the result with retries.
COMPILE_BUDGET_SECONDS = 40
LLM_BUDGET_SECONDS = 60
MARGIN_SECONDS = 40


def runner_seconds_needed(n_tests: int, time_limit_ms: int) -> int:
    """The worst case: a build, every test running to its wall limit, the LLM budget."""
    tests_ms = n_tests * (2 * max(time_limit_ms, 0) + 500)
    return COMPILE_BUDGET_SECONDS + -(-tests_ms // 1000) + LLM_BUDGET_SECONDS + MARGIN_SECONDS


def runner_deadline_seconds(n_tests: int, time_limit_ms: int, settings: SchedulerSettings) -> int:
    """Never below RUNNER_MIN_DEADLINE_SECONDS (the seed's 120 s), raised for many or slow
    tests, capped at RUNNER_MAX_DEADLINE_SECONDS so a bad assignment cannot pin a node."""
    needed = runner_seconds_needed(n_tests, time_limit_ms)
    return max(
        settings.runner_min_deadline_seconds, min(settings.runner_max_deadline_seconds, needed)
    )
