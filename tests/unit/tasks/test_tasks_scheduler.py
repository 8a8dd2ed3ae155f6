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
    CallbackError,
    Result,
    Status,
    Verdict,
    submission_token,
)
from tasks.launchers import LaunchDeferred, LaunchError
from tasks.launchers.base import runner_name
from tasks.settings import SchedulerSettings
from tests.eager_worker import SECRET, run_worker_on, scheduler_settings

SUBMISSION_ID = "65a0000000000000000000cc"
MAX_DEADLINE = 2400


@dataclass
class _Backend:
    statuses: list[tuple[str, Status, str | None]] = field(default_factory=list)
    results: list[tuple[str, Result]] = field(default_factory=list)
    closed: bool = False
    status_error: CallbackError | None = None
    rounds: list[int] = field(default_factory=list)  # of every client made

    def post_status(self, submission_id: str, status: Status, job_name: str | None = None):
        if self.status_error is not None:
            raise self.status_error
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
    rounds: list[tuple[int, bool]] = field(default_factory=list)

    def launch(
        self,
        submission_id: str,
        deadline_seconds: int,
        grading_round: int = 0,
        low_priority: bool = False,
        attempt: int = 1,
    ) -> str:
        self.launches += 1
        self.deadlines.append(deadline_seconds)
        self.rounds.append((grading_round, low_priority))
        if self.launches <= self.deferrals:
            raise LaunchDeferred("at MAX_RUNNING_JOBS", countdown=1)
        if self.launches <= self.deferrals + self.failures:
            raise LaunchError("cluster busy")
        return runner_name(submission_id, grading_round)


@pytest.fixture
def settings() -> SchedulerSettings:
    configured = scheduler_settings(runner_max_deadline_seconds=MAX_DEADLINE)
    run_worker_on(configured)
    return configured


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch, settings: SchedulerSettings) -> Iterator[_Backend]:
    fake = _Backend()
    seen: list[tuple[SchedulerSettings, str, int]] = []

    def backend_for(given: SchedulerSettings, submission_id: str, grading_round: int) -> _Backend:
        seen.append((given, submission_id, grading_round))
        fake.rounds.append(grading_round)
        return fake

    monkeypatch.setattr(scheduler, "backend_for", backend_for)
    yield fake
    assert all(given is settings and sid == SUBMISSION_ID for given, sid, _ in seen)


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


# --- grading rounds -----------------------------------------------------------------------


def test_a_regrade_round_reaches_the_launcher_and_the_backend_token(monkeypatch, settings, backend):
    launcher = _Launcher(failures=1)
    _use_launcher(monkeypatch, launcher, settings)

    result = scheduler.schedule_submission.apply(
        args=[SUBMISSION_ID],
        kwargs={"deadline_seconds": 185, "grading_round": 2, "low_priority": True},
    )

    assert result.get() == f"runner-{SUBMISSION_ID}-r2"
    assert launcher.rounds == [(2, True), (2, True)]  # the retry keeps round and priority
    assert set(backend.rounds) == {2}
    assert backend.statuses == [(SUBMISSION_ID, Status.SCHEDULED, f"runner-{SUBMISSION_ID}-r2")]


def test_a_task_from_before_rounds_is_round_0(monkeypatch, settings, backend):
    launcher = _Launcher()
    _use_launcher(monkeypatch, launcher, settings)

    scheduler.schedule_submission.apply(args=[SUBMISSION_ID], kwargs={"deadline_seconds": 185})

    assert launcher.rounds == [(0, False)]
    assert set(backend.rounds) == {0}


def test_giving_up_on_a_regrade_reports_the_error_for_its_round(monkeypatch, settings, backend):
    _use_launcher(monkeypatch, _Launcher(failures=100), settings)

    scheduler.schedule_submission.apply(args=[SUBMISSION_ID], kwargs={"grading_round": 4})

    [(_, result)] = backend.results
    assert result.status == Status.ERROR and result.round == 4


def test_a_round_the_backend_calls_stale_ends_the_task_quietly(monkeypatch, settings, backend):
    """A redelivered task of a round a regrade replaced: 409, nothing to retry."""
    _use_launcher(monkeypatch, _Launcher(), settings)
    backend.status_error = CallbackError("409 stale_round", status_code=409)

    result = scheduler.schedule_submission.apply(args=[SUBMISSION_ID], kwargs={"grading_round": 1})

    assert result.successful() and result.get() is None


def test_the_backend_client_of_a_round_uses_that_rounds_token():
    client = scheduler.backend_for(scheduler_settings(), SUBMISSION_ID, 3)
    try:
        token = client.session.headers[RESULT_TOKEN_HEADER]
        assert token == submission_token(SECRET, SUBMISSION_ID, 3)
        assert token != submission_token(SECRET, SUBMISSION_ID)
    finally:
        client.close()
