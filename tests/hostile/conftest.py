"""The hostile suite needs the machine production grades on: root (for the sandbox's own
uid, namespaces and cgroups) and the namespaced isolation level with every layer it checks
against. When this machine cannot give it that, the suite fails under CI and is skipped
loudly elsewhere (tests/suite_guard.py)."""

from __future__ import annotations

import os

import pytest

from runner_image.contract import IsolationLevel
from runner_image.sandbox.isolation import probe_isolation
from runner_image.sandbox.seccomp import seccomp_available
from tests.runner_harness import backend, redis_url, run_submission  # noqa: F401
from tests.suite_guard import cannot_run, report_not_run

SUITE = "hostile"
# What the hostile submissions are checked against: a uid of the sandbox's own, fresh
# namespaces per run, a cgroup per run and the seccomp filter.
REQUIRED_LAYERS = ("uid", "namespaces", "cgroup", "seccomp")


@pytest.fixture(scope="session")
def namespaced_sandbox() -> None:
    """Root, the namespaced level, and every layer of REQUIRED_LAYERS."""
    if os.geteuid() != 0:
        cannot_run(SUITE, "not root (the namespaced isolation level needs root here)")
    isolation = probe_isolation()
    missing = [layer for layer in REQUIRED_LAYERS if layer not in isolation.layers]
    if isolation.level != IsolationLevel.NAMESPACED or missing:
        cannot_run(
            SUITE,
            f"isolation level {isolation.level} with layers {', '.join(isolation.layers)} "
            f"(namespaced with {', '.join(REQUIRED_LAYERS)} is needed; missing: "
            f"{', '.join(missing) or 'none'})",
        )


@pytest.fixture(scope="session")
def seccomp_filter() -> None:
    """libseccomp, which the seccomp layer needs (no privilege)."""
    if not seccomp_available():
        cannot_run(SUITE, "libseccomp/pyseccomp is not available")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report_not_run(terminalreporter, SUITE)
