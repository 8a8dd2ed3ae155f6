"""The scheduler task, run eagerly: report `scheduled` after a launch, retry failed launches,
and give up with an explicit error result rather than leaving the submission queued."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# webapp must be imported before tasks.celery_app (see test_celery_app_imports_on_its_own).
import webapp  # noqa: F401

# isort: split
import tasks.scheduler as scheduler
from tasks.launchers import LaunchDeferred, LaunchError

REPO = Path(__file__).resolve().parents[3]

SUBMISSION_ID = "65a0000000000000000000cc"


@dataclass
class _Backend:
    statuses: list[tuple[str, str, str | None]] = field(default_factory=list)
    results: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    closed: bool = False

    def post_status(self, submission_id: str, status: str, job_name: str | None = None):
        self.statuses.append((submission_id, status, job_name))
        return {"status": status, "changed": True}

    def post_result(self, submission_id: str, result: dict[str, Any]):
        self.results.append((submission_id, result))
        return {"stored": True}

    def close(self) -> None:
        self.closed = True


@dataclass
class _Launcher:
    failures: int = 0
    deferrals: int = 0
    launches: int = 0

    def launch(self, submission_id: str) -> str:
        self.launches += 1
        if self.launches <= self.deferrals:
            raise LaunchDeferred("at MAX_RUNNING_JOBS", countdown=1)
        if self.launches <= self.deferrals + self.failures:
            raise LaunchError("cluster busy")
        return f"runner-{submission_id}"


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> _Backend:
    fake = _Backend()
    monkeypatch.setattr(scheduler, "_backend", lambda settings, submission_id: fake)
    return fake


def _use_launcher(monkeypatch: pytest.MonkeyPatch, launcher: _Launcher) -> None:
    monkeypatch.setattr(scheduler, "make_launcher", lambda settings: launcher)


def test_a_launch_is_reported_as_scheduled_with_the_job_name(monkeypatch, backend):
    launcher = _Launcher()
    _use_launcher(monkeypatch, launcher)

    result = scheduler.schedule_submission.apply(args=[SUBMISSION_ID])

    assert result.get() == f"runner-{SUBMISSION_ID}"
    assert backend.statuses == [(SUBMISSION_ID, "scheduled", f"runner-{SUBMISSION_ID}")]
    assert backend.results == []
    assert backend.closed


def test_a_failed_launch_is_retried(monkeypatch, backend):
    launcher = _Launcher(failures=2)
    _use_launcher(monkeypatch, launcher)

    scheduler.schedule_submission.apply(args=[SUBMISSION_ID])

    assert launcher.launches == 3
    assert [s[1] for s in backend.statuses] == ["scheduled"]
    assert backend.results == []


def test_after_the_last_retry_the_submission_gets_an_error_result(monkeypatch, backend):
    launcher = _Launcher(failures=100)
    _use_launcher(monkeypatch, launcher)

    scheduler.schedule_submission.apply(args=[SUBMISSION_ID])

    assert launcher.launches == scheduler.MAX_LAUNCH_RETRIES + 1
    assert backend.statuses == []
    [(submission_id, result)] = backend.results
    assert submission_id == SUBMISSION_ID
    assert result["status"] == "error"
    assert result["verdict"] == "internal_error"
    assert "cluster busy" in result["feedback"]


def test_deferrals_do_not_spend_the_failure_budget(monkeypatch, backend):
    launcher = _Launcher(deferrals=scheduler.MAX_LAUNCH_RETRIES + 3, failures=2)
    _use_launcher(monkeypatch, launcher)

    result = scheduler.schedule_submission.apply(args=[SUBMISSION_ID])

    assert result.get() == f"runner-{SUBMISSION_ID}"
    assert backend.results == []
    assert [s[1] for s in backend.statuses] == ["scheduled"]


def test_the_backend_client_uses_the_per_submission_token(monkeypatch):
    monkeypatch.setenv("INTERNAL_RESULT_TOKEN", "q" * 32)
    from webapp.config import Settings
    from webapp.security import result_token_for

    client = scheduler._backend(Settings.from_env(), SUBMISSION_ID)
    try:
        assert client.session.headers["X-Result-Token"] == result_token_for("q" * 32, SUBMISSION_ID)
    finally:
        client.close()


def test_celery_app_imports_on_its_own():
    completed = subprocess.run(
        [sys.executable, "-c", "import tasks.celery_app"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr[-2000:]
