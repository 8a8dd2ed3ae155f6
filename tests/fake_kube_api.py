"""A local HTTP server speaking the slice of the Kubernetes API the scheduler uses, so the
real kubernetes client can be tested without a cluster.

Served: batch/v1 Jobs (create, get, list with labelSelector / fieldSelector, delete), v1
Secrets (create, get) and v1 Pods (list with labelSelector). Objects come back as the API
server would store them (uid, resourceVersion, creationTimestamp, namespace); errors are
Status objects (409 AlreadyExists, 404 NotFound, 422 Invalid...). A test can script the next
answers (`enqueue`: a status, headers such as Retry-After, a delay), drive a Job's status
(`fail_job`, `complete_job`, `add_pod`) and read every request back (`requests`).
Posted Jobs and Secrets are validated in strict mode against the official schemas, as an
API server would reject an unknown field.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate

SCHEMA_VERSION = kubernetes_validate.latest_version()

_ROUTES = [
    (re.compile(r"^/apis/batch/v1/namespaces/([^/]+)/(jobs)(?:/([^/]+))?$"), "Job", "batch/v1"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/(secrets)(?:/([^/]+))?$"), "Secret", "v1"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/(pods)(?:/([^/]+))?$"), "Pod", "v1"),
]
_GROUPS = {"jobs": "batch", "secrets": "", "pods": ""}

Obj = dict[str, Any]


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_object(code: int, reason: str, message: str, kind: str = "", name: str = "") -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "kind": kind},
        "code": code,
    }


@dataclass
class Canned:
    """One scripted answer for the next request matching `method` and `resource`."""

    method: str
    resource: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Obj | None = None
    delay: float = 0.0
    passthrough: bool = False  # after `delay`, answer normally


@dataclass
class Recorded:
    method: str
    path: str
    resource: str
    name: str | None
    query: dict[str, str]
    body: Obj | None
    headers: dict[str, str]  # names in lower case
    status: int = 0


def _selector_matches(selector: str, values: dict[str, str]) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if values.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if values.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in values:
                return False
        elif term not in values:
            return False
    return True


def _fields(obj: Obj) -> dict[str, str]:
    meta = obj["metadata"]
    fields = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"]}
    if obj["kind"] == "Job":
        fields["status.successful"] = str(obj.get("status", {}).get("succeeded", 0))
    return fields


class FakeKubeApi:
    def __init__(self, validate: bool = True) -> None:
        self.validate = validate
        self.objects: dict[tuple[str, str, str], Obj] = {}  # (resource, namespace, name)
        self.requests: list[Recorded] = []
        self.script: list[Canned] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._resource_version = 1000

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeKubeApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                api._handle(self, "GET")

            def do_POST(self) -> None:
                api._handle(self, "POST")

            def do_DELETE(self) -> None:
                api._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake API first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        """A kubeconfig pointing at this server, as `kubectl config view` would write it."""
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                    "users": [{"name": "scheduler", "user": {"token": "fake-token"}}],
                    "contexts": [
                        {
                            "name": "fake",
                            "context": {
                                "cluster": "fake",
                                "user": "scheduler",
                                "namespace": namespace,
                            },
                        }
                    ],
                    "current-context": "fake",
                }
            )
        )
        return path

    # ------------------------------------------------------------------ scripting

    def enqueue(self, method: str, resource: str, status: int, **kwargs: Any) -> None:
        with self.lock:
            self.script.append(Canned(method, resource, status, **kwargs))

    def recorded(self, method: str | None = None, resource: str | None = None) -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method)
                and (resource is None or r.resource == resource)
            ]

    def stored(self, resource: str, namespace: str = "default") -> dict[str, Obj]:
        with self.lock:
            return {
                n: o for (r, ns, n), o in self.objects.items() if r == resource and ns == namespace
            }

    def _set_job_status(self, namespace: str, name: str, status: Obj) -> None:
        with self.lock:
            job = self.objects[("jobs", namespace, name)]
            job["status"] = status
            job["metadata"]["resourceVersion"] = self._next_version()

    def fail_job(
        self,
        name: str,
        namespace: str = "default",
        reason: str = "DeadlineExceeded",
        message: str = "Job was active longer than specified deadline",
    ) -> None:
        stamp = now()
        self._set_job_status(
            namespace,
            name,
            {
                "startTime": stamp,
                "failed": 1,
                "conditions": [
                    {
                        "type": "FailureTarget",
                        "status": "True",
                        "reason": reason,
                        "message": message,
                        "lastProbeTime": stamp,
                        "lastTransitionTime": stamp,
                    },
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": reason,
                        "message": message,
                        "lastProbeTime": stamp,
                        "lastTransitionTime": stamp,
                    },
                ],
            },
        )

    def complete_job(self, name: str, namespace: str = "default") -> None:
        stamp = now()
        self._set_job_status(
            namespace,
            name,
            {
                "startTime": stamp,
                "completionTime": stamp,
                "succeeded": 1,
                "conditions": [
                    {
                        "type": "Complete",
                        "status": "True",
                        "lastProbeTime": stamp,
                        "lastTransitionTime": stamp,
                    }
                ],
            },
        )

    def add_pod(
        self,
        job_name: str,
        namespace: str = "default",
        reason: str = "OOMKilled",
        exit_code: int = 137,
    ) -> None:
        """A failed pod of `job_name`, labelled as the Job controller labels its pods."""
        name = f"{job_name}-{uuid.uuid4().hex[:5]}"
        with self.lock:
            self.objects[("pods", namespace, name)] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": self._meta({"name": name, "labels": {"job-name": job_name}}, namespace),
                "spec": {"containers": [{"name": "runner", "image": "cloudemy/runner"}]},
                "status": {
                    "phase": "Failed",
                    "containerStatuses": [
                        {
                            "name": "runner",
                            "image": "cloudemy/runner",
                            "imageID": "",
                            "ready": False,
                            "restartCount": 0,
                            "state": {"terminated": {"exitCode": exit_code, "reason": reason}},
                        }
                    ],
                },
            }

    # ------------------------------------------------------------------ serving

    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def _meta(self, meta: Obj, namespace: str) -> Obj:
        return {
            **meta,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": self._next_version(),
            "generation": 1,
            "creationTimestamp": now(),
        }

    def _take_canned(self, method: str, resource: str) -> Canned | None:
        with self.lock:
            for i, canned in enumerate(self.script):
                if canned.method == method and canned.resource == resource:
                    return self.script.pop(i)
        return None

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        route = next(
            ((m, kind, version) for rx, kind, version in _ROUTES if (m := rx.match(parts.path))),
            None,
        )
        if route is None:
            self._send(handler, 404, status_object(404, "NotFound", "the server could not find it"))
            return
        match, kind, api_version = route
        namespace, resource, name = match.groups()
        record = Recorded(
            method,
            parts.path,
            resource,
            name,
            query,
            body,
            {k.lower(): v for k, v in handler.headers.items()},
        )
        with self.lock:
            self.requests.append(record)
        canned = self._take_canned(method, resource)
        if canned and canned.delay:
            time.sleep(canned.delay)
        if canned and not canned.passthrough:
            answer = canned.body or status_object(
                canned.status, HTTPStatus(canned.status).phrase.replace(" ", ""), "scripted"
            )
            record.status = canned.status
            self._send(handler, canned.status, answer, canned.headers)
            return
        status, answer = self._serve(
            method, resource, kind, api_version, namespace, name, query, body
        )
        record.status = status
        self._send(handler, status, answer)

    def _serve(
        self,
        method: str,
        resource: str,
        kind: str,
        api_version: str,
        namespace: str,
        name: str | None,
        query: dict[str, str],
        body: Obj | None,
    ) -> tuple[int, Obj]:
        group = _GROUPS[resource]
        with self.lock:
            if method == "POST" and name is None:
                assert body is not None
                if self.validate:
                    try:
                        kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)
                    except kubernetes_validate.ValidationError as exc:
                        return 422, status_object(422, "Invalid", str(exc), resource)
                new_name = body["metadata"]["name"]
                if (resource, namespace, new_name) in self.objects:
                    message = (
                        f'{resource}{"." + group if group else ""} "{new_name}" already exists'
                    )
                    return 409, status_object(409, "AlreadyExists", message, resource, new_name)
                stored = {**body, "metadata": self._meta(body["metadata"], namespace)}
                if kind == "Secret":  # the API server folds stringData into data
                    string_data = stored.pop("stringData", None) or {}
                    stored["data"] = {
                        **(stored.get("data") or {}),
                        **{
                            k: base64.b64encode(v.encode()).decode() for k, v in string_data.items()
                        },
                    }
                else:
                    stored.setdefault("status", {})
                self.objects[(resource, namespace, new_name)] = stored
                return 201, stored
            if method == "GET" and name is None:
                items = [
                    obj
                    for (r, ns, _), obj in sorted(self.objects.items())
                    if r == resource
                    and ns == namespace
                    and _selector_matches(
                        query.get("labelSelector", ""), obj["metadata"].get("labels") or {}
                    )
                    and _selector_matches(query.get("fieldSelector", ""), _fields(obj))
                ]
                return 200, {
                    "kind": f"{kind}List",
                    "apiVersion": api_version,
                    "metadata": {"resourceVersion": str(self._resource_version)},
                    "items": items,
                }
            key = (resource, namespace, name or "")
            if key not in self.objects:
                message = f'{resource}{"." + group if group else ""} "{name}" not found'
                return 404, status_object(404, "NotFound", message, resource, name or "")
            if method == "GET":
                return 200, self.objects[key]
            if method == "DELETE":
                del self.objects[key]
                return 200, {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": name, "group": group, "kind": resource},
                }
        return 405, status_object(405, "MethodNotAllowed", f"{method} is not served")

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: Obj,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a scripted timeout)


@contextmanager
def fake_kube_api(validate: bool = True) -> Iterator[FakeKubeApi]:
    api = FakeKubeApi(validate=validate).start()
    try:
        yield api
    finally:
        api.stop()
