"""A local HTTP server speaking the slice of the Kubernetes API the scheduler uses, so the
real kubernetes client can be tested (and benchmarked) without a cluster.

Served: batch/v1 Jobs (create, get, list and watch with labelSelector / fieldSelector,
delete), v1 Secrets (create, get) and v1 Pods (list with labelSelector). Objects come back
as the API server would store them (uid, resourceVersion, creationTimestamp, namespace);
errors are Status objects (409 AlreadyExists, 404 NotFound, 422 Invalid...).

Watch (`?watch=true`) streams ADDED / MODIFIED / DELETED events as JSON lines from a
resourceVersion, as the API server does: every change gets the next resourceVersion and
is kept in a bounded history; a watch from a version older than that history gets an
ERROR event with a 410 Expired Status; a watch with a field or label selector sees an
object that stops matching as DELETED and one that starts matching as ADDED; the stream
ends after `timeoutSeconds` (with a BOOKMARK when `allowWatchBookmarks` asks for one).

A test can script the next answers (`enqueue`: a status, headers such as Retry-After, a
delay; a watch request is scripted and recorded under the method "WATCH"), drive a Job's
status (`fail_job`, `complete_job`, `add_pod`, `delete`), expire the event history
(`expire_history`: every open watch and every watch from an older version gets 410),
end the open watches and cut scripted delays short (`close_watches`) and read every
request back (`requests`).

Posted Jobs and Secrets are validated in strict mode against the official schemas, as an
API server would reject an unknown field, unless `validate=False`: that check costs about
30 ms a request, so the benchmark (bench/scheduler_dispatch.py) turns it off. Responses go
out in one write with TCP_NODELAY, so a request costs no Nagle / delayed-ACK stall.

`python -m tests.fake_kube_api [--no-validate]` serves it as a process and prints its URL.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate

SCHEMA_VERSION = kubernetes_validate.latest_version()
WATCH = "WATCH"  # how a GET with ?watch=true is recorded and scripted
DEFAULT_WATCH_SECONDS = 1800  # the API server's default is a random 30 to 60 minutes

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
    method: str  # GET, POST, DELETE, or WATCH for a GET with ?watch=true
    path: str
    resource: str
    name: str | None
    query: dict[str, str]
    body: Obj | None
    headers: dict[str, str]  # names in lower case
    status: int = 0
    at: float = field(default_factory=time.monotonic)  # when it arrived


@dataclass(frozen=True)
class Event:
    """One change, as a watch replays it. `previous`: the object before a modification,
    so a filtered watch can tell an object leaving its selection from one entering it."""

    resource_version: int
    type: str
    resource: str
    namespace: str
    obj: Obj
    previous: Obj | None = None


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


def _selected(obj: Obj | None, query: dict[str, str]) -> bool:
    return obj is not None and (
        _selector_matches(query.get("labelSelector", ""), obj["metadata"].get("labels") or {})
        and _selector_matches(query.get("fieldSelector", ""), _fields(obj))
    )


def _with_version(obj: Obj, version: int) -> Obj:
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(version)}}


def _watch_event(event: Event, query: dict[str, str]) -> Obj | None:
    """What a watch with `query`'s selectors sees of `event`, if anything."""
    now_in, was_in = _selected(event.obj, query), _selected(event.previous, query)
    if event.type == "MODIFIED":
        if now_in and not was_in:
            return {"type": "ADDED", "object": event.obj}
        if was_in and not now_in:  # the old content at the new version, as the API server
            assert event.previous is not None
            return {
                "type": "DELETED",
                "object": _with_version(event.previous, event.resource_version),
            }
    return {"type": event.type, "object": event.obj} if now_in else None


class FakeKubeApi:
    def __init__(self, validate: bool = True, history_limit: int = 100_000) -> None:
        self.validate = validate
        self.history_limit = history_limit
        self.objects: dict[tuple[str, str, str], Obj] = {}  # (resource, namespace, name)
        self.requests: list[Recorded] = []
        self.script: list[Canned] = []
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._server: ThreadingHTTPServer | None = None
        self._resource_version = 1000
        self._history: list[Event] = []
        self._compacted = self._resource_version  # no watch may start before this version
        self._watch_epoch = 0  # bumped by close_watches(): open streams end
        self._open_watches = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self, port: int = 0) -> FakeKubeApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body in one segment, and no Nagle delay on a stream's events.
            disable_nagle_algorithm = True
            wbufsize = 64 * 1024

            def log_message(self, *args: Any) -> None:
                pass

            def handle(self) -> None:
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away (a closed watch)

            def finish(self) -> None:
                with suppress(BrokenPipeError, ConnectionResetError):
                    super().finish()

            def do_GET(self) -> None:
                api._handle(self, "GET")

            def do_POST(self) -> None:
                api._handle(self, "POST")

            def do_DELETE(self) -> None:
                api._handle(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.close_watches()
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

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._resource_version

    def expire_history(self) -> None:
        """As etcd compaction: every version up to now is forgotten, so the open watches
        and any watch from an older version end with 410 Expired; a fresh list works."""
        with self.changed:
            self._resource_version += 1
            self._compacted = self._resource_version
            self._history.clear()
            self.changed.notify_all()

    def close_watches(self) -> None:
        """End every open watch stream, as an API server restart or a load balancer would."""
        with self.changed:
            self._watch_epoch += 1
            self.changed.notify_all()

    def open_watches(self) -> int:
        """How many watch streams are being served now."""
        with self.lock:
            return self._open_watches

    def delete(self, resource: str, name: str, namespace: str = "default") -> None:
        """Remove an object, as the TTL controller removes a finished Job."""
        with self.changed:
            obj = self.objects.pop((resource, namespace, name))
            version = self._next_version()
            self._record("DELETED", resource, namespace, _with_version(obj, version))

    def _set_job_status(self, namespace: str, name: str, status: Obj) -> None:
        with self.changed:
            key = ("jobs", namespace, name)
            previous = self.objects[key]
            job = _with_version({**previous, "status": status}, self._next_version())
            self.objects[key] = job
            self._record("MODIFIED", "jobs", namespace, job, previous)

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
        with self.changed:
            pod = {
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
            self.objects[("pods", namespace, name)] = pod
            self._record("ADDED", "pods", namespace, pod)

    # ------------------------------------------------------------------ history

    def _next_version(self) -> int:
        self._resource_version += 1
        return self._resource_version

    def _meta(self, meta: Obj, namespace: str) -> Obj:
        return {
            **meta,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(self._next_version()),
            "generation": 1,
            "creationTimestamp": now(),
        }

    def _record(
        self, kind: str, resource: str, namespace: str, obj: Obj, previous: Obj | None = None
    ) -> None:
        """Called with the lock held, right after the change got its version."""
        self._history.append(
            Event(self._resource_version, kind, resource, namespace, obj, previous)
        )
        if len(self._history) > self.history_limit:
            dropped = len(self._history) // 2
            self._compacted = self._history[dropped - 1].resource_version
            del self._history[:dropped]
        self.changed.notify_all()

    def _events_after(self, version: int) -> list[Event]:
        start = bisect.bisect_right(self._history, version, key=lambda e: e.resource_version)
        return self._history[start:]

    # ------------------------------------------------------------------ serving

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
        if method == "GET" and name is None and query.get("watch") in ("true", "1"):
            method = WATCH
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
            with self.changed:  # close_watches() cuts a delay short
                epoch = self._watch_epoch
                self.changed.wait_for(lambda: self._watch_epoch != epoch, canned.delay)
        if canned and not canned.passthrough:
            answer = canned.body or status_object(
                canned.status, HTTPStatus(canned.status).phrase.replace(" ", ""), "scripted"
            )
            record.status = canned.status
            self._send(handler, canned.status, answer, canned.headers)
            return
        if method == WATCH:
            record.status = 200
            self._watch(handler, resource, kind, api_version, namespace, query)
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
        if method == "POST" and name is None and self.validate:
            assert body is not None
            try:  # outside the lock: it is the slow part, and reads nothing shared
                kubernetes_validate.validate(body, SCHEMA_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                return 422, status_object(422, "Invalid", str(exc), resource)
        with self.changed:
            if method == "POST" and name is None:
                assert body is not None
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
                self._record("ADDED", resource, namespace, stored)
                return 201, stored
            if method == "GET" and name is None:
                items = [
                    obj
                    for (r, ns, _), obj in sorted(self.objects.items())
                    if r == resource and ns == namespace and _selected(obj, query)
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
                self.delete(resource, name or "", namespace)
                return 200, {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {"name": name, "group": group, "kind": resource},
                }
        return 405, status_object(405, "MethodNotAllowed", f"{method} is not served")

    def _watch(
        self,
        handler: BaseHTTPRequestHandler,
        resource: str,
        kind: str,
        api_version: str,
        namespace: str,
        query: dict[str, str],
    ) -> None:
        """Stream the changes after `resourceVersion` (or every object now, then the
        changes, without one) until `timeoutSeconds` pass or the watches are closed."""
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        since = query.get("resourceVersion") or "0"
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            handler.wfile.flush()  # the client waits for the headers before any event
            with self.lock:
                self._open_watches += 1
                epoch = self._watch_epoch
                if since == "0":
                    cursor = self._resource_version
                    lines = [
                        {"type": "ADDED", "object": obj}
                        for (r, ns, _), obj in sorted(self.objects.items())
                        if r == resource and ns == namespace and _selected(obj, query)
                    ]
                else:
                    cursor, lines = int(since), []
            self._write_events(handler, lines)
            while True:
                expired = False
                with self.changed:
                    while True:
                        if cursor < self._compacted:
                            expired = True
                            break
                        events = self._events_after(cursor)
                        left = deadline - time.monotonic()
                        if events or left <= 0 or epoch != self._watch_epoch:
                            break
                        self.changed.wait(left)
                    current = self._resource_version
                if expired:
                    message = f"too old resource version: {cursor} ({self._compacted})"
                    error = status_object(410, "Expired", message)
                    self._write_events(handler, [{"type": "ERROR", "object": error}])
                    break
                lines = []
                for event in events:
                    cursor = event.resource_version
                    if event.resource == resource and event.namespace == namespace:
                        line = _watch_event(event, query)
                        if line is not None:
                            lines.append(line)
                self._write_events(handler, lines)
                if epoch != self._watch_epoch:
                    break
                if time.monotonic() >= deadline:
                    if query.get("allowWatchBookmarks") in ("true", "1"):
                        mark = {
                            "kind": kind,
                            "apiVersion": api_version,
                            "metadata": {"resourceVersion": str(max(cursor, current))},
                        }
                        self._write_events(handler, [{"type": "BOOKMARK", "object": mark}])
                    break
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client went away
        finally:
            with self.lock:
                self._open_watches -= 1

    @staticmethod
    def _write_events(handler: BaseHTTPRequestHandler, lines: list[Obj]) -> None:
        if not lines:
            return
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        handler.wfile.flush()

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
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a scripted timeout)


@contextmanager
def fake_kube_api(validate: bool = True, history_limit: int = 100_000) -> Iterator[FakeKubeApi]:
    api = FakeKubeApi(validate=validate, history_limit=history_limit).start()
    try:
        yield api
    finally:
        api.stop()


def main() -> None:
    """Serve until SIGTERM / SIGINT; the first line on stdout is the URL."""
    parser = argparse.ArgumentParser(description="the batch/v1 stand-in as a process")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-validate", action="store_true", help="skip strict validation")
    args = parser.parse_args()
    api = FakeKubeApi(validate=not args.no_validate).start(args.port)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(api.url, flush=True)
    stop.wait()
    api.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
