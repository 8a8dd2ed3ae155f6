"""Static checks of manifests/ and the two Dockerfiles; no cluster needed.

The kustomization is rendered with `kubectl kustomize` (the fallback below emulates
the few kustomize features manifests/ uses, for a machine without kubectl). Every
rendered object is validated in strict mode against the official Kubernetes schemas
shipped by kubernetes-validate, and the fields the reference architecture fixes are
asserted value by value.
"""

from __future__ import annotations

import ast
import base64
import copy
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.suite_guard import cannot_run

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
SECRETS_EXAMPLE = MANIFESTS / "secrets.example.yaml"
# The checks that need kubectl; without it they fail under CI, else are skipped loudly.
KUBECTL_CHECKS = "kubectl part of the manifests"

NAMESPACE = "cloudemy"
BACKEND_IMAGE = "cloudemy/backend:0.1.0"
RUNNER_IMAGE = "cloudemy/runner:0.1.0"

# 1.31: the oldest schema set that every allowed kubernetes-validate (>=1.31) ships,
# and the newest one this installation ships (catches an API removed since).
SCHEMA_VERSIONS = sorted({"1.31.0", kubernetes_validate.latest_version()})

# Files in manifests/ that are deliberately not kustomize resources.
NOT_RESOURCES = {"kustomization.yaml", "kustomizeconfig.yaml", "secrets.example.yaml"}

CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "IngressClass",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "CustomResourceDefinition",
}

Obj = dict[str, Any]


# --------------------------------------------------------------------------- rendering


def _load_yaml_documents(text: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def _kustomization() -> Obj:
    return yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())


def _render_with_kubectl(kubectl: str) -> list[Obj]:
    result = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize failed:\n{result.stderr}"
    return _load_yaml_documents(result.stdout)


def _image_matches(value: str, name: str) -> bool:
    return re.fullmatch(re.escape(name) + r"(@sha256:[0-9a-f]+)?(:[\w.{}-]+)?", value) is not None


def _rewrite_image(value: str, entry: Obj) -> str:
    name = entry.get("newName", entry["name"])
    if "digest" in entry:
        return f"{name}@{entry['digest']}"
    if "newTag" in entry:
        return f"{name}:{entry['newTag']}"
    tail = value[len(entry["name"]) :]
    return name + tail


def _render_without_kubectl() -> list[Obj]:
    """Emulate what kustomize does with manifests/: resources, namespace, images
    (container images plus Deployment env values, as kustomizeconfig.yaml declares)."""
    kustomization = _kustomization()
    namespace = kustomization.get("namespace")
    images = kustomization.get("images", [])
    objects: list[Obj] = []
    for resource in kustomization["resources"]:
        objects.extend(_load_yaml_documents((MANIFESTS / resource).read_text()))
    for obj in objects:
        if namespace:
            if obj["kind"] == "Namespace":
                obj["metadata"]["name"] = namespace
            elif obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = namespace
            if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
                for subject in obj.get("subjects", []):
                    if subject["kind"] == "ServiceAccount" and subject.get(
                        "namespace", "default"
                    ) in ("", "default"):
                        subject["namespace"] = namespace
        pod_spec = obj.get("spec", {}).get("template", {}).get("spec")
        if not pod_spec:
            continue
        for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
            for entry in images:
                if _image_matches(container["image"], entry["name"]):
                    container["image"] = _rewrite_image(container["image"], entry)
                if obj["kind"] != "Deployment":
                    continue
                for env in container.get("env", []):
                    value = env.get("value")
                    if isinstance(value, str) and _image_matches(value, entry["name"]):
                        env["value"] = _rewrite_image(value, entry)
    return objects


@functools.cache
def _rendered() -> tuple[Obj, ...]:
    kubectl = shutil.which("kubectl")
    objects = _render_with_kubectl(kubectl) if kubectl else _render_without_kubectl()
    return tuple(objects)


@pytest.fixture
def objects() -> list[Obj]:
    return copy.deepcopy(list(_rendered()))


def _get(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected exactly one {kind}/{name}, found {len(found)}"
    return found[0]


def _container(obj: Obj, name: str | None = None) -> Obj:
    containers = obj["spec"]["template"]["spec"]["containers"]
    if name is None:
        assert len(containers) == 1
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def _env(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container.get("env", [])}


def _env_values(container: Obj) -> dict[str, str]:
    return {name: e["value"] for name, e in _env(container).items() if "value" in e}


def _secret_ref(container: Obj, name: str) -> tuple[str, str]:
    ref = _env(container)[name]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def _pod_templates(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet")]


def _secret_examples() -> list[Obj]:
    return _load_yaml_documents(SECRETS_EXAMPLE.read_text())


# ------------------------------------------------------------------ rendering / schemas


def test_kubectl_kustomize_renders() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        cannot_run(KUBECTL_CHECKS, "kubectl is not installed")
    assert _render_with_kubectl(kubectl)


def test_fallback_renderer_matches_kubectl() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        cannot_run(KUBECTL_CHECKS, "kubectl is not installed")

    def by_key(objs: list[Obj]) -> dict[tuple[str, str], Obj]:
        return {(o["kind"], o["metadata"]["name"]): o for o in objs}

    assert by_key(_render_without_kubectl()) == by_key(_render_with_kubectl(kubectl))


def test_kustomization_lists_every_manifest() -> None:
    on_disk = {p.name for p in MANIFESTS.glob("*.yaml")} | {p.name for p in MANIFESTS.glob("*.yml")}
    listed = set(_kustomization()["resources"])
    assert listed == on_disk - NOT_RESOURCES
    assert "secrets.example.yaml" not in listed


def test_expected_objects(objects: list[Obj]) -> None:
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == sorted(
        [
            ("Namespace", NAMESPACE),
            ("Service", "mongo"),
            ("StatefulSet", "mongo"),
            ("Service", "redis"),
            ("StatefulSet", "redis"),
            ("Service", "backend"),
            ("Deployment", "backend-deploy"),
            ("HorizontalPodAutoscaler", "backend-hpa"),
            ("ServiceAccount", "scheduler"),
            ("Role", "scheduler-runner-jobs"),
            ("RoleBinding", "scheduler-runner-jobs"),
            ("Deployment", "scheduler"),
            ("Service", "flower"),
            ("Deployment", "flower"),
            ("NetworkPolicy", "runner-isolation"),
            ("NetworkPolicy", "mongo-ingress"),
            ("NetworkPolicy", "redis-ingress"),
            ("NetworkPolicy", "backend-egress"),
            ("Ingress", "cloudemy"),
        ]
    )


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_object_passes_strict_schema_validation(objects: list[Obj], version: str) -> None:
    failures = []
    for obj in [*objects, *_secret_examples()]:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            failures.append(f"{name}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            failures.append(f"{name}: {exc.message}")
    assert not failures, "\n".join(failures)


def test_strict_validation_rejects_an_unknown_field(objects: list[Obj]) -> None:
    deployment = _get(objects, "Deployment", "backend-deploy")
    kubernetes_validate.validate(deployment, SCHEMA_VERSIONS[0], strict=True)
    _container(deployment)["livenessProbes"] = _container(deployment)["livenessProbe"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, SCHEMA_VERSIONS[0], strict=True)


def test_namespace(objects: list[Obj]) -> None:
    assert _kustomization()["namespace"] == NAMESPACE
    for obj in objects:
        if obj["kind"] in CLUSTER_SCOPED:
            continue
        assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]["name"]
    labels = _get(objects, "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# -------------------------------------------------------------------------- backend


def test_backend_service(objects: list[Obj]) -> None:
    spec = _get(objects, "Service", "backend")["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["selector"] == {"app": "backend"}
    assert [(p["port"], p["targetPort"], p.get("protocol", "TCP")) for p in spec["ports"]] == [
        (8000, 8000, "TCP")
    ]


def test_backend_deployment(objects: list[Obj]) -> None:
    deployment = _get(objects, "Deployment", "backend-deploy")
    spec = deployment["spec"]
    assert spec["selector"]["matchLabels"] == {"app": "backend"}
    assert spec["template"]["metadata"]["labels"]["app"] == "backend"
    assert spec["template"]["metadata"]["labels"]["app.kubernetes.io/component"] == "backend"
    # The HPA owns the replica count; a fixed one would be reset on every apply.
    assert "replicas" not in spec

    container = _container(deployment)
    assert container["image"] == BACKEND_IMAGE
    assert container["command"] == ["cloudemy", "serve"]
    assert [p["containerPort"] for p in container["ports"]] == [8000]
    values = _env_values(container)
    assert values["MONGO_URI"] == "mongodb://mongo:27017"
    assert values["DB_NAME"] == "cloudemy"
    assert values["REDIS_URL"] == "redis://redis:6379"
    assert values["QUEUE_SUBMISSIONS"] == "queue:submissions"
    assert values["RUNNER_LAUNCHER"] == "kubernetes"  # languages are checked for the runners
    assert values["CORS_ORIGINS"].split(",") == ["http://localhost:3000", "http://cloudemy.local"]
    assert values["PORT"] == "8000"
    assert _secret_ref(container, "INTERNAL_RESULT_TOKEN") == (
        "cloudemy-secrets",
        "INTERNAL_RESULT_TOKEN",
    )
    assert _secret_ref(container, "SECRET_KEY") == ("cloudemy-secrets", "SECRET_KEY")
    # The LLM gateway: the provider's key is the backend's, optional (no key, no LLM).
    _assert_optional_llm_key(container)
    assert values["LLM_MODEL"] == "gpt-4o-mini"
    assert int(values["LLM_GATEWAY_MAX_CALLS"]) >= 1
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    }

    liveness = container["livenessProbe"]["httpGet"]
    readiness = container["readinessProbe"]["httpGet"]
    assert liveness["path"] == "/healthz"
    assert readiness["path"] == "/readyz"
    named_ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    for probe in (liveness, readiness):
        assert named_ports.get(probe["port"], probe["port"]) == 8000


def test_backend_hpa(objects: list[Obj]) -> None:
    hpa = _get(objects, "HorizontalPodAutoscaler", "backend-hpa")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend-deploy"},
        "minReplicas": 1,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            },
            {
                "type": "Resource",
                "resource": {
                    "name": "memory",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            },
        ],
        "behavior": {
            "scaleUp": {
                "stabilizationWindowSeconds": 0,
                "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15},
                    {"type": "Pods", "value": 2, "periodSeconds": 15},
                ],
                "selectPolicy": "Max",
            },
            "scaleDown": {
                "stabilizationWindowSeconds": 60,
                "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
            },
        },
    }


# --------------------------------------------------------------------- mongo / redis


@pytest.mark.parametrize(("name", "port"), [("mongo", 27017), ("redis", 6379)])
def test_datastore_service_and_statefulset(objects: list[Obj], name: str, port: int) -> None:
    service = _get(objects, "Service", name)["spec"]
    assert service["type"] == "ClusterIP"
    assert [p["port"] for p in service["ports"]] == [port]
    statefulset = _get(objects, "StatefulSet", name)
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    container = _container(statefulset)
    assert [p["containerPort"] for p in container["ports"]] == [port]
    claims = statefulset["spec"]["volumeClaimTemplates"]
    assert [c["metadata"]["name"] for c in claims] == ["data"]
    assert any(m["name"] == "data" for m in container["volumeMounts"])


def test_redis_never_evicts_and_keeps_an_append_only_file(objects: list[Obj]) -> None:
    args = _container(_get(objects, "StatefulSet", "redis"))["args"]
    options = dict(zip(args[1::2], args[2::2], strict=True))
    assert args[0] == "redis-server"
    assert options["--maxmemory-policy"] == "noeviction"
    assert options["--appendonly"] == "yes"
    assert options["--dir"] == "/data"


# ------------------------------------------------------------------ scheduler / RBAC


def test_scheduler_deployment(objects: list[Obj]) -> None:
    deployment = _get(objects, "Deployment", "scheduler")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "scheduler"
    assert [c["name"] for c in pod["containers"]] == ["scheduler", "reconciler"]
    container = _container(deployment, "scheduler")
    assert container["image"] == BACKEND_IMAGE
    assert container["command"] == ["cloudemy", "worker"]
    values = _env_values(container)
    assert values == {
        "REDIS_URL": "redis://redis:6379",
        "QUEUE_SUBMISSIONS": "queue:submissions",
        "RUNNER_LAUNCHER": "kubernetes",
        "RUNNER_IMAGE": RUNNER_IMAGE,
        "BACKEND_INTERNAL_URL": "http://backend:8000/internal",
        "MAX_RUNNING_JOBS": "50",
        "LLM_MODEL": "gpt-4o-mini",
    }
    # LLM_MODEL is told to runners for their metrics; the gateway uses the backend's.
    backend = _env_values(_container(_get(objects, "Deployment", "backend-deploy")))
    assert values["LLM_MODEL"] == backend["LLM_MODEL"]
    _assert_scheduler_side_env(container, llm_switch=True)


def _assert_optional_llm_key(container: Obj) -> None:
    ref = _env(container)["LLM_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "cloudemy-llm", "key": "LLM_API_KEY", "optional": True}


def _assert_scheduler_side_env(container: Obj, llm_switch: bool = False) -> None:
    """Jobs in the pod's own namespace, the callback secret, and no database or API signing
    key: the scheduler side never needs them. The scheduler reads the LLM key only to know
    whether LLM feedback is on (runners get the gateway and their own token instead)."""
    env = _env(container)
    assert env["K8S_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert _secret_ref(container, "INTERNAL_RESULT_TOKEN") == (
        "cloudemy-secrets",
        "INTERNAL_RESULT_TOKEN",
    )
    assert not {"MONGO_URI", "SECRET_KEY", "RUNNER_LLM_SECRET", "LLM_BASE_URL"} & env.keys()
    if llm_switch:
        _assert_optional_llm_key(container)
    else:
        assert "LLM_API_KEY" not in env


def test_reconciler_beside_the_scheduler(objects: list[Obj]) -> None:
    container = _container(_get(objects, "Deployment", "scheduler"), "reconciler")
    assert container["image"] == BACKEND_IMAGE
    assert container["command"] == ["cloudemy", "reconcile"]
    values = _env_values(container)
    assert values["REDIS_URL"] == "redis://redis:6379"
    assert values["BACKEND_INTERNAL_URL"] == "http://backend:8000/internal"
    assert values["RUNNER_LAUNCHER"] == "kubernetes"
    assert int(values["RECONCILE_INTERVAL_SECONDS"]) > 0
    _assert_scheduler_side_env(container)


def test_scheduler_role_and_binding(objects: list[Obj]) -> None:
    role = _get(objects, "Role", "scheduler-runner-jobs")
    rules = sorted(
        (tuple(r["apiGroups"]), tuple(r["resources"]), tuple(sorted(r["verbs"])))
        for r in role["rules"]
    )
    assert rules == [
        (("",), ("pods",), ("get", "list", "watch")),
        (("",), ("secrets",), ("create",)),
        (("batch",), ("jobs",), ("create", "delete", "get", "list", "watch")),
    ]
    binding = _get(objects, "RoleBinding", "scheduler-runner-jobs")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "scheduler-runner-jobs",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "scheduler", "namespace": NAMESPACE}
    ]
    _get(objects, "ServiceAccount", "scheduler")
    assert not [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]


# ---------------------------------------------------------------------------- flower


def test_flower(objects: list[Obj]) -> None:
    deployment = _get(objects, "Deployment", "flower")
    container = _container(deployment)
    assert container["image"] == BACKEND_IMAGE
    assert container["command"] == ["cloudemy", "flower"]
    assert [p["containerPort"] for p in container["ports"]] == [5555]
    assert _env_values(container)["REDIS_URL"] == "redis://redis:6379"
    assert _secret_ref(container, "FLOWER_BASIC_AUTH") == ("cloudemy-flower", "FLOWER_BASIC_AUTH")
    service = _get(objects, "Service", "flower")["spec"]
    assert service["type"] == "ClusterIP"
    assert [p["port"] for p in service["ports"]] == [5555]
    assert (
        service["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )


# --------------------------------------------------------------------------- ingress


def test_ingress_routes_api_and_frontend_but_never_internal(objects: list[Obj]) -> None:
    ingress = _get(objects, "Ingress", "cloudemy")
    rules = ingress["spec"]["rules"]
    assert [r["host"] for r in rules] == ["cloudemy.local"]
    assert "defaultBackend" not in ingress["spec"]
    routes = {
        p["path"]: (
            p["pathType"],
            p["backend"]["service"]["name"],
            p["backend"]["service"]["port"]["number"],
        )
        for r in rules
        for p in r["http"]["paths"]
    }
    assert routes == {
        "/api": ("Prefix", "backend", 8000),
        "/": ("Prefix", "frontend-service", 3000),
    }
    assert not [path for path in routes if path.startswith("/internal")]


# ------------------------------------------------------------------- network policies


def _ports(rule: Obj) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def test_runner_network_policy(objects: list[Obj]) -> None:
    spec = _get(objects, "NetworkPolicy", "runner-isolation")["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/component": "runner"}}
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    assert not spec.get("ingress"), "nothing may connect to a runner pod"

    egress = spec["egress"]
    for rule in egress:
        assert rule.get("to"), "an egress rule without `to` would allow every destination"
        assert rule.get("ports"), "an egress rule without `ports` would allow every port"
    # The backend (result callback and LLM gateway), Redis, DNS for their names: nothing
    # outside the cluster, not even the LLM provider (the backend calls it for runners).
    allowed = set().union(*(_ports(rule) for rule in egress))
    assert allowed == {("TCP", 8000), ("TCP", 6379), ("UDP", 53), ("TCP", 53)}
    assert not [peer for rule in egress for peer in rule["to"] if "ipBlock" in peer]

    def peers_for(port: tuple[str, int]) -> list[Obj]:
        return [peer for rule in egress if port in _ports(rule) for peer in rule["to"]]

    assert peers_for(("TCP", 8000)) == [{"podSelector": {"matchLabels": {"app": "backend"}}}]
    assert peers_for(("TCP", 6379)) == [{"podSelector": {"matchLabels": {"app": "redis"}}}]
    _assert_cluster_dns(egress)


def _assert_cluster_dns(egress: list[Obj]) -> None:
    dns = [peer for rule in egress if ("UDP", 53) in _ports(rule) for peer in rule["to"]]
    assert dns == [peer for rule in egress if ("TCP", 53) in _ports(rule) for peer in rule["to"]]
    assert dns == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]


def test_backend_egress_reaches_the_llm_provider_and_its_datastores(objects: list[Obj]) -> None:
    spec = _get(objects, "NetworkPolicy", "backend-egress")["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app": "backend"}}
    # Egress only: the Ingress controller, the probes and the runners still reach it.
    assert spec["policyTypes"] == ["Egress"]
    egress = spec["egress"]
    for rule in egress:
        assert rule.get("to") and rule.get("ports")
    allowed = set().union(*(_ports(rule) for rule in egress))
    assert allowed == {("TCP", 27017), ("TCP", 6379), ("UDP", 53), ("TCP", 53), ("TCP", 443)}

    def peers_for(port: tuple[str, int]) -> list[Obj]:
        return [peer for rule in egress if port in _ports(rule) for peer in rule["to"]]

    assert peers_for(("TCP", 27017)) == [{"podSelector": {"matchLabels": {"app": "mongo"}}}]
    assert peers_for(("TCP", 6379)) == [{"podSelector": {"matchLabels": {"app": "redis"}}}]
    _assert_cluster_dns(egress)
    # HTTPS to the provider: outside the cluster's private ranges and the metadata endpoint.
    internet = peers_for(("TCP", 443))
    assert [set(peer) for peer in internet] == [{"ipBlock"}]
    block = internet[0]["ipBlock"]
    assert block["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
        block["except"]
    )


def test_only_the_backend_and_the_scheduler_read_the_llm_key(objects: list[Obj]) -> None:
    """The provider's key is the backend's (its gateway) and the scheduler's on/off switch;
    runner Jobs are not in manifests/, and tests/unit/kubernetes checks they get none."""
    readers = set()
    for workload in _pod_templates(objects):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef") or {}
                if ref.get("name") == "cloudemy-llm" or env["name"] == "LLM_API_KEY":
                    readers.add((workload["metadata"]["name"], container["name"]))
    assert readers == {("backend-deploy", "backend"), ("scheduler", "scheduler")}


def test_mongo_accepts_only_the_backend(objects: list[Obj]) -> None:
    spec = _get(objects, "NetworkPolicy", "mongo-ingress")["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app": "mongo"}}
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app": "backend"}}}],
            "ports": [{"protocol": "TCP", "port": 27017}],
        }
    ]


def test_redis_accepts_the_platform_and_runners(objects: list[Obj]) -> None:
    spec = _get(objects, "NetworkPolicy", "redis-ingress")["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app": "redis"}}
    (rule,) = spec["ingress"]
    assert _ports(rule) == {("TCP", 6379)}
    sources = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
    assert sorted(sources, key=str) == sorted(
        [
            {"app": "backend"},
            {"app": "scheduler"},
            {"app": "flower"},
            {"app.kubernetes.io/component": "runner"},
        ],
        key=str,
    )


# -------------------------------------------------------------------------- security


def test_every_pod_runs_restricted(objects: list[Obj]) -> None:
    for workload in _pod_templates(objects):
        name = workload["metadata"]["name"]
        pod = workload["spec"]["template"]["spec"]
        pod_security = pod["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["runAsUser"] > 0, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        expected_token = name == "scheduler"
        assert pod.get("automountServiceAccountToken") is expected_token, name
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"] == {"drop": ["ALL"]}, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert "privileged" not in security, name
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: a writable /tmp is needed with a read-only root"
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}, name
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}, name


def test_images_are_pinned(objects: list[Obj]) -> None:
    for workload in _pod_templates(objects):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            image = container["image"]
            assert re.search(r":[\w.-]+$", image), f"{image} has no tag"
            assert not image.endswith(":latest"), image
            assert container.get("imagePullPolicy", "IfNotPresent") != "Always"


# --------------------------------------------------------------------------- secrets


PLACEHOLDER = re.compile(r"change-?me|placeholder|example", re.IGNORECASE)


def _secret_values(secret: Obj) -> dict[str, str]:
    values = dict(secret.get("stringData", {}))
    for key, encoded in secret.get("data", {}).items():
        values[key] = base64.b64decode(encoded).decode()
    return values


def test_no_secret_is_rendered(objects: list[Obj]) -> None:
    # `kubectl apply -k` must never overwrite the Secrets an operator created.
    assert not [o for o in objects if o["kind"] == "Secret"]


def test_no_secret_in_the_repository_holds_a_real_value() -> None:
    secrets = []
    for path in sorted(MANIFESTS.glob("*.y*ml")):
        secrets += [d for d in _load_yaml_documents(path.read_text()) if d.get("kind") == "Secret"]
    assert secrets, "secrets.example.yaml should show the Secrets' shape"
    for secret in secrets:
        values = _secret_values(secret)
        assert values, secret["metadata"]["name"]
        for key, value in values.items():
            assert PLACEHOLDER.search(value), f"{secret['metadata']['name']}.{key} looks real"


def test_secret_example_covers_every_reference(objects: list[Obj]) -> None:
    examples = {s["metadata"]["name"]: set(_secret_values(s)) for s in _secret_examples()}
    referenced: set[tuple[str, str]] = set()
    for workload in _pod_templates(objects):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    referenced.add((ref["name"], ref["key"]))
    # Runner Jobs, created at run time, read only their own Secret `runner-<id>`.
    assert referenced == {(name, key) for name, keys in examples.items() for key in keys}


def test_deploy_doc_creates_every_secret() -> None:
    doc = DEPLOY_DOC.read_text()
    for secret in _secret_examples():
        name = secret["metadata"]["name"]
        assert re.search(rf"kubectl\b[^\n]*create secret generic {re.escape(name)}\b", doc), name
        for key in _secret_values(secret):
            assert key in doc, f"docs/deploy.md never mentions {name}.{key}"


# ----------------------------------------------------------------------- dockerfiles


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _final_stage(path: Path) -> list[tuple[str, str]]:
    instructions = _instructions(path)
    last_from = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[last_from:]


@pytest.mark.parametrize(
    ("dockerfile", "last"),
    [
        ("Dockerfile", ("CMD", '["cloudemy", "serve"]')),
        # The runner is PID 1 itself: an init would be a dumpable process holding the
        # pod's environment, readable by student code under the same uid.
        ("runner_image/Dockerfile", ("ENTRYPOINT", '["python", "-m", "runner_image"]')),
    ],
)
def test_dockerfile_runs_as_non_root(dockerfile: str, last: tuple[str, str]) -> None:
    stage = _final_stage(ROOT / dockerfile)
    assert stage[0][1].startswith("python:3.11-slim")
    users = [arg for op, arg in stage if op == "USER"]
    assert users == ["10001:10001"]
    assert stage[-1] == last
    if dockerfile == "Dockerfile":
        assert ("EXPOSE", "8000") in stage


def test_runner_image_has_no_init_in_front_of_the_runner() -> None:
    """No tini or dumb-init, installed or run: PID 1 is the (non-dumpable) runner."""
    stage = _final_stage(ROOT / "runner_image" / "Dockerfile")
    entrypoints = [arg for op, arg in stage if op in ("ENTRYPOINT", "CMD")]
    assert entrypoints == ['["python", "-m", "runner_image"]']
    for op, arg in stage:
        assert not re.search(r"\b(tini|dumb-init)\b", arg), f"{op} {arg}"


def test_runner_image_copies_only_the_runner() -> None:
    copies = [
        arg for op, arg in _instructions(ROOT / "runner_image" / "Dockerfile") if op == "COPY"
    ]
    assert copies == ["runner_image/ /opt/cloudemy/runner_image/"]


def test_runner_image_installs_what_the_runner_imports() -> None:
    """The runner image pip-installs a hand-picked set; it must cover every third-party
    module runner_image/ (every subpackage) imports. Import names equal distribution names
    for all of them once normalized (pydantic_settings is pydantic-settings)."""
    imported: set[str] = set()
    for source in (ROOT / "runner_image").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"__future__", "runner_image"}

    pip_lines = [
        arg for op, arg in _instructions(ROOT / "runner_image" / "Dockerfile") if op == "RUN"
    ]
    installed = set()
    for line in pip_lines:
        match = re.search(r"pip install ([^&]*)", line)
        if match:
            installed |= {
                re.split(r"[<>=!~\[]", spec.strip('"'))[0].lower().replace("-", "_")
                for spec in match.group(1).split()
                if not spec.startswith("-")
            }
    assert third_party <= installed, f"missing from the runner image: {third_party - installed}"
