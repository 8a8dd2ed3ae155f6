"""contract.InternalApiClient against a local HTTP server (in a thread of the test process),
and the error Result a runner reports when it cannot grade."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runner_image.contract import (
    RESULT_TOKEN_HEADER,
    CallbackError,
    InternalApiClient,
    Result,
    Status,
    Verdict,
)
from runner_image.main import warm_up


@dataclass
class FakeBackend:
    """Answers with `statuses` in order (the last one repeats) and records every request."""

    url: str
    statuses: list[int]
    requests: list[dict] = field(default_factory=list)

    def next_status(self) -> int:
        index = min(len(self.requests) - 1, len(self.statuses) - 1)
        return self.statuses[index]


@pytest.fixture
def backend(monkeypatch) -> Iterator[Callable[..., FakeBackend]]:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    servers: list[ThreadingHTTPServer] = []

    def start(*statuses: int) -> FakeBackend:
        state = FakeBackend(url="", statuses=list(statuses))

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                state.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status = state.next_status()
                payload = json.dumps({"ok": status < 400, "n": len(state.requests)}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        # The trailing slash checks that the client does not double it.
        state.url = f"http://127.0.0.1:{server.server_address[1]}/internal/"
        return state

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def client_for(url: str, retries: int = 2) -> InternalApiClient:
    return InternalApiClient(url, "token-123", retries=retries, backoff=0, timeout=5)


GRADED = Result(status=Status.GRADED, verdict=Verdict.ACCEPTED, score=100.0, max_score=100.0)


def test_retries_through_503_and_succeeds(backend):
    server = backend(503, 503, 200)
    client = client_for(server.url)
    try:
        response = client.post_result("s1", GRADED)
    finally:
        client.close()
    assert response == {"ok": True, "n": 3}
    assert len(server.requests) == 3
    for request in server.requests:
        assert request["path"] == "/internal/submissions/s1/result"
        assert request["headers"][RESULT_TOKEN_HEADER] == "token-123"
        assert request["headers"]["Content-Type"] == "application/json"
        body = json.loads(request["body"])
        assert body == GRADED.model_dump(mode="json")
        assert (body["status"], body["score"]) == ("graded", 100.0)
        assert Result.model_validate(body) == GRADED


def test_post_status_body(backend):
    server = backend(200)
    client = client_for(server.url)
    try:
        client.post_status("s1", Status.RUNNING, job_name="runner-s1")
        client.post_status("s2", Status.RUNNING)
    finally:
        client.close()
    assert [r["path"] for r in server.requests] == [
        "/internal/submissions/s1/status",
        "/internal/submissions/s2/status",
    ]
    assert json.loads(server.requests[0]["body"]) == {"status": "running", "job_name": "runner-s1"}
    assert json.loads(server.requests[1]["body"]) == {"status": "running"}


def test_persistent_500_raises_after_the_retries(backend):
    server = backend(500)
    client = client_for(server.url, retries=2)
    try:
        with pytest.raises(CallbackError, match="500"):
            client.post_result("s1", GRADED)
    finally:
        client.close()
    assert len(server.requests) == 3


def test_409_is_not_retried(backend):
    server = backend(409, 200)
    client = client_for(server.url)
    try:
        with pytest.raises(CallbackError, match="409") as refused:
            client.post_result("s1", GRADED)
    finally:
        client.close()
    assert len(server.requests) == 1
    assert refused.value.status_code == 409


def test_unreachable_backend_raises_callback_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = client_for(f"http://127.0.0.1:{port}/internal")
    try:
        with pytest.raises(CallbackError):
            client.post_status("s1", Status.RUNNING)
    finally:
        client.close()


def test_error_result_shape():
    result = Result.error("the bundle expired")
    assert isinstance(result, Result)
    assert result.status == "error"
    assert result.verdict == "internal_error"
    assert result.score is None
    assert result.fail_tags == []
    assert result.tests == []
    assert result.metrics == {"error": "the bundle expired"}
    assert "the bundle expired" in result.feedback
    body = result.model_dump(mode="json")
    assert (body["status"], body["verdict"], body["score"]) == ("error", "internal_error", None)


def test_a_prepared_post_is_what_would_be_sent_and_sends_nothing(backend):
    server = backend(200)
    client = client_for(server.url)
    try:
        prepared = client.prepare_post("/submissions/s1/status", {"status": "running"})
    finally:
        client.close()

    assert prepared.method == "POST"
    assert prepared.url == server.url.rstrip("/") + "/submissions/s1/status"
    assert prepared.headers[RESULT_TOKEN_HEADER] == "token-123"
    assert json.loads(prepared.body) == {"status": "running"}
    assert server.requests == []


def test_the_fork_servers_warm_up_holds_no_secret_and_sends_nothing(monkeypatch):
    """runner_image.main.warm_up, as the fork server runs it (started with PATH alone):
    nothing is added to its environment, and its placeholder backend (a port nothing
    listens on, so a call would raise) is never called."""
    monkeypatch.setattr(os, "environ", {"PATH": "/usr/bin"})

    warm_up()

    assert os.environ == {"PATH": "/usr/bin"}
