"""What a suite does when this machine cannot run it (not root, no isolation, a tool
missing): under CI (the `CI` environment variable set, as every CI service sets it) that
is a failure, since a suite that silently stops running protects nothing; elsewhere the
tests are skipped, and loudly: the terminal summary ends with a line per suite that did not
run, and why.

A suite's conftest calls `cannot_run` from a fixture and reports from its
`pytest_terminal_summary` hook with `report_not_run`.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

_NOT_RUN: dict[str, str] = {}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def cannot_run(suite: str, reason: str) -> NoReturn:
    """Fail under CI, else skip (and remember why, for the terminal summary)."""
    message = f"the {suite} suite cannot run on this machine: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI is set: a suite that cannot run fails)", pytrace=False)
    _NOT_RUN.setdefault(suite, reason)
    pytest.skip(message)


def report_not_run(terminalreporter: pytest.TerminalReporter, suite: str) -> None:
    reason = _NOT_RUN.get(suite)
    if reason is not None:
        terminalreporter.write_sep(
            "!", f"the {suite} suite did NOT run: {reason}", yellow=True, bold=True
        )
