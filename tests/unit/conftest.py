"""The unit suite is pure: a test that tries to start a process fails here instead of
quietly becoming an integration test."""

from __future__ import annotations

import os
import subprocess

import pytest


class ProcessStarted(AssertionError):
    pass


def _refuse(*args: object, **kwargs: object) -> None:
    raise ProcessStarted(
        "unit tests must not start processes; move this test out of tests/unit "
        "(every other tree is marked integration)"
    )


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse)
    monkeypatch.setattr(os, "fork", _refuse)
    monkeypatch.setattr(os, "posix_spawn", _refuse)
    monkeypatch.setattr(os, "posix_spawnp", _refuse)
