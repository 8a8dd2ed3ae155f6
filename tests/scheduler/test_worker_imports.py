"""The worker's modules import in a fresh interpreter with no environment at all: the
webapp, `celery -A tasks.worker` and the tests import task names without a scheduler
environment, since celeryconfig (which reads it) is only loaded when the worker's Celery
app is first configured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHECK = """\
import sys
import {module}
assert "celeryconfig" not in sys.modules, "celeryconfig was loaded at import"
"""


@pytest.mark.parametrize(
    "module", ["tasks.worker", "tasks.scheduler", "tasks.reconcile", "tasks.celery_app"]
)
def test_a_worker_module_imports_on_its_own_without_any_environment(module: str) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", CHECK.format(module=module)],
        cwd=REPO,
        env={},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
