"""Reconcile runner Jobs with the backend, so that no submission waits forever.

A runner that dies before reporting cannot report that it died. Kubernetes can: a Job whose
pod failed twice (BackoffLimitExceeded) or that ran past activeDeadlineSeconds
(DeadlineExceeded) gets a Failed condition. Each pass lists the runner Jobs by label and
posts an `error` result, with the reason, for every failed one, under the token of that
submission's grading round (the Job's round label). The backend keeps the first result it
gets, so a runner that did report wins (409 or "not stored" both mean "already final"; a
409 `stale_round`, a Job of a round a regrade has since replaced, means the same).
Reported Jobs are remembered in Redis (`reconciled:<job uid>`) rather than deleted, so
their pods' logs stay for `kubectl logs` until ttlSecondsAfterFinished removes them.

How it runs, without Celery beat: `cloudemy reconcile` loops every
RECONCILE_INTERVAL_SECONDS (30 s) and is meant to be a second container of the scheduler
Pod, with the scheduler's ServiceAccount and settings (one replica, so one reconciler).
The Celery task `tasks.reconcile` runs a single pass on demand (`celery call
tasks.reconcile`, or from Flower) on the scheduler worker; `cloudemy reconcile --once`
does the same from a shell or a CronJob.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from runner_image.contract import (
    UNREPORTED_EXIT_CODE,
    UNREPORTED_KEY,
    CallbackError,
    InternalApiClient,
    Result,
    submission_token,
    sweep_token,
)
from tasks.celery_app import RECONCILE_TASK
from tasks.launchers.job_objects import (
    RUNNER_SELECTOR,
    SUBMISSION_LABEL,
    finished_condition,
    job_round,
)
from tasks.launchers.kubernetes import kube_api_client
from tasks.settings import LauncherKind, SchedulerSettings
from tasks.worker import celery_app, worker_settings

log = logging.getLogger(__name__)

REPORTED_KEY = "reconciled:{uid}"

# (submission id, grading round) -> a client holding that round's token.
BackendFactory = Callable[[str, int], InternalApiClient]


def failure_reason(job: client.V1Job, pods: list[client.V1Pod] | None = None) -> str | None:
    """Why a failed Job failed, in words for the student and the instructor; None unless
    the Job has failed."""
    condition = finished_condition(job)
    if condition is None or condition.type != "Failed":
        return None
    if condition.reason == "DeadlineExceeded":
        deadline = job.spec.active_deadline_seconds if job.spec else None
        within = f"within its deadline of {deadline} s" if deadline else "within its deadline"
        return f"the runner did not finish {within} (DeadlineExceeded)"
    detail = pod_failure_detail(pods or [])
    cause = condition.reason or "Failed"
    if detail:
        return f"the runner failed ({cause}; {detail})"
    message = f": {condition.message}" if condition.message else ""
    return f"the runner failed ({cause}{message})"


def pod_failure_detail(pods: list[client.V1Pod]) -> str | None:
    """How the last runner container ended, e.g. "OOMKilled, exit code 137"."""
    for pod in sorted(pods, key=lambda p: p.metadata.creation_timestamp or 0, reverse=True):
        for status in (pod.status and pod.status.container_statuses) or ():
            ended = status.state and status.state.terminated
            if ended and ended.exit_code:
                return f"{ended.reason or 'Error'}, exit code {ended.exit_code}"
        if pod.status and pod.status.reason:
            return pod.status.reason
    return None


def could_not_report(pods: list[client.V1Pod]) -> bool:
    """A runner container ended with UNREPORTED_EXIT_CODE: it could not reach the backend
    (or found no bundle), which an error result would turn into a lost submission; the
    backend's sweep gives it a fresh runner instead."""
    return any(
        status.state
        and status.state.terminated
        and status.state.terminated.exit_code == UNREPORTED_EXIT_CODE
        for pod in pods
        for status in (pod.status and pod.status.container_statuses) or ()
    )


@dataclass
class Reconciliation:
    """One pass, by Job name."""

    reported: list[str] = field(default_factory=list)
    already_final: list[str] = field(default_factory=list)
    not_reported: list[str] = field(default_factory=list)
    left_to_sweep: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(
        self,
        settings: SchedulerSettings,
        api_client: client.ApiClient | None = None,
        redis_client: redis.Redis | None = None,
        backend: BackendFactory | None = None,
    ) -> None:
        self.settings = settings
        self.api_client = api_client or kube_api_client(settings.kubeconfig)
        self.batch = client.BatchV1Api(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.redis = redis_client or redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=5
        )
        self.backend = backend or self._backend

    def _backend(self, submission_id: str, grading_round: int) -> InternalApiClient:
        token = submission_token(
            self.settings.internal_result_token.get_secret_value(), submission_id, grading_round
        )
        return InternalApiClient(self.settings.backend_internal_url, token, retries=2)

    def run_once(self) -> Reconciliation:
        """Raises ApiException / urllib3 errors when the Jobs cannot be listed."""
        namespace = self.settings.k8s_namespace
        timeout = self.settings.kube_request_timeout_seconds
        jobs = self.batch.list_namespaced_job(
            namespace, label_selector=RUNNER_SELECTOR, _request_timeout=timeout
        )
        outcome = Reconciliation()
        for job in jobs.items:
            condition = finished_condition(job)
            if condition is None or condition.type != "Failed" or self._already_reported(job):
                continue
            name = job.metadata.name
            submission_id = (job.metadata.labels or {}).get(SUBMISSION_LABEL) or name.removeprefix(
                "runner-"
            )
            pods = self._pods(name)
            if condition.reason != "DeadlineExceeded" and could_not_report(pods):
                log.info("%s could not report; its submission is left to the sweep", name)
                try:
                    self.redis.sadd(UNREPORTED_KEY, submission_id)
                except redis.RedisError as exc:  # the sweep still finds it once overdue
                    log.warning("cannot mark %s for a fresh runner: %s", submission_id, exc)
                outcome.left_to_sweep.append(name)
                self._remember(job)
                continue
            reason = failure_reason(job, pods) or "the runner Job failed"
            result = self._report(submission_id, job_round(job), reason)
            getattr(outcome, result).append(name)
            if result != "not_reported":
                self._remember(job)
        if outcome.reported or outcome.not_reported:
            log.info("reconciled runner Jobs: %s", outcome)
        return outcome

    def _pods(self, job_name: str) -> list[client.V1Pod]:
        """Best effort: the reason is still useful without the pods' exit codes."""
        try:
            return self.core.list_namespaced_pod(
                self.settings.k8s_namespace,
                label_selector=f"job-name={job_name}",
                _request_timeout=self.settings.kube_request_timeout_seconds,
            ).items
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            log.warning("cannot list the pods of %s: %s", job_name, exc)
            return []

    def _report(self, submission_id: str, grading_round: int, reason: str) -> str:
        backend = self.backend(submission_id, grading_round)
        try:
            answer = backend.post_result(submission_id, Result.error(reason, grading_round))
        except CallbackError as exc:
            if exc.status_code in (404, 409):
                return "already_final"
            log.warning("could not report the failed runner of %s: %s", submission_id, exc)
            return "not_reported"
        finally:
            backend.close()
        if answer.get("stored") is False:
            return "already_final"
        log.info("submission %s ends in error: %s", submission_id, reason)
        return "reported"

    def _already_reported(self, job: client.V1Job) -> bool:
        try:
            return bool(self.redis.exists(REPORTED_KEY.format(uid=job.metadata.uid)))
        except redis.RedisError:
            return False  # reporting twice is harmless; not reporting is not

    def _remember(self, job: client.V1Job) -> None:
        key = REPORTED_KEY.format(uid=job.metadata.uid)
        try:
            self.redis.set(key, job.metadata.name, ex=self.settings.job_ttl_seconds + 3600)
        except redis.RedisError as exc:
            log.warning("cannot remember that %s was reconciled: %s", job.metadata.name, exc)


def sweep_backend(settings: SchedulerSettings) -> dict[str, Any]:
    """The backend's own pass over MongoDB: re-send what a broker lost, end what is overdue."""
    token = sweep_token(settings.internal_result_token.get_secret_value())
    backend = InternalApiClient(settings.backend_internal_url, token, retries=2)
    try:
        report = backend.sweep()
    finally:
        backend.close()
    if any(report.values()):
        log.info("backend sweep: %s", report)
    return report


def run_forever(settings: SchedulerSettings, interval: float, stop: threading.Event) -> None:
    """`cloudemy reconcile`: a pass every `interval` seconds until `stop` is set, over runner
    Jobs (Kubernetes only) and then the backend's sweep; a pass that fails (API server or
    backend away) is logged and the next one tries again."""
    kubernetes = settings.runner_launcher == LauncherKind.KUBERNETES
    reconciler = Reconciler(settings) if kubernetes else None
    log.info("reconciling every %.0f s (runner Jobs: %s)", interval, reconciler is not None)
    while not stop.is_set():
        try:
            if reconciler is not None:
                reconciler.run_once()
        except (ApiException, urllib3.exceptions.HTTPError, redis.RedisError) as exc:
            log.warning("reconcile pass failed: %s", exc)
        try:
            sweep_backend(settings)
        except CallbackError as exc:
            log.warning("backend sweep failed: %s", exc)
        stop.wait(interval)


@celery_app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile() -> dict[str, list[str]]:
    """One pass on the scheduler worker, on demand (no beat needed)."""
    outcome = Reconciler(worker_settings()).run_once()
    return {
        "reported": outcome.reported,
        "already_final": outcome.already_final,
        "not_reported": outcome.not_reported,
    }
