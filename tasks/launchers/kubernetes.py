"""KubernetesLauncher: one batch/v1 Job `runner-<submission id>` per submission (and
`runner-<id>-r<n>` per regrade round n).

A launch costs the same API calls however many Jobs are in flight: a create for the Job
and one for its token Secret. What is in flight comes from a watch-fed cache
(job_watch.py, job_cache.py: LIST once per process, then WATCH), not from a LIST per
launch, which cost the API server a list of every Job in flight for every launch.

Idempotent: the Job name is the submission's and round's, so a redelivered task finds its
Job (in the cache of Jobs in flight, or as a 409 AlreadyExists on create) and reports
success instead of launching twice; a regrade round is a new name, so a new Job.

Polite: it defers when MAX_RUNNING_JOBS runner Jobs are in flight (those the watch reports,
plus those this process created that the watch has not reported yet; a bulk regrade's
low-priority launch already at half of them, so regrades never take the slots deadline
traffic needs); a 429 (API Priority
and Fairness) is deferred by its Retry-After, and every launch of this process during that
time is deferred without a request. Both raise LaunchDeferred; every other failure (5xx,
timeouts, refused connections, unexpected 4xx, a cache that could not be filled) raises
LaunchError. The retry policy of a launch lives in one place, the scheduler task (Celery's
retry with a countdown); the kubernetes client's own urllib3 retries are switched off. The
cap is soft: launches racing in several processes, or a watch that lags, can pass it by a
few.

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
import math
import os
import threading
import time
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from tasks.launchers.base import LaunchDeferred, Launcher, LaunchError, runner_name
from tasks.launchers.job_cache import TrackedJob, is_finished
from tasks.launchers.job_objects import RUNNER_SELECTOR, TOKEN_KEY, runner_job, runner_token_secret
from tasks.launchers.job_watch import JobReflector
from tasks.launchers.kube_answers import api_status, is_already_exists, retry_after_seconds
from tasks.settings import SchedulerSettings

log = logging.getLogger(__name__)

# Finished Jobs the API server need not send at all: succeeded ones (failed ones still come,
# with their Failed condition, and the cache drops them).
IN_FLIGHT_FIELDS = "status.successful=0"


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


def read_json(response: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    """The body of a call made with `_preload_content=False`, and its connection back to the
    pool: an answer that is not read and released costs a new connection on the next call."""
    try:
        return json.loads(response.data)
    finally:
        response.release_conn()


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
        self.reflector = JobReflector(
            self.batch,
            self.namespace,
            label_selector=RUNNER_SELECTOR,
            field_selector=IN_FLIGHT_FIELDS,
            request_timeout=self.timeout,
            watch_timeout=settings.kube_watch_timeout_seconds,
        )
        self._throttle_lock = threading.Lock()
        self._throttled_until = 0.0  # time.monotonic() before which no launch is tried

    def close(self) -> None:
        """Stop the watch (tests, shutdown); a later launch starts it again."""
        self.reflector.stop()

    def warm_up(self) -> None:
        self.reflector.start()

    def launch(
        self,
        submission_id: str,
        deadline_seconds: int,
        grading_round: int = 0,
        low_priority: bool = False,
        attempt: int = 1,
    ) -> str:
        name = runner_name(submission_id, grading_round, attempt)
        self._respect_throttling(name)
        env = self.runner_env(submission_id, grading_round)
        try:
            job = self._create_or_find_job(
                submission_id, env, deadline_seconds, grading_round, low_priority, attempt
            )
            if job is not None:
                self._ensure_token_secret(job, env[TOKEN_KEY])
        except ApiException as exc:
            failure = launch_failure(exc, f"launching {name}")
            if isinstance(failure, LaunchDeferred):
                self._throttle(failure.countdown)
            raise failure from exc
        except urllib3.exceptions.HTTPError as exc:
            raise LaunchError(f"launching {name}: Kubernetes API unreachable: {exc}") from exc
        except TimeoutError as exc:
            raise LaunchError(f"launching {name}: {exc}") from exc
        return name

    def _respect_throttling(self, name: str) -> None:
        with self._throttle_lock:
            left = self._throttled_until - time.monotonic()
        if left > 0:
            raise LaunchDeferred(
                f"launching {name}: the API server asked us to slow down (429)",
                countdown=math.ceil(left),
            )

    def _throttle(self, seconds: float) -> None:
        with self._throttle_lock:
            self._throttled_until = max(self._throttled_until, time.monotonic() + seconds)

    def _create_or_find_job(
        self,
        submission_id: str,
        env: dict[str, str],
        deadline: int,
        grading_round: int = 0,
        low_priority: bool = False,
        attempt: int = 1,
    ) -> TrackedJob | None:
        """The Job in flight for this submission and round (created now, or found), or None
        when it exists and has finished."""
        name = runner_name(submission_id, grading_round, attempt)
        # The watch's first LIST may take two request timeouts (connect, then read).
        jobs = self.reflector.synced_jobs(timeout=2 * self.timeout + 1)
        in_flight = jobs.get(name)
        if in_flight is not None:
            log.info("%s is already in flight; not launching it twice", name)
            return in_flight
        running = jobs.count()
        cap = self.settings.max_running_jobs
        if low_priority:
            cap = max(1, cap // 2)
        if running >= cap:
            raise LaunchDeferred(
                f"{running} runner Jobs in flight "
                f"(MAX_RUNNING_JOBS={self.settings.max_running_jobs}"
                f"{', half of it for bulk regrades' if low_priority else ''})",
                countdown=self.settings.launch_defer_seconds,
            )
        try:
            job = runner_job(self.settings, submission_id, env, deadline, grading_round, attempt)
        except ValueError as exc:
            raise LaunchError(str(exc)) from exc
        try:
            # Raw JSON answers: the launcher needs three fields, not a deserialized model.
            answer = self.batch.create_namespaced_job(
                self.namespace, job, _request_timeout=self.timeout, _preload_content=False
            )
        except ApiException as exc:
            if not is_already_exists(exc):
                raise
            log.info("%s already exists: launched by an earlier delivery", name)
            found = read_json(
                self.batch.read_namespaced_job(
                    name, self.namespace, _request_timeout=self.timeout, _preload_content=False
                )
            )
            return None if is_finished(found) else jobs.created(found)
        log.info("created Job %s (activeDeadlineSeconds %d)", name, deadline)
        return jobs.created(read_json(answer))

    def _ensure_token_secret(self, job: TrackedJob, token: str) -> None:
        owner = client.V1Job(
            metadata=client.V1ObjectMeta(name=job.name, uid=job.uid, labels=dict(job.labels))
        )
        try:
            answer = self.core.create_namespaced_secret(
                self.namespace,
                runner_token_secret(owner, token),
                _request_timeout=self.timeout,
                _preload_content=False,
            )
            answer.drain_conn()
            answer.release_conn()
        except ApiException as exc:
            if not is_already_exists(exc):
                raise
