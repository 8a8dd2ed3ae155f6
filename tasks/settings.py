"""The scheduler's settings: what the worker, the launchers and the reconciler read from the
environment (the seed's names). The webapp's settings extend these."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, Field, SecretStr, StringConstraints, model_validator

from runner_image.settings import EnvSettings, GradingSettings, long_random_secret

# A Kubernetes resource quantity, as a runner pod's requests and limits take it ("250m", "1Gi").
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")]

_QUANTITY_SUFFIXES = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity_value(quantity: str) -> Decimal:
    """What a Quantity amounts to ("1Gi" -> 1073741824), as kubernetes.utils.parse_quantity
    says (the unit tests compare the two). Not that function itself: importing the
    kubernetes package costs a backend worker about 35 MiB (docs/deploy.md, "Sizing")."""
    number = quantity.rstrip("kKMGTim")
    return Decimal(number) * _QUANTITY_SUFFIXES[quantity[len(number) :]]


SigningSecret = Annotated[SecretStr, AfterValidator(long_random_secret)]


class LauncherKind(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"


class BrokerSettings(EnvSettings):
    """What any Celery client needs, and all that Flower gets: the broker and the queue."""

    # Required, never defaulted: on a shared host redis://localhost:6379 is somebody else's
    # Redis, whose queue a worker would consume. `cloudemy dev` sets its own.
    redis_url: str = Field(pattern=r"^(redis|rediss|unix)://")
    queue_submissions: str = "queue:submissions"
    # Bulk regrades: a queue of their own, consumed by the same worker behind the
    # submissions (tasks.celery_app.REGRADE_PRIORITY).
    queue_regrades: str = "queue:regrades"


class FlowerSettings(BrokerSettings):
    """`cloudemy flower`: the broker, and where Flower listens. Without FLOWER_BASIC_AUTH
    (which Flower itself reads) it listens on 127.0.0.1 only, unless FLOWER_ADDRESS says."""

    flower_port: int = Field(default=5555, ge=1, le=65535)
    flower_address: str | None = None
    flower_basic_auth: SecretStr | None = None


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
    # The cluster's configuration file; None: the pod's service account in a cluster, else
    # ~/.kube/config.
    kubeconfig: str | None = None
    # How often `cloudemy reconcile` makes a pass (runner Jobs, then the backend's sweep).
    reconcile_interval_seconds: int = Field(default=30, ge=1)

    @property
    def runner_memory_limit_mib(self) -> int:
        return int(quantity_value(self.runner_memory_limit) / 2**20)

    @model_validator(mode="after")
    def _deadlines_in_order(self) -> Self:
        if self.runner_min_deadline_seconds > self.runner_max_deadline_seconds:
            raise ValueError(
                "RUNNER_MIN_DEADLINE_SECONDS must not exceed RUNNER_MAX_DEADLINE_SECONDS"
            )
        return self
