"""The hostile suite needs the machine production grades on: root (for the sandbox's own
uid and network namespace) and the strict isolation level. When this machine cannot give
it that, the suite fails under CI and is skipped loudly elsewhere (tests/suite_guard.py)."""

from __future__ import annotations

import os

import pytest

from runner_image.contract import IsolationLevel
from runner_image.sandbox.isolation import probe_isolation, pyseccomp
from tests.runner_harness import backend, redis_url, run_submission  # noqa: F401
from tests.suite_guard import cannot_run, report_not_run

SUITE = "hostile"


@pytest.fixture(scope="session")
def strict_sandbox() -> None:
    """Root, and every layer the hostile submissions are checked against."""
    if os.geteuid() != 0:
        cannot_run(SUITE, "not root (the strict isolation level needs root here)")
    isolation = probe_isolation()
    if isolation.level != IsolationLevel.STRICT or isolation.uid is None:
        cannot_run(
            SUITE,
            f"isolation level {isolation.level} with layers {', '.join(isolation.layers)} "
            "(strict with a sandbox uid is needed)",
        )


@pytest.fixture(scope="session")
def seccomp_filter() -> None:
    """libseccomp, which the seccomp layer needs (no privilege)."""
    if pyseccomp is None:
        cannot_run(SUITE, "libseccomp/pyseccomp is not available")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report_not_run(terminalreporter, SUITE)
