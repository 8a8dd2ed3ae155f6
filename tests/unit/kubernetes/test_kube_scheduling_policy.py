"""The retry policy around a launch, in one place: failures are retried with backoff a
bounded number of times, deferrals (the in-flight cap, 429) as long as it takes. Eager
Celery here; a real worker runs the same task in tests/integration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from celery.exceptions import Retry
from kubernetes.client.exceptions import ApiException

import tasks.scheduler as scheduler
from runner_image.contract import Result, Status
from tasks.celery_app import REGRADE_PRIORITY
from tasks.launchers import LaunchDeferred, LaunchError, make_launcher
from tasks.launchers.kube_answers import api_status, retry_after_seconds
from tasks.launchers.kubernetes import launch_failure
from tasks.settings import SchedulerSettings
from tests.eager_worker import run_worker_on, scheduler_settings

SUBMISSION_ID = "65a0000000000000000000aa"
DEADLINE = 185


@dataclass
class ScriptedLauncher:
    """Raises the scripted outcomes in order, then launches."""

    outcomes: list[Exception]
    calls: int = 0

    def launch(
        self,
        submission_id: str,
        deadline_seconds: int,
        grading_round: int = 0,
        low_priority: bool = False,
        attempt: int = 1,
    ) -> str:
        self.calls += 1
        assert deadline_seconds == DEADLINE
        if self.outcomes:
            raise self.outcomes.pop(0)
        return f"runner-{submission_id}"


@dataclass
class RecordingBackend:
    posts: list[tuple[str, Any]] = field(default_factory=list)

    def post_status(self, submission_id: str, status: Status, job_name: str | None = None):
        self.posts.append(("status", (status, job_name)))
        return {"changed": True}

    def post_result(self, submission_id: str, result: Result):
        self.posts.append(("result", result))
        return {"stored": True}

    def close(self) -> None:
        pass


@pytest.fixture
def settings() -> SchedulerSettings:
    configured = scheduler_settings()
    run_worker_on(configured)
    return configured


@pytest.fixture
def run(monkeypatch, settings):
    backend = RecordingBackend()
    countdowns: list[float] = []
    original_retry = scheduler.schedule_submission.retry

    def recording_retry(*args: Any, **kwargs: Any):
        countdowns.append(kwargs["countdown"])
        return original_retry(*args, **kwargs)

    monkeypatch.setattr(scheduler, "backend_for", lambda settings, sid, grading_round=0: backend)
    monkeypatch.setattr(scheduler.schedule_submission, "retry", recording_retry)

    def run_with(launcher: ScriptedLauncher):
        monkeypatch.setattr(scheduler, "make_launcher", lambda settings: launcher)
        result = scheduler.schedule_submission.apply(
            args=[SUBMISSION_ID], kwargs={"deadline_seconds": DEADLINE}
        )
        return result, backend, countdowns

    return run_with


def test_deferrals_do_not_spend_the_failure_budget(run) -> None:
    deferrals = [LaunchDeferred("cap", countdown=15) for _ in range(12)]
    failures = [LaunchError("500") for _ in range(scheduler.MAX_LAUNCH_RETRIES)]
    launcher = ScriptedLauncher(deferrals + failures)

    result, backend, countdowns = run(launcher)

    assert result.get() == f"runner-{SUBMISSION_ID}"
    assert backend.posts == [("status", ("scheduled", f"runner-{SUBMISSION_ID}"))]
    assert countdowns == [15] * 12 + [1, 2, 4, 8, 16]


def test_failures_end_in_error_after_the_budget(run) -> None:
    launcher = ScriptedLauncher([LaunchError("boom")] * (scheduler.MAX_LAUNCH_RETRIES + 1))

    result, backend, _ = run(launcher)

    assert result.get() is None
    assert launcher.calls == scheduler.MAX_LAUNCH_RETRIES + 1
    ((kind, body),) = backend.posts
    assert kind == "result" and body.status == Status.ERROR
    assert "no runner could be started (boom)" in body.metrics["error"]


def test_a_429_retries_after_its_retry_after(run) -> None:
    throttled = ApiException(status=429, reason="Too Many Requests")
    throttled.headers = {"Retry-After": "7"}
    launcher = ScriptedLauncher([launch_failure(throttled, "launching")])

    result, _, countdowns = run(launcher)

    assert result.get() == f"runner-{SUBMISSION_ID}"
    assert countdowns == [7]


def test_a_retry_is_a_celery_retry_not_a_failure(monkeypatch, settings) -> None:
    """In a worker the retry is re-published with its countdown (Retry), not run again now,
    and keeps the deadline the task was sent with."""
    monkeypatch.setattr(
        scheduler, "make_launcher", lambda s: ScriptedLauncher([LaunchDeferred("cap", 9)])
    )
    monkeypatch.setattr(scheduler, "backend_for", lambda s, sid, n=0: RecordingBackend())
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(
        scheduler.schedule_submission,
        "apply_async",
        lambda args=None, kwargs=None, **options: sent.append(
            {"args": args, "kwargs": kwargs, **options}
        ),
    )
    scheduler.schedule_submission.push_request(
        id="t-1",
        args=[SUBMISSION_ID],
        kwargs={"deadline_seconds": DEADLINE},
        retries=0,
        is_eager=False,
        called_directly=False,
    )
    try:
        with pytest.raises(Retry):
            scheduler.schedule_submission.run(SUBMISSION_ID, deadline_seconds=DEADLINE)
    finally:
        scheduler.schedule_submission.pop_request()
    ((message,),) = [sent]
    assert message["countdown"] == 9
    assert list(message["args"]) == [SUBMISSION_ID]
    assert message["kwargs"] == {
        "deadline_seconds": DEADLINE,
        "failures": 0,
        "grading_round": 0,
        "low_priority": False,
        "attempt": 1,
    }
    assert message["queue"] == settings.queue_submissions
    assert "priority" not in message


def test_a_deferred_bulk_regrade_stays_on_the_low_priority_queue(monkeypatch, settings) -> None:
    """A retried bulk regrade goes back behind the submissions, with its round."""
    monkeypatch.setattr(
        scheduler, "make_launcher", lambda s: ScriptedLauncher([LaunchDeferred("cap", 9)])
    )
    monkeypatch.setattr(scheduler, "backend_for", lambda s, sid, n=0: RecordingBackend())
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(
        scheduler.schedule_submission,
        "apply_async",
        lambda args=None, kwargs=None, **options: sent.append({"kwargs": kwargs, **options}),
    )
    kwargs = {"deadline_seconds": DEADLINE, "grading_round": 3, "low_priority": True}
    scheduler.schedule_submission.push_request(
        id="t-2",
        args=[SUBMISSION_ID],
        kwargs=kwargs,
        retries=0,
        is_eager=False,
        called_directly=False,
    )
    try:
        with pytest.raises(Retry):
            scheduler.schedule_submission.run(SUBMISSION_ID, **kwargs)
    finally:
        scheduler.schedule_submission.pop_request()
    ((message,),) = [sent]
    assert message["kwargs"] == kwargs | {"failures": 0, "attempt": 1}
    assert message["queue"] == settings.queue_regrades == "queue:regrades"
    assert message["priority"] == REGRADE_PRIORITY


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, 5.0), ("3", 3.0), ("0", 1.0), ("100000", 300.0), ("soon", 5.0)],
)
def test_retry_after_seconds(header: str | None, expected: float) -> None:
    headers = {"Retry-After": header} if header is not None else {}
    assert retry_after_seconds(headers) == expected


def test_retry_after_as_an_http_date() -> None:
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 1.0


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, LaunchDeferred), (500, LaunchError), (503, LaunchError), (403, LaunchError)],
)
def test_api_errors_map_to_defer_or_fail(status: int, kind: type) -> None:
    exc = ApiException(status=status, reason="x")
    exc.body = '{"kind": "Status", "reason": "Forbidden", "message": "jobs is forbidden"}'

    failure = launch_failure(exc, "launching runner-x")

    assert type(failure) is kind
    if kind is LaunchError:
        assert "jobs is forbidden" in str(failure) and str(status) in str(failure)


def test_api_status_tolerates_a_body_that_is_not_a_status() -> None:
    exc = ApiException(status=502, reason="Bad Gateway")
    exc.body = "<html>bad gateway</html>"

    assert api_status(exc) == ("Bad Gateway", "")


def test_make_launcher_without_any_kubernetes_configuration_is_a_launch_error(
    monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    settings = scheduler_settings(runner_launcher="kubernetes")

    with pytest.raises(LaunchError, match="Kubernetes configuration"):
        make_launcher(settings)
