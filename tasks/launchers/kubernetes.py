"""KubernetesLauncher: one batch/v1 Job `runner-<submission id>` per submission.

Idempotent: the Job name is the submission's, so a redelivered task finds its Job (in the
list of Jobs in flight, or as a 409 AlreadyExists on create) and reports success instead of
launching twice.

Polite: before creating, it counts the runner Jobs still in flight and defers when there
are MAX_RUNNING_JOBS of them; a 429 is deferred by its Retry-After. Both raise
LaunchDeferred, every other failure (5xx, timeouts, refused connections, unexpected 4xx)
raises LaunchError. The retry policy lives in one place, the scheduler task (Celery's
retry with a countdown); the kubernetes client's own urllib3 retries are switched off.
The cap is soft: two launches racing at MAX_RUNNING_JOBS - 1 can both pass.

The result token: each Job gets its own, an HMAC of its submission id (see
runner_image.contract.tokens), delivered through a Secret `runner-<id>` that the Job owns, not as a
plain env value. A Job's spec is readable by anyone who may `get jobs` in the namespace
(the built-in `view` role, dashboards, `kubectl describe`, audit logs of the create call),
and with it they could post a forged grade for that submission before the runner does.
Secrets are excluded from `view`, can be encrypted at rest, and this one is garbage
collected with its Job through the owner reference. The cost is one more API call per
launch and RBAC `create` on secrets for the scheduler, which grants little new: whoever can
create Jobs can already mount any Secret in the namespace. The Job is created first (the
Secret needs its uid); until the Secret exists the kubelet holds the pod in
CreateContainerConfigError and retries, and a Secret that never comes ends in the Job's
deadline, which the reconciler reports.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from tasks.launchers.base import LaunchDeferred, Launcher, LaunchError, runner_name
from tasks.launchers.job_objects import (
    RUNNER_SELECTOR,
    TOKEN_KEY,
    finished_condition,
    runner_job,
    runner_token_secret,
)
from tasks.settings import SchedulerSettings

log = logging.getLogger(__name__)

RETRY_AFTER_DEFAULT = 5.0
RETRY_AFTER_MAX = 300.0


def kube_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """`kubeconfig` (KUBECONFIG) when it is set, else the pod's service account, else
    ~/.kube/config. urllib3 retries are off: the scheduler task owns the retry policy."""
    configuration = client.Configuration()
    try:
        if not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except (ConfigException, OSError) as exc:
        raise LaunchError(f"no Kubernetes configuration: {exc}") from exc
    configuration.retries = False
    return client.ApiClient(configuration)


def api_status(exc: ApiException) -> tuple[str, str]:
    """The (reason, message) of the Status object in an API error, as far as there is one."""
    try:
        body: dict[str, Any] = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return str(body.get("reason") or exc.reason or ""), str(body.get("message") or "")


def retry_after_seconds(headers: Any) -> float:
    """Retry-After as seconds (delta or HTTP date), within [1, RETRY_AFTER_MAX]."""
    raw = (headers or {}).get("Retry-After")
    seconds = RETRY_AFTER_DEFAULT
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            try:
                seconds = (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                seconds = RETRY_AFTER_DEFAULT
    return max(1.0, min(RETRY_AFTER_MAX, seconds))


def launch_failure(exc: ApiException, what: str) -> Exception:
    """What an API error during a launch means for the scheduler."""
    reason, message = api_status(exc)
    if exc.status == 429:
        countdown = retry_after_seconds(exc.headers)
        return LaunchDeferred(f"{what}: the API server is throttling (429)", countdown)
    return LaunchError(f"{what}: Kubernetes API answered {exc.status} {reason} {message}".strip())


class KubernetesLauncher(Launcher):
    def __init__(
        self,
        settings: SchedulerSettings,
        api_client: client.ApiClient | None = None,
    ) -> None:
        super().__init__(settings)
        self.api_client = api_client or kube_api_client(settings.kubeconfig)
        self.batch = client.BatchV1Api(self.api_client)
        self.core = client.CoreV1Api(self.api_client)
        self.namespace = settings.k8s_namespace
        self.timeout = settings.kube_request_timeout_seconds

    def launch(self, submission_id: str, deadline_seconds: int, attempt: int = 1) -> str:
        name = runner_name(submission_id, attempt)
        env = self.runner_env(submission_id)
        try:
            job = self._create_or_find_job(submission_id, env, deadline_seconds, attempt)
            if finished_condition(job) is None:
                self._ensure_token_secret(job, env[TOKEN_KEY])
        except ApiException as exc:
            raise launch_failure(exc, f"launching {name}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise LaunchError(f"launching {name}: Kubernetes API unreachable: {exc}") from exc
        return name

    def runner_jobs_in_flight(self) -> dict[str, client.V1Job]:
        """Runner Jobs neither complete nor failed, by name. `status.successful=0` lets the
        API server drop the succeeded ones before they cross the wire."""
        jobs = self.batch.list_namespaced_job(
            self.namespace,
            label_selector=RUNNER_SELECTOR,
            field_selector="status.successful=0",
            _request_timeout=self.timeout,
        )
        return {job.metadata.name: job for job in jobs.items if finished_condition(job) is None}

    def _create_or_find_job(
        self, submission_id: str, env: dict[str, str], deadline: int, attempt: int
    ) -> client.V1Job:
        name = runner_name(submission_id, attempt)
        in_flight = self.runner_jobs_in_flight()
        if name in in_flight:
            log.info("%s is already in flight; not launching it twice", name)
            return in_flight[name]
        if len(in_flight) >= self.settings.max_running_jobs:
            raise LaunchDeferred(
                f"{len(in_flight)} runner Jobs in flight "
                f"(MAX_RUNNING_JOBS={self.settings.max_running_jobs})",
                countdown=self.settings.launch_defer_seconds,
            )
        try:
            job = runner_job(self.settings, submission_id, env, deadline, attempt)
        except ValueError as exc:
            raise LaunchError(str(exc)) from exc
        try:
            created = self.batch.create_namespaced_job(
                self.namespace, job, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status != 409 or api_status(exc)[0] != "AlreadyExists":
                raise
            log.info("%s already exists: launched by an earlier delivery", name)
            return self.batch.read_namespaced_job(
                name, self.namespace, _request_timeout=self.timeout
            )
        log.info("created Job %s (activeDeadlineSeconds %d)", name, deadline)
        return created

    def _ensure_token_secret(self, job: client.V1Job, token: str) -> None:
        try:
            self.core.create_namespaced_secret(
                self.namespace, runner_token_secret(job, token), _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status != 409 or api_status(exc)[0] != "AlreadyExists":
                raise
