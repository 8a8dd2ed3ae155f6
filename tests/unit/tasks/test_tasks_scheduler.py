"""The scheduler task, run eagerly: report `scheduled` after a launch, retry failed launches,
give up with an explicit error result rather than leaving the submission queued, and hand
the launcher the deadline the webapp sized."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

import tasks.scheduler as scheduler
from runner_image.contract import (
    RESULT_TOKEN_HEADER,
    Result,
    Status,
    Verdict,
    submission_token,
)
from tasks.launchers import LaunchDeferred, LaunchError
from tasks.settings import SchedulerSettings
from tests.eager_worker import SECRET, run_worker_on, scheduler_settings

SUBMISSION_ID = "65a0000000000000000000cc"
MAX_DEADLINE = 2400


@dataclass
class _Backend:
    statuses: list[tuple[str, Status, str | None]] = field(default_factory=list)
    results: list[tuple[str, Result]] = field(default_factory=list)
    closed: bool = False

    def post_status(self, submission_id: str, status: Status, job_name: str | None = None):
        self.statuses.append((submission_id, status, job_name))
        return {"status": str(status), "changed": True}

    def post_result(self, submission_id: str, result: Result):
        self.results.append((submission_id, result))
        return {"stored": True}

    def close(self) -> None:
        self.closed = True


@dataclass
class _Launcher:
    failures: int = 0
    deferrals: int = 0
    launches: int = 0
    deadlines: list[int] = field(default_factory=list)

    def launch(self, submission_id: str, deadline_seconds: int, attempt: int = 1) -> str:
        self.launches += 1
        self.deadlines.append(deadline_seconds)
        if self.launches <= self.deferrals:
            raise LaunchDeferred("at MAX_RUNNING_JOBS", countdown=1)
        if self.launches <= self.deferrals + self.failures:
            raise LaunchError("cluster busy")
        return f"runner-{submission_id}"


@pytest.fixture
def settings() -> SchedulerSettings:
    configured = scheduler_settings(runner_max_deadline_seconds=MAX_DEADLINE)
    run_worker_on(configured)
    return configured


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch, settings: SchedulerSettings) -> Iterator[_Backend]:
    fake = _Backend()
    seen: list[tuple[SchedulerSettings, str]] = []

    def backend_for(given: SchedulerSettings, submission_id: str) -> _Backend:
        seen.append((given, submission_id))
        return fake

    monkeypatch.setattr(scheduler, "backend_for", backend_for)
    yield fake
    assert all(given is settings and sid == SUBMISSION_ID for given, sid in seen)


def _use_launcher(monkeypatch: pytest.MonkeyPatch, launcher: _Launcher, settings) -> None:
    def make_launcher(given: SchedulerSettings) -> _Launcher:
        assert given is settings  # the worker's settings, not a fresh read of the environment
        return launcher

    monkeypatch.setattr(scheduler, "make_launcher", make_launcher)


def test_a_launch_is_reported_as_scheduled_with_the_job_name(monkeypatch, settings, backend):
    launcher = _Launcher()
    _use_launcher(monkeypatch, launcher, settings)

    result = scheduler.schedule_submission.apply(
        args=[SUBMISSION_ID], kwargs={"deadline_seconds": 185}
    )

    assert result.get() == f"runner-{SUBMISSION_ID}"
    assert backend.statuses == [(SUBMISSION_ID, Status.SCHEDULED, f"runner-{SUBMISSION_ID}")]
    assert backend.results == []
    assert backend.closed


def test_the_deadline_from_the_task_reaches_the_launcher(monkeypatch, settings, backend):
    launcher = _Launcher()
    _use_launcher(monkeypatch, launcher, settings)

    scheduler.schedule_submission.apply(args=[SUBMISSION_ID], kwargs={"deadline_seconds": 185})

    assert launcher.deadlines == [185]


def test_a_task_without_a_deadline_gets_the_longest_one(monkeypatch, settings, backend):
    """E.g. a task queued by an older webapp, or sent by hand: never cut short."""
    launcher = _Launcher()
    _use_launcher(monkeypatch, launcher, settings)

    result = scheduler.schedule_submission.apply(args=[SUBMISSION_ID])

    assert result.get() == f"runner-{SUBMISSION_ID}"
    assert launcher.deadlines == [MAX_DEADLINE] == [settings.runner_max_deadline_seconds]


def test_a_failed_launch_is_retried(monkeypatch, settings, backend):
    launcher = _Launcher(failures=2)
    _use_launcher(monkeypatch, launcher, settings)

    scheduler.schedule_submission.apply(args=[SUBMISSION_ID], kwargs={"deadline_seconds": 185})

    assert launcher.launches == 3
    assert launcher.deadlines == [185, 185, 185]  # every retry keeps the task's deadline
    assert [s[1] for s in backend.statuses] == [Status.SCHEDULED]
    assert backend.results == []


def test_after_the_last_retry_the_submission_gets_an_error_result(monkeypatch, settings, backend):
    launcher = _Launcher(failures=100)
    _use_launcher(monkeypatch, launcher, settings)

    scheduler.schedule_submission.apply(args=[SUBMISSION_ID])

    assert launcher.launches == scheduler.MAX_LAUNCH_RETRIES + 1
    assert backend.statuses == []
    [(submission_id, result)] = backend.results
    assert submission_id == SUBMISSION_ID
    assert isinstance(result, Result)
    assert result.status == Status.ERROR
    assert result.verdict == Verdict.INTERNAL_ERROR
    assert "cluster busy" in result.feedback


def test_deferrals_do_not_spend_the_failure_budget(monkeypatch, settings, backend):
    launcher = _Launcher(deferrals=scheduler.MAX_LAUNCH_RETRIES + 3, failures=2)
    _use_launcher(monkeypatch, launcher, settings)

    result = scheduler.schedule_submission.apply(
        args=[SUBMISSION_ID], kwargs={"deadline_seconds": 185}
    )

    assert result.get() == f"runner-{SUBMISSION_ID}"
    assert backend.results == []
    assert [s[1] for s in backend.statuses] == [Status.SCHEDULED]
    assert set(launcher.deadlines) == {185}


def test_the_backend_client_uses_the_per_submission_token():
    client = scheduler.backend_for(scheduler_settings(), SUBMISSION_ID)
    try:
        assert client.session.headers[RESULT_TOKEN_HEADER] == submission_token(
            SECRET, SUBMISSION_ID
        )
        assert SECRET not in client.session.headers.values()
    finally:
        client.close()
