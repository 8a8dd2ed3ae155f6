"""The scheduler's settings: what the worker, the launchers and the reconciler read from the
environment (the seed's names). The webapp's settings extend these."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, Field, SecretStr, StringConstraints, model_validator

from runner_image.settings import EnvSettings, GradingSettings, long_random_secret

# A Kubernetes resource quantity, as a runner pod's requests and limits take it ("250m", "1Gi").
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")]


SigningSecret = Annotated[SecretStr, AfterValidator(long_random_secret)]


class LauncherKind(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"


class BrokerSettings(EnvSettings):
    """What any Celery client needs, and all that Flower gets: the broker and the queue."""

    redis_url: str = "redis://localhost:6379/0"
    queue_submissions: str = "queue:submissions"
    # Bulk regrades: a queue of their own, consumed by the same worker behind the
    # submissions (tasks.celery_app.REGRADE_PRIORITY).
    queue_regrades: str = "queue:regrades"


class SchedulerSettings(BrokerSettings, GradingSettings):
    """GradingSettings are passed on to runners, which read them leniently; here a bad value
    stops the scheduler at start-up."""

    # Signs every runner's one-submission token; never given to a runner itself.
    internal_result_token: SigningSecret
    backend_internal_url: str = "http://backend:8000/internal"
    runner_launcher: LauncherKind = LauncherKind.LOCAL
    # Runner deadlines (a Job's activeDeadlineSeconds, the local launcher's kill timer).
    runner_min_deadline_seconds: int = Field(default=120, ge=1)
    runner_max_deadline_seconds: int = Field(default=3600, ge=1)
    # KubernetesLauncher and the reconciler.
    k8s_namespace: str = "default"
    runner_image: str = "cloudemy/runner:latest"
    # A RuntimeClass for runner pods (e.g. gVisor's `runsc`); None: the cluster's default.
    runner_runtime_class: str | None = Field(
        default=None, pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
    )
    max_running_jobs: int = Field(default=50, ge=1)
    job_ttl_seconds: int = Field(default=3600, ge=0)
    runner_cpu_request: Quantity = "250m"
    runner_memory_request: Quantity = "256Mi"
    runner_cpu_limit: Quantity = "1"
    runner_memory_limit: Quantity = "1Gi"
    runner_scratch_size: Quantity = "512Mi"
    launch_defer_seconds: int = Field(default=15, ge=1)
    kube_request_timeout_seconds: int = Field(default=15, ge=1)
    # How long the API server keeps each watch of runner Jobs open (the launcher's cache);
    # each watch asks for a random time between this and twice this, as client-go does.
    kube_watch_timeout_seconds: int = Field(default=300, ge=1)
    reconcile_interval_seconds: int = Field(default=30, ge=1)

    @model_validator(mode="after")
    def _deadlines_in_order(self) -> Self:
        if self.runner_min_deadline_seconds > self.runner_max_deadline_seconds:
            raise ValueError(
                "RUNNER_MIN_DEADLINE_SECONDS must not exceed RUNNER_MAX_DEADLINE_SECONDS"
            )
        return self
