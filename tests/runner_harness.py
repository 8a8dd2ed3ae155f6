"""Fixtures that run the real runner process (`python -m runner_image`) against a private
Redis and a recording stand-in for the backend's internal API, so submissions meet exactly
what production runs. Imported by the conftest of each suite that needs them."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis

from runner_image.bundle import BUNDLE_KEY
from webapp.devstack import private_redis

SANDBOX_UIDS = range(100_000, 150_000)


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

    def verdicts(self) -> list[str]:
        return [t["verdict"] for t in self.result["tests"]]


def sandbox_processes() -> list[int]:
    """Processes still running under any sandbox uid."""
    alive = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid in SANDBOX_UIDS:
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
        bundle = {
            "submission_id": submission_id,
            "language": language,
            "code": code,
            "tests": tests,
            "time_limit_ms": time_limit_ms,
            "memory_limit_mb": memory_limit_mb,
            "max_score": 100,
        }
        redis.Redis.from_url(redis_url).set(BUNDLE_KEY.format(id=submission_id), json.dumps(bundle))
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
        completed = subprocess.run(
            [sys.executable, "-m", "runner_image"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return RunnerRun(
            result=backend.result_for(submission_id),
            secrets=(token, key),
            stderr=completed.stderr,
            returncode=completed.returncode,
        )

    return run
