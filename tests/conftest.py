"""Suites by what they start. `tests/unit/` is pure (no process, no server); every other
tree starts real processes (redis-server, gunicorn, Celery, the runner, sandboxed programs)
and is marked `integration` here, by path, so `pytest -m "not integration"` runs exactly
the unit suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runner_image.sandbox import cgroups

UNIT_TESTS = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(UNIT_TESTS):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True, scope="module")
def leave_the_runner_cgroup() -> Iterator[None]:
    """A suite that grades in this process puts pytest in a runner's cgroup, as a runner
    enters its own. Left there, every process a later module starts (a dev stack, its
    runners) would be a member: its CPU time would count as a graded run's, the limits of
    a run would hold it, and a run's clean-up could kill it. So each module leaves that
    cgroup when done, its limits lifted for what it still holds (a session's redis-server
    started meanwhile), and the next module that grades makes a new one."""
    yield
    if cgroups.runner_cgroup.cache_info().currsize:
        cgroup = cgroups.runner_cgroup()
        cgroup.relax()
        cgroup.leave()
        cgroups.runner_cgroup.cache_clear()
