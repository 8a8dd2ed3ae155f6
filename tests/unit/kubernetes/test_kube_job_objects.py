"""The runner Job as built, before any API call: the seed's fields, the restricted pod
security profile, the env, the token Secret, and strict validation against the official
Kubernetes schemas."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from kubernetes import client

from runner_image.contract import submission_token
from runner_image.grading.grader import COMPILE_TIME_LIMIT_MS
from runner_image.settings import LLM_BUDGET_CAP_SECONDS, ConfigError
from tasks.launchers.base import Launcher, runner_name
from tasks.launchers.deadline import (
    COMPILE_BUDGET_SECONDS,
    LLM_BUDGET_SECONDS,
    runner_deadline_seconds,
)
from tasks.launchers.job_objects import (
    ROUND_LABEL,
    RUNNER_SELECTOR,
    RUNNER_UIDS,
    SUBMISSION_LABEL,
    finished_condition,
    job_round,
    runner_job,
    runner_token_secret,
    runner_uid,
)
from tasks.settings import SchedulerSettings

SECRET = "s" * 40
REDIS_URL = "redis://redis:6379/0"
SUBMISSION_ID = "65a0000000000000000000aa"
NAME = f"runner-{SUBMISSION_ID}"
# The oldest schema set every allowed kubernetes-validate (>=1.31) ships, and the newest here.
SCHEMA_VERSIONS = sorted({"1.31.0", kubernetes_validate.latest_version()})


class _Launcher(Launcher):
    def warm_up(self) -> None:
        pass

    def launch(self, submission_id: str, deadline_seconds: int) -> str:
        return runner_name(submission_id)


def _settings(**overrides: Any) -> SchedulerSettings:
    env = {
        "INTERNAL_RESULT_TOKEN": SECRET,
        "REDIS_URL": REDIS_URL,
        "RUNNER_IMAGE": "registry.example/cloudemy/runner:1",
    }
    return SchedulerSettings.from_env(env, **overrides)


def _job(settings: SchedulerSettings | None = None, deadline: int = 120) -> dict[str, Any]:
    settings = settings or _settings()
    env = _Launcher(settings).runner_env(SUBMISSION_ID)
    job = runner_job(settings, SUBMISSION_ID, env, deadline)
    return client.ApiClient().sanitize_for_serialization(job)


def _env(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_the_job_and_its_secret_are_valid_in_strict_mode(version: str) -> None:
    job = _job()
    owned = client.ApiClient().sanitize_for_serialization(
        runner_token_secret(_stored(job), submission_token(SECRET, SUBMISSION_ID))
    )

    kubernetes_validate.validate(job, version, strict=True)
    kubernetes_validate.validate(owned, version, strict=True)


def _stored(job: dict[str, Any]) -> client.V1Job:
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=job["metadata"]["name"], uid="u-1", labels={"a": "b"})
    )


def test_the_seed_fields() -> None:
    job = _job()
    spec = job["spec"]
    pod = spec["template"]["spec"]

    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == NAME
    assert pod["restartPolicy"] == "Never"
    assert spec["backoffLimit"] == 1
    assert spec["activeDeadlineSeconds"] == 120
    assert spec["ttlSecondsAfterFinished"] == 3600
    assert [c["image"] for c in pod["containers"]] == ["registry.example/cloudemy/runner:1"]


def test_labels_on_the_job_and_its_pods_match_the_runner_selector() -> None:
    job = _job()
    expected = {
        "app.kubernetes.io/name": "cloudemy",
        "app.kubernetes.io/component": "runner",
        "cloudemy.io/submission-id": SUBMISSION_ID,
    }
    selector = dict(term.split("=") for term in RUNNER_SELECTOR.split(","))

    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert expected.items() <= labels.items()
        assert selector.items() <= labels.items()


def test_the_pod_meets_the_restricted_security_profile() -> None:
    pod = _job()["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    context = container["securityContext"]

    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    uid = runner_uid(SUBMISSION_ID)
    assert pod["securityContext"]["runAsUser"] == uid
    assert uid in RUNNER_UIDS and uid != runner_uid("65a0000000000000000000ab")
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["runAsNonRoot"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["readOnlyRootFilesystem"] is True
    assert container["volumeMounts"] == [{"name": "scratch", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "scratch", "emptyDir": {"sizeLimit": "512Mi"}}]
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


def test_resources_come_from_the_settings() -> None:
    settings = _settings(runner_cpu_limit="2", runner_memory_request="300Mi")
    (container,) = _job(settings)["spec"]["template"]["spec"]["containers"]

    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "300Mi"},
        "limits": {"cpu": "2", "memory": "1Gi"},
    }


def test_env_per_the_seed_with_the_token_from_the_jobs_own_secret() -> None:
    env = _env(_job())

    assert env["SUBMISSION_ID"] == {"name": "SUBMISSION_ID", "value": SUBMISSION_ID}
    assert env["REDIS_URL"]["value"] == REDIS_URL
    assert env["BACKEND_INTERNAL_URL"]["value"] == "http://backend:8000/internal"
    assert env["LLM_MODEL"]["value"] == "gpt-4o-mini"
    assert env["RUNNER_REQUIRE_ISOLATION"]["value"] == "strict"
    assert "LLM_BASE_URL" not in env
    assert env["INTERNAL_RESULT_TOKEN"] == {
        "name": "INTERNAL_RESULT_TOKEN",
        "valueFrom": {
            "secretKeyRef": {"name": NAME, "key": "INTERNAL_RESULT_TOKEN", "optional": False}
        },
    }
    # LLM feedback is off (no LLM_API_KEY on the scheduler): the runner is told nothing.
    assert "LLM_API_KEY" not in env


def _secret_refs(job: dict[str, Any]) -> set[tuple[str, str]]:
    refs = set()
    for variable in _env(job).values():
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            refs.add((ref["name"], ref["key"]))
    return refs


def test_with_the_llm_on_the_runner_calls_the_gateway_with_its_own_token() -> None:
    settings = _settings(llm_api_key="sk-provider-key", llm_base_url="https://llm.example/v1")
    job = _job(settings)
    env = _env(job)

    assert env["LLM_BASE_URL"]["value"] == f"http://backend:8000/internal/llm/{SUBMISSION_ID}/v1"
    # The same token as the result callback's, from the Job's own Secret.
    assert env["LLM_API_KEY"] == {
        "name": "LLM_API_KEY",
        "valueFrom": {
            "secretKeyRef": {"name": NAME, "key": "INTERNAL_RESULT_TOKEN", "optional": False}
        },
    }
    assert _secret_refs(job) == {(NAME, "INTERNAL_RESULT_TOKEN")}


@pytest.mark.parametrize("llm_api_key", [None, "sk-provider-key"])
def test_no_secret_value_is_written_into_the_job(llm_api_key: str | None) -> None:
    text = str(_job(_settings(llm_api_key=llm_api_key)))

    assert submission_token(SECRET, SUBMISSION_ID) not in text
    assert SECRET not in text
    assert "sk-provider-key" not in text


@pytest.mark.parametrize("llm_api_key", [None, "sk-provider-key"])
def test_the_job_reads_no_secret_but_its_own(llm_api_key: str | None) -> None:
    """Above all not the provider's key (`cloudemy-llm`): student code shares the pod."""
    job = _job(_settings(llm_api_key=llm_api_key))
    pod = job["spec"]["template"]["spec"]

    assert {name for name, _ in _secret_refs(job)} == {NAME}
    assert not pod["containers"][0].get("envFrom")
    assert all("secret" not in volume for volume in pod["volumes"])


def test_the_providers_base_url_never_reaches_the_runner() -> None:
    off = _env(_job(_settings(llm_base_url="https://llm.example/v1")))
    on = _env(_job(_settings(llm_base_url="https://llm.example/v1", llm_api_key="sk-x")))

    assert "LLM_BASE_URL" not in off
    assert on["LLM_BASE_URL"]["value"].startswith("http://backend:8000/internal/llm/")


def test_no_runtime_class_by_default() -> None:
    assert "runtimeClassName" not in _job()["spec"]["template"]["spec"]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_the_runtime_class_comes_from_the_settings(version: str) -> None:
    job = _job(_settings(runner_runtime_class="gvisor"))

    assert job["spec"]["template"]["spec"]["runtimeClassName"] == "gvisor"
    kubernetes_validate.validate(job, version, strict=True)


def test_the_runtime_class_is_read_from_its_variable() -> None:
    env = {"INTERNAL_RESULT_TOKEN": SECRET, "REDIS_URL": REDIS_URL, "RUNNER_RUNTIME_CLASS": "runsc"}

    assert SchedulerSettings.from_env(env).runner_runtime_class == "runsc"
    assert (
        SchedulerSettings.from_env({**env, "RUNNER_RUNTIME_CLASS": ""}).runner_runtime_class is None
    )


@pytest.mark.parametrize("bad", ["gVisor", "-runsc", "run sc", "a" * 254])
def test_a_runtime_class_that_is_no_object_name_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="RUNNER_RUNTIME_CLASS"):
        SchedulerSettings.from_env(
            {"INTERNAL_RESULT_TOKEN": SECRET, "REDIS_URL": REDIS_URL, "RUNNER_RUNTIME_CLASS": bad}
        )


@pytest.mark.parametrize("bad_id", ["", "ABC", "a/b", "x" * 57, "-abc", "a_b"])
def test_an_id_that_cannot_name_a_job_is_refused(bad_id: str) -> None:
    with pytest.raises(ValueError, match="cannot name"):
        runner_job(_settings(), bad_id, {}, 120)


def test_the_token_secret_is_owned_by_its_job_and_immutable() -> None:
    job = client.V1Job(
        metadata=client.V1ObjectMeta(name=NAME, uid="1234-uid", labels={"cloudemy.io/x": "y"})
    )

    secret = runner_token_secret(job, "the-token")

    assert secret.metadata.name == NAME
    assert secret.string_data == {"INTERNAL_RESULT_TOKEN": "the-token"}
    assert secret.immutable is True
    (owner,) = secret.metadata.owner_references
    assert (owner.api_version, owner.kind, owner.name, owner.uid) == (
        "batch/v1",
        "Job",
        NAME,
        "1234-uid",
    )
    assert not owner.block_owner_deletion  # would need update on jobs/finalizers


def test_the_token_secret_needs_the_stored_job() -> None:
    with pytest.raises(ValueError, match="uid"):
        runner_token_secret(client.V1Job(metadata=client.V1ObjectMeta(name=NAME)), "t")


@pytest.mark.parametrize(
    ("n_tests", "time_limit_ms", "expected"),
    [
        (3, 1000, 148),  # 40 + 8 + 60 + 40
        (10, 2000, 185),  # 40 + 45 + 60 + 40
        (1000, 10_000, 3600),  # capped
        (0, 100, 140),
        (1, -5, 141),  # a negative time limit counts as none
    ],
)
def test_the_deadline_grows_with_the_assignment_limits(
    n_tests: int, time_limit_ms: int, expected: int
) -> None:
    assert runner_deadline_seconds(n_tests, time_limit_ms, _settings()) == expected


def test_the_deadline_budgets_cover_the_runners_own_limits() -> None:
    """A build or an LLM call the runner allows must not be cut off by the Job's deadline."""
    assert COMPILE_BUDGET_SECONDS * 1000 >= 2 * COMPILE_TIME_LIMIT_MS  # the build's wall limit
    assert LLM_BUDGET_SECONDS >= LLM_BUDGET_CAP_SECONDS


def test_the_deadline_never_drops_below_the_minimum() -> None:
    assert runner_deadline_seconds(1, 1, _settings(runner_min_deadline_seconds=300)) == 300
    assert _job(deadline=185)["spec"]["activeDeadlineSeconds"] == 185


def test_the_deadline_bounds_come_from_the_settings() -> None:
    settings = _settings(runner_min_deadline_seconds=60, runner_max_deadline_seconds=600)

    assert runner_deadline_seconds(0, 0, settings) == 140
    assert runner_deadline_seconds(1000, 10_000, settings) == 600


def _condition(kind: str, status: str = "True") -> client.V1JobCondition:
    return client.V1JobCondition(type=kind, status=status)


@pytest.mark.parametrize(
    ("conditions", "finished"),
    [
        (None, None),
        ([_condition("Suspended")], None),
        ([_condition("Failed", "False")], None),
        ([_condition("FailureTarget"), _condition("Failed")], "Failed"),
        ([_condition("Complete")], "Complete"),
    ],
)
def test_finished_condition(conditions, finished: str | None) -> None:
    job = client.V1Job(status=client.V1JobStatus(conditions=conditions))

    condition = finished_condition(job)

    assert (condition.type if condition else None) == finished


# --- grading rounds -----------------------------------------------------------------------


def test_a_regrade_round_is_a_job_of_its_own_labelled_with_its_round() -> None:
    settings = _settings()
    env = _Launcher(settings).runner_env(SUBMISSION_ID, 3)
    job = runner_job(settings, SUBMISSION_ID, env, 120, grading_round=3)
    stored = client.ApiClient().sanitize_for_serialization(job)

    assert job.metadata.name == f"{NAME}-r3"
    assert job.metadata.labels[ROUND_LABEL] == "3"
    assert job.spec.template.metadata.labels[ROUND_LABEL] == "3"
    assert job_round(job) == 3
    # The token comes from the round's own Secret, named like the Job.
    token_ref = _env(stored)["INTERNAL_RESULT_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token_ref["name"] == f"{NAME}-r3"
    assert _env(stored)["GRADING_ROUND"] == {"name": "GRADING_ROUND", "value": "3"}
    kubernetes_validate.validate(stored, SCHEMA_VERSIONS[-1], strict=True)


def test_round_0_keeps_the_seed_job_name_and_a_job_without_a_round_label_is_round_0() -> None:
    job = runner_job(
        _settings(), SUBMISSION_ID, _Launcher(_settings()).runner_env(SUBMISSION_ID), 120
    )

    assert job.metadata.name == NAME
    assert job_round(job) == 0
    del job.metadata.labels[ROUND_LABEL]
    assert job_round(job) == 0


def test_a_job_name_past_63_characters_is_refused() -> None:
    longest_id = "a" * 56  # the longest id whose round-0 Job name fits
    settings = _settings()

    assert len(runner_job(settings, longest_id, {}, 120).metadata.name) == 63
    with pytest.raises(ValueError, match="63"):
        runner_job(settings, longest_id, {}, 120, grading_round=1)


def test_a_fresh_runner_is_a_job_of_its_own_reading_its_own_secret() -> None:
    """The sweep's second attempt cannot collide with the first Job (or its Secret)."""
    settings = _settings()
    env = _Launcher(settings).runner_env(SUBMISSION_ID)
    job = client.ApiClient().sanitize_for_serialization(
        runner_job(settings, SUBMISSION_ID, env, 120, attempt=2)
    )

    name = f"runner-{SUBMISSION_ID}-2"
    assert job["metadata"]["name"] == name
    assert job["metadata"]["labels"][SUBMISSION_LABEL] == SUBMISSION_ID
    token = _env(job)["INTERNAL_RESULT_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["name"] == name
