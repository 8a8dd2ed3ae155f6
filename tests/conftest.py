"""Suites by what they start. `tests/unit/` is pure (no process, no server); every other
tree starts real processes (redis-server, gunicorn, Celery, the runner, sandboxed programs)
and is marked `integration` here, by path, so `pytest -m "not integration"` runs exactly
the unit suite."""

from __future__ import annotations

from pathlib import Path

import pytest

UNIT_TESTS = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not item.path.is_relative_to(UNIT_TESTS):
            item.add_marker(pytest.mark.integration)
