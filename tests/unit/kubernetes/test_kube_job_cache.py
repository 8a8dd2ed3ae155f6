"""The launcher's cache of runner Jobs in flight (job_cache.py), fed by hand as the LIST and
the WATCH would feed it, and the watch's backoff policy; the watch itself runs against the
batch/v1 stand-in in tests/integration/test_kubernetes_launcher.py."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from tenacity import RetryCallState, Retrying

from tasks.launchers.job_cache import (
    CREATED_GRACE_SECONDS,
    InFlightJobs,
    TrackedJob,
    is_finished,
)
from tasks.launchers.job_watch import BACKOFF_MAX_SECONDS, JobReflector


def job(name: str, version: int = 1, finished: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if finished:
        status = {"conditions": [{"type": finished, "status": "True"}]}
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": {"cloudemy.io/submission-id": name},
            "resourceVersion": str(version),
        },
        "status": status,
    }


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jobs(clock: Clock) -> InFlightJobs:
    return InFlightJobs(clock)


@pytest.mark.parametrize(
    ("conditions", "finished"),
    [
        ([], False),
        ([{"type": "Complete", "status": "True"}], True),
        ([{"type": "Failed", "status": "True"}], True),
        ([{"type": "Failed", "status": "False"}], False),
        ([{"type": "FailureTarget", "status": "True"}], False),
        ([{"type": "Suspended", "status": "True"}], False),
    ],
)
def test_is_finished(conditions: list[dict[str, str]], finished: bool) -> None:
    assert is_finished({"status": {"conditions": conditions}}) is finished
    assert is_finished({"metadata": {}}) is False


def test_a_list_counts_the_unfinished_jobs_and_sets_the_version(jobs) -> None:
    jobs.replace([job("a"), job("b"), job("c", finished="Failed")], "42", jobs.mark())

    assert jobs.count() == 2
    assert jobs.get("a") == TrackedJob("a", "uid-a", {"cloudemy.io/submission-id": "a"})
    assert jobs.get("c") is None
    assert jobs.resource_version == "42"


def test_watch_events_add_modify_and_remove(jobs) -> None:
    jobs.replace([job("a")], "10", jobs.mark())

    jobs.apply("ADDED", job("b", 11))
    assert (jobs.count(), jobs.resource_version) == (2, "11")
    jobs.apply("MODIFIED", job("b", 12))  # still running
    assert jobs.count() == 2
    jobs.apply("MODIFIED", job("a", 13, finished="Complete"))
    assert (jobs.count(), jobs.get("a")) == (1, None)
    jobs.apply("DELETED", job("b", 14))
    assert (jobs.count(), jobs.resource_version) == (0, "14")


def test_a_bookmark_only_moves_the_version(jobs) -> None:
    jobs.replace([job("a")], "10", jobs.mark())

    jobs.apply("BOOKMARK", {"kind": "Job", "metadata": {"resourceVersion": "99"}})

    assert (jobs.count(), jobs.resource_version) == (1, "99")


def test_a_job_created_here_counts_once_before_and_after_the_watch_reports_it(jobs) -> None:
    jobs.replace([], "10", jobs.mark())

    created = jobs.created(job("a", 11))
    assert created.uid == "uid-a"
    assert (jobs.count(), jobs.get("a")) == (1, created)
    jobs.apply("ADDED", job("a", 11))
    assert jobs.count() == 1
    jobs.apply("MODIFIED", job("a", 12, finished="Failed"))
    assert jobs.count() == 0


def test_creating_a_job_the_watch_already_reported_adds_nothing(jobs) -> None:
    jobs.replace([], "10", jobs.mark())
    jobs.apply("ADDED", job("a", 11))

    jobs.created(job("a", 11))

    assert jobs.count() == 1


def test_a_list_that_started_after_a_creation_settles_it(jobs) -> None:
    """A LIST sent after the create call returned shows the Job if it is still in flight:
    not shown means finished (and no event for it will come)."""
    jobs.replace([], "10", jobs.mark())
    jobs.created(job("gone", 11))
    jobs.created(job("running", 12))

    jobs.replace([job("running", 12)], "20", jobs.mark())

    assert (jobs.count(), jobs.get("gone")) == (1, None)
    assert jobs.get("running") is not None


def test_a_list_sent_before_a_creation_cannot_settle_it(jobs) -> None:
    jobs.replace([], "10", jobs.mark())
    mark = jobs.mark()  # the LIST goes out...
    jobs.created(job("a", 11))  # ...a launch creates a Job meanwhile...

    jobs.replace([], "10", mark)  # ...and the LIST's answer cannot show it

    assert jobs.count() == 1


def test_a_creation_the_watch_never_reports_stops_counting_after_the_grace(jobs, clock) -> None:
    jobs.replace([], "10", jobs.mark())
    jobs.created(job("a", 11))

    clock.now += CREATED_GRACE_SECONDS - 1
    assert jobs.count() == 1
    clock.now += 2
    assert (jobs.count(), jobs.get("a")) == (0, None)


def test_a_relist_replaces_what_the_watch_reported(jobs) -> None:
    jobs.replace([job("a"), job("b")], "10", jobs.mark())
    jobs.apply("ADDED", job("c", 11))

    jobs.replace([job("b"), job("d")], "30", jobs.mark())  # after a 410 Gone

    assert [name for name in "abcd" if jobs.get(name)] == ["b", "d"]
    assert jobs.resource_version == "30"


# --------------------------------------------------------------------------- backoff


def _failed_attempt(reflector: JobReflector, exc: Exception, attempt: int) -> RetryCallState:
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


@pytest.fixture
def reflector() -> JobReflector:
    batch = client.BatchV1Api(client.ApiClient(client.Configuration(host="http://127.0.0.1:9")))
    return JobReflector(batch, "ns", "a=b", "", request_timeout=1, watch_timeout=300)


def test_backoff_grows_to_its_cap(reflector) -> None:
    first = reflector._wait(_failed_attempt(reflector, OSError("refused"), 1))
    later = reflector._wait(_failed_attempt(reflector, OSError("refused"), 12))

    assert 0.5 <= first <= 1.0
    assert later == BACKOFF_MAX_SECONDS


def _api_error(status: int, retry_after: str | None) -> ApiException:
    exc = ApiException(status=status, reason="x")
    exc.headers = {"Retry-After": retry_after} if retry_after else {}
    return exc


@pytest.mark.parametrize(
    ("status", "retry_after", "attempt", "low", "high"),
    [
        (429, "7", 1, 7, 7),  # API Priority and Fairness: never sooner than asked
        (429, "30", 12, 30, 30),  # longer than the cap too
        (429, "2", 12, BACKOFF_MAX_SECONDS, BACKOFF_MAX_SECONDS),
        (503, "7", 1, 7, 7),  # as client-go honours it on a 5xx
        (503, None, 1, 0.5, 1.0),
        (403, "7", 1, 0.5, 1.0),
    ],
)
def test_backoff_is_never_shorter_than_a_retry_after(
    reflector, status: int, retry_after: str | None, attempt: int, low: float, high: float
) -> None:
    exc = _api_error(status, retry_after)

    assert low <= reflector._wait(_failed_attempt(reflector, exc, attempt)) <= high
