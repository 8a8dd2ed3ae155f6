"""The runner Job and its token Secret as typed `kubernetes.client` models.

Pure functions of their inputs (no API calls, no clock, no environment), in the manner of
KubeSpawner's objects.py: what the scheduler asks the cluster for can be read, unit-tested
and validated against the official schemas without a cluster.

The pod follows the "restricted" Pod Security Standard: a numeric non-root user, no
privilege escalation, every capability dropped, the RuntimeDefault seccomp profile, a
read-only root filesystem with an emptyDir for scratch, and no service account token (a
runner has no business with the Kubernetes API). The pod reads no Secret but the Job's own
(its one-submission token, also its key to the backend's LLM gateway): student code runs
in it under the runner's uid, so no long-lived key may be there. RUNNER_RUNTIME_CLASS
puts it under a sandboxing runtime such as gVisor.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from kubernetes import client

from tasks.launchers.base import runner_name
from tasks.settings import SchedulerSettings

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
SUBMISSION_LABEL = "cloudemy.io/submission-id"
# The grading round a runner Job grades (absent on Jobs from before rounds: round 0).
ROUND_LABEL = "cloudemy.io/round"
# Every runner Job (and its pod and Secret) carries these; the cap and the reconciler list by them.
RUNNER_SELECTOR = f"{NAME_LABEL}=cloudemy,{COMPONENT_LABEL}=runner"

TOKEN_KEY = "INTERNAL_RESULT_TOKEN"
LLM_KEY = "LLM_API_KEY"
ISOLATION_KEY = "RUNNER_REQUIRE_ISOLATION"
RUNNER_UIDS = range(200_000, 1_000_000)


def runner_uid(submission_id: str) -> int:
    """A uid of the submission's own. Process limits (RLIMIT_NPROC) count per uid across a
    whole node, so runners sharing the image's uid could starve each other of processes;
    with one uid each, a fork-happy submission only meets its own limit."""
    digest = int(hashlib.sha256(submission_id.encode()).hexdigest()[:12], 16)
    return RUNNER_UIDS.start + digest % len(RUNNER_UIDS)


SCRATCH_PATH = "/tmp"

# A Job name is also the value of the pod label `job-name`: a DNS label of at most 63 chars.
_SUBMISSION_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,54}[a-z0-9])?")


_JOB_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def runner_labels(submission_id: str, grading_round: int = 0) -> dict[str, str]:
    return {
        NAME_LABEL: "cloudemy",
        COMPONENT_LABEL: "runner",
        PART_OF_LABEL: "cloudemy",
        MANAGED_BY_LABEL: "cloudemy-scheduler",
        SUBMISSION_LABEL: submission_id,
        ROUND_LABEL: str(grading_round),
    }


def job_round(job: client.V1Job) -> int:
    """The grading round a runner Job grades: its label, 0 for Jobs labelled before rounds."""
    value = ((job.metadata and job.metadata.labels) or {}).get(ROUND_LABEL, "0")
    return int(value) if value.isdigit() else 0


def _env_var(name: str, value: str) -> client.V1EnvVar:
    return client.V1EnvVar(name=name, value=value)


def _secret_env(name: str, secret: str, key: str, optional: bool) -> client.V1EnvVar:
    return client.V1EnvVar(
        name=name,
        value_from=client.V1EnvVarSource(
            secret_key_ref=client.V1SecretKeySelector(name=secret, key=key, optional=optional)
        ),
    )


def runner_job(
    settings: SchedulerSettings,
    submission_id: str,
    env: Mapping[str, str],
    deadline_seconds: int,
    grading_round: int = 0,
    attempt: int = 1,
) -> client.V1Job:
    """The Job `runner-<id>` (`runner-<id>-r<n>` for regrade round n, labelled with its
    round; `-<attempt>` added for a fresh runner the sweep sent). `env` is the launcher's
    runner_env(); the result token in it is not copied into the Job: the container reads it
    from the Job's own Secret (same name).
    With LLM feedback on, `env` also has LLM_API_KEY, which is that same token (the runner
    calls the backend's LLM gateway with it): it comes from the same Secret. No other
    Secret is mounted, so no long-lived key is ever in a pod that runs student code."""
    if not _SUBMISSION_ID.fullmatch(submission_id):
        raise ValueError(f"submission id {submission_id!r} cannot name a Kubernetes Job")
    name = runner_name(submission_id, grading_round, attempt)
    if not _JOB_NAME.fullmatch(name):
        raise ValueError(f"{name!r} cannot name a Kubernetes Job (a DNS label of 63 characters)")
    labels = runner_labels(submission_id, grading_round)
    uid = runner_uid(submission_id)
    set_here = (TOKEN_KEY, LLM_KEY, ISOLATION_KEY)
    container_env = [_env_var(k, v) for k, v in env.items() if k not in set_here]
    container_env += [
        # A pod is the boundary in a cluster: never grade below strict there.
        _env_var(ISOLATION_KEY, "strict"),
        _secret_env(TOKEN_KEY, name, TOKEN_KEY, optional=False),
    ]
    if LLM_KEY in env:
        container_env.append(_secret_env(LLM_KEY, name, TOKEN_KEY, optional=False))
    container = client.V1Container(
        name="runner",
        image=settings.runner_image,
        image_pull_policy="IfNotPresent",
        env=container_env,
        resources=client.V1ResourceRequirements(
            requests={"cpu": settings.runner_cpu_request, "memory": settings.runner_memory_request},
            limits={"cpu": settings.runner_cpu_limit, "memory": settings.runner_memory_limit},
        ),
        security_context=client.V1SecurityContext(
            run_as_non_root=True,
            run_as_user=uid,
            run_as_group=uid,
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
        ),
        volume_mounts=[client.V1VolumeMount(name="scratch", mount_path=SCRATCH_PATH)],
    )
    pod = client.V1PodSpec(
        restart_policy="Never",
        automount_service_account_token=False,
        enable_service_links=False,
        # A sandboxing runtime (gVisor's `runsc`, Kata) when the cluster offers one: the pod
        # is the only boundary around student code there (RUNNER_RUNTIME_CLASS).
        runtime_class_name=settings.runner_runtime_class,
        termination_grace_period_seconds=10,
        security_context=client.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=uid,
            run_as_group=uid,
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
        ),
        containers=[container],
        volumes=[
            client.V1Volume(
                name="scratch",
                empty_dir=client.V1EmptyDirVolumeSource(size_limit=settings.runner_scratch_size),
            )
        ],
    )
    return client.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1JobSpec(
            backoff_limit=1,
            active_deadline_seconds=deadline_seconds,
            ttl_seconds_after_finished=settings.job_ttl_seconds,
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=dict(labels)), spec=pod
            ),
        ),
    )


def runner_token_secret(job: client.V1Job, token: str) -> client.V1Secret:
    """The Job's result token, in a Secret the Job owns: deleted with it by the garbage
    collector. `job` must be the stored Job (its uid is the owner reference)."""
    meta = job.metadata
    if not meta or not meta.uid:
        raise ValueError("the owner Job has no uid; pass the Job as the API server returned it")
    return client.V1Secret(
        api_version="v1",
        kind="Secret",
        type="Opaque",
        immutable=True,
        metadata=client.V1ObjectMeta(
            name=meta.name,
            labels=dict(meta.labels or {}),
            owner_references=[
                client.V1OwnerReference(
                    api_version="batch/v1", kind="Job", name=meta.name, uid=meta.uid
                )
            ],
        ),
        string_data={TOKEN_KEY: token},
    )


def finished_condition(job: client.V1Job) -> client.V1JobCondition | None:
    """The Job's true Complete or Failed condition, or None while it is still in flight."""
    for condition in (job.status and job.status.conditions) or ():
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition
    return None
