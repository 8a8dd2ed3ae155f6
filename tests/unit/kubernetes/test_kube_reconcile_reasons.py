"""The words a failed runner Job leaves on its submission."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kubernetes import client

from tasks.reconcile import could_not_report, failure_reason, pod_failure_detail


def _job(reason: str | None, kind: str = "Failed", message: str | None = None) -> client.V1Job:
    return client.V1Job(
        spec=client.V1JobSpec(active_deadline_seconds=185, template=client.V1PodTemplateSpec()),
        status=client.V1JobStatus(
            conditions=[
                client.V1JobCondition(type=kind, status="True", reason=reason, message=message)
            ]
        ),
    )


def _pod(reason: str | None, exit_code: int, created: int = 0) -> client.V1Pod:
    terminated = client.V1ContainerStateTerminated(exit_code=exit_code, reason=reason)
    return client.V1Pod(
        metadata=client.V1ObjectMeta(creation_timestamp=datetime.fromtimestamp(created, UTC)),
        status=client.V1PodStatus(
            container_statuses=[
                client.V1ContainerStatus(
                    name="runner",
                    image="i",
                    image_id="",
                    ready=False,
                    restart_count=0,
                    state=client.V1ContainerState(terminated=terminated),
                )
            ]
        ),
    )


def test_a_deadline_names_the_deadline() -> None:
    assert failure_reason(_job("DeadlineExceeded")) == (
        "the runner did not finish within its deadline of 185 s (DeadlineExceeded)"
    )


def test_a_crash_names_how_the_last_pod_ended() -> None:
    pods = [_pod("Error", 1, created=1), _pod("OOMKilled", 137, created=2)]

    assert failure_reason(_job("BackoffLimitExceeded"), pods) == (
        "the runner failed (BackoffLimitExceeded; OOMKilled, exit code 137)"
    )


def test_without_pods_the_condition_message_is_the_reason() -> None:
    job = _job("BackoffLimitExceeded", message="Job has reached the specified backoff limit")

    assert failure_reason(job, []) == (
        "the runner failed (BackoffLimitExceeded: Job has reached the specified backoff limit)"
    )


@pytest.mark.parametrize("kind", ["Complete", "Suspended"])
def test_a_job_that_did_not_fail_has_no_reason(kind: str) -> None:
    assert failure_reason(_job(None, kind=kind)) is None
    assert failure_reason(client.V1Job(status=client.V1JobStatus())) is None


def test_pod_detail_skips_clean_exits_and_falls_back_to_the_pod_reason() -> None:
    evicted = client.V1Pod(
        metadata=client.V1ObjectMeta(), status=client.V1PodStatus(reason="Evicted")
    )

    assert pod_failure_detail([_pod("Completed", 0)]) is None
    assert pod_failure_detail([evicted]) == "Evicted"


def test_a_runner_that_could_not_report_is_told_apart_from_one_that_failed() -> None:
    """Exit code 75 (the backend unreachable, or no bundle): the reconciler leaves the
    submission to the backend's sweep, which sends a fresh runner, instead of an error."""
    assert could_not_report([_pod("Error", 1, created=1), _pod("Error", 75, created=2)])
    assert not could_not_report([_pod("Error", 1), _pod("OOMKilled", 137)])
    assert not could_not_report([])
