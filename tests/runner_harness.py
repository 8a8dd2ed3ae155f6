"""Fixtures that run the real runner process (`python -m runner_image`) against a private
Redis and a recording stand-in for the backend's internal API, so submissions meet exactly
what production runs. Imported by the conftest of each suite that needs them.

Each run knows the sandbox uid its runner gave the submission's processes (a function of the
runner's pid), so a check for leftover processes looks at that uid only, never at processes
of other runners or test sessions on the same machine."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from cloudemy_dev.devstack import private_redis
from runner_image.contract import Bundle, bundle_key


@dataclass
class RecordingBackend:
    url: str
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def result_for(self, submission_id: str) -> dict[str, Any]:
        results = [body for path, body in self.posts if path.endswith(f"{submission_id}/result")]
        assert len(results) == 1, f"expected one result for {submission_id}, got {results}"
        return results[0]


@pytest.fixture(scope="session")
def backend() -> Iterator[RecordingBackend]:
    recorder = RecordingBackend(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            recorder.posts.append((self.path, body))
            payload = b'{"stored": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}/internal"
    yield recorder
    server.shutdown()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


@dataclass
class RunnerRun:
    result: dict[str, Any]
    secrets: tuple[str, ...]
    stderr: str
    returncode: int
    runner_pid: int
    # The uid the runner ran the submission as (when it could switch uids, i.e. as root),
    # as its log says.
    sandbox_uid: int | None

    def verdicts(self) -> list[str]:
        return [t["verdict"] for t in self.result["tests"]]

    def leftover_processes(self) -> list[int]:
        """Processes of this run's submission still alive after its runner exited."""
        assert self.sandbox_uid is not None, "the runner ran without a sandbox uid"
        return sandbox_processes([self.sandbox_uid])


def logged_sandbox_uid(runner_log: str) -> int | None:
    found = re.search(r"sandbox uid (\d+)", runner_log)
    return int(found.group(1)) if found else None


def sandbox_processes(uids: Iterable[int]) -> list[int]:
    """Processes still running under one of `uids` (sandbox uids of runs started here)."""
    wanted = set(uids)
    alive = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in wanted:
                    alive.append(int(entry.name))
            except OSError:
                continue
    return alive


@pytest.fixture
def run_submission(backend: RecordingBackend, redis_url: str):
    def run(
        code: str,
        tests: list[dict[str, Any]],
        language: str = "python",
        time_limit_ms: int = 1000,
        memory_limit_mb: int = 128,
        require_isolation: str = "strict",
    ) -> RunnerRun:
        submission_id = uuid.uuid4().hex[:24]
        bundle = Bundle.model_validate(
            {
                "submission_id": submission_id,
                "language": language,
                "code": code,
                "tests": tests,
                "time_limit_ms": time_limit_ms,
                "memory_limit_mb": memory_limit_mb,
                "max_score": 100,
            }
        )
        client = redis.Redis.from_url(redis_url)
        try:
            client.set(bundle_key(submission_id), bundle.model_dump_json())
        finally:
            client.close()
        token, key = secrets.token_hex(24), "sk-" + secrets.token_hex(24)
        env = {
            "PATH": os.environ["PATH"],
            "SUBMISSION_ID": submission_id,
            "REDIS_URL": redis_url,
            "BACKEND_INTERNAL_URL": backend.url,
            "INTERNAL_RESULT_TOKEN": token,
            "LLM_API_KEY": key,
            "RUNNER_REQUIRE_ISOLATION": require_isolation,
            # A key is set so the suites can check it never leaks; nothing listens here, and
            # without retries the refused call costs nothing.
            "LLM_BASE_URL": "http://127.0.0.1:9/v1",
            "LLM_MAX_RETRIES": "0",
        }
        # Popen rather than run: the runner's pid tells which sandbox uid it used.
        runner = subprocess.Popen(
            [sys.executable, "-m", "runner_image"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, stderr = runner.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            runner.kill()
            runner.communicate()
            raise
        return RunnerRun(
            result=backend.result_for(submission_id),
            secrets=(token, key),
            stderr=stderr,
            returncode=runner.returncode,
            runner_pid=runner.pid,
            sandbox_uid=logged_sandbox_uid(stderr),
        )

    return run


# The layers a hostile run is checked against: fresh namespaces, a cgroup, a uid of its
# own (so that every leftover process would be its uid's) and the seccomp filter.
NAMESPACED_LAYERS = {"namespaces", "cgroup", "uid", "seccomp"}


def assert_contained(run: RunnerRun) -> None:
    """Reported normally at the namespaced level with every layer, leaked no runner secret
    and left nothing running under its sandbox uid."""
    assert run.returncode == 0, run.stderr
    metrics = run.result["metrics"]
    assert metrics["isolation_level"] == "namespaced", metrics
    assert set(metrics["isolation"]) >= NAMESPACED_LAYERS, metrics["isolation"]
    assert run.sandbox_uid is not None
    reported = json.dumps(run.result)
    for secret in run.secrets:
        assert secret not in reported
        assert secret not in run.stderr
    deadline = time.monotonic() + 5
    while run.leftover_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.leftover_processes() == []
