"""The fault suite's parts: a redis-server that can be restarted on its port (with or
without its append-only file), a gate in front of the backend's internal URL that can
refuse connections for a while, a load of submissions over the public API, and the
figures of a scenario."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import redis
import requests

from cloudemy_dev.demo_data import DEMO_ASSIGNMENT_TITLE, DEMO_STUDENT, SOLUTIONS
from cloudemy_dev.devstack import DevStack, free_port, wait_until
from runner_image.contract import FINAL_STATUSES

# What each solution of the demo assignment must end as, whatever was done to the stack.
EXPECTED = {
    "correct": ("graded", "accepted"),
    "wrong": ("graded", "wrong_answer"),
}


# Long enough that a runner on a busy 2-core machine finishes well within its deadline (with
# four other test suites on the machine, runners took 15 s just to start, and one killed at
# its deadline counts as lost); only the hanging runner waits for it. The sweep's own
# thresholds are short, so that recovery happens within the run.
DEADLINE_SECONDS = 60
SWEEP_PERIOD_SECONDS = 1
SWEEP_GRACE_SECONDS = 2
REQUEUE_AFTER_SECONDS = 6


def count(variable: str, default: int) -> int:
    return int(os.environ.get(variable) or default)


SUBMISSIONS = count("FAULTS_SUBMISSIONS", 16)
WORKER_KILL_SUBMISSIONS = count("FAULTS_WORKER_KILL_SUBMISSIONS", 200)
TOKENS = count("FAULTS_TOKENS", 1000)
# Submissions open at once: a class submitting steadily, never more than this machine grades
# within a deadline.
IN_FLIGHT = count("FAULTS_IN_FLIGHT", 3)

TABLE: list[Figures] = []


class RedisServer:
    """redis-server on a fixed port and directory, so that a restart is the same server
    coming back: with `aof` its append-only file brings the queue and the bundles back,
    without it everything in it is gone."""

    def __init__(self, workdir: Path, aof: bool = True) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.aof = aof
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required (apt-get install redis-server)"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.aof else "no",
                "--appendfsync",
                "everysec",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_until(
            lambda: redis.Redis.from_url(self.url).ping(), 15, "redis-server", [self.process]
        )

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # a clean shutdown: the append-only file is flushed
            self.process.wait(15)

    def restart(self, aof: bool, down_seconds: float = 1.0) -> None:
        self.stop()
        if not aof:
            for leftover in self.workdir.iterdir():  # a fresh pod without a volume
                if leftover.is_dir():
                    shutil.rmtree(leftover)
                else:
                    leftover.unlink()
        self.aof = aof
        time.sleep(down_seconds)
        self.start()


class Gate:
    """A TCP relay in front of the backend. `close()` makes the backend unreachable through
    it (new connections refused, open ones reset) while the backend itself keeps running,
    and with it the in-process MongoDB stand-in's data; `open()` lets traffic through again.
    Runners, the scheduler and the reconciler reach the backend only through it."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target = ("127.0.0.1", target_port)
        self.url = f"http://127.0.0.1:{self.port}/internal"
        self._listener: socket.socket | None = None
        self._open_sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for sock in list(self._open_sockets):
                with contextlib.suppress(OSError):
                    sock.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    sock.close()
            self._open_sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open_sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._lock:
                self._open_sockets -= {source, sink}


@dataclass
class Figures:
    """One row of the table."""

    scenario: str
    submitted: int = 0
    final: int = 0
    lost: int = 0
    duplicated: int = 0
    drain_seconds: float | None = None
    notes: str = ""
    lost_ids: list[str] = field(default_factory=list)


class Client:
    """The demo student over the public API."""

    def __init__(self, stack: DevStack) -> None:
        self.api = stack.api_url
        self.refused = 0  # submits answered 503 (and retried)
        self.session = requests.Session()
        response = self.session.post(
            f"{self.api}/api/auth/login",
            json={"email": DEMO_STUDENT["email"], "password": DEMO_STUDENT["password"]},
            timeout=15,
        )
        response.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        items = self.session.get(f"{self.api}/api/assignments", timeout=15).json()["items"]
        self.assignment_id = next(a["id"] for a in items if a["title"] == DEMO_ASSIGNMENT_TITLE)

    # Every submission any scenario made: a scenario starts once all earlier ones are final,
    # so that its figures are its own.
    everything: ClassVar[list[str]] = []

    def submit(self, label: str, retry_for: float = 30) -> str:
        """A submission of the demo `label` solution; a refusal (503 while Redis restarts)
        is retried as a student would, up to `retry_for` seconds."""
        deadline = time.monotonic() + retry_for
        while True:
            try:
                response = self.session.post(
                    f"{self.api}/api/assignments/{self.assignment_id}/submissions",
                    json={"code": SOLUTIONS[label]},
                    timeout=15,
                )
            except requests.RequestException:
                response = None
            if response is not None and response.status_code == 202:
                self.everything.append(response.json()["id"])
                return response.json()["id"]
            self.refused += 1
            if time.monotonic() > deadline:
                detail = response.text if response is not None else "no answer"
                raise AssertionError(f"submit refused for {retry_for} s: {detail}")
            time.sleep(0.5)

    def states(self, ids: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for submission_id in ids:
            response = self.session.get(f"{self.api}/api/submissions/{submission_id}", timeout=15)
            response.raise_for_status()
            found[submission_id] = response.json()
        return found

    def wait_final(self, ids: list[str], timeout: float) -> tuple[dict[str, dict], float]:
        """Every submission's last state, and when the last one became final (monotonic)."""
        pending = set(ids)
        states: dict[str, dict] = {}
        last_final = time.monotonic()
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for submission_id, state in self.states(sorted(pending)).items():
                states[submission_id] = state
                if state["status"] in FINAL_STATUSES:
                    pending.discard(submission_id)
                    last_final = time.monotonic()
            if pending:
                time.sleep(1)
        return states, last_final


@dataclass
class FaultStack:
    stack: DevStack
    redis: RedisServer
    gate: Gate
    metrics_token: str


def stored_results(stack: DevStack, metrics_token: str) -> tuple[int, int]:
    """(results stored, results refused as conflicting) so far: the backend's own counters
    (one gunicorn worker, so one process holds them all)."""
    text = requests.get(
        f"{stack.api_url}/metrics",
        headers={"Authorization": f"Bearer {metrics_token}"},
        timeout=15,
    ).text
    stored = conflicts = 0
    for line in text.splitlines():
        if line.startswith("cloudemy_grading_seconds_count"):
            stored = int(float(line.split()[-1]))
        if (
            line.startswith("cloudemy_http_requests_total")
            and 'endpoint="internal.post_result"' in line
            and 'status="409"' in line
        ):
            conflicts += int(float(line.split()[-1]))
    return stored, conflicts


def judge(figures: Figures, labels: dict[str, str], states: dict[str, dict]) -> None:
    """Lost: not final, or not the verdict its code deserves (an `error` the fault caused)."""
    figures.submitted = len(labels)
    for submission_id, label in labels.items():
        state = states.get(submission_id, {})
        if state.get("status") in FINAL_STATUSES:
            figures.final += 1
        if (state.get("status"), state.get("verdict")) != EXPECTED[label]:
            figures.lost += 1
            figures.lost_ids.append(f"{submission_id}:{state.get('status')}/{state.get('verdict')}")


def worker_tree(stack: DevStack) -> list[int]:
    """The Celery worker's main process and its pool processes (not the runners, which are
    sessions of their own, as runner pods are apart from the scheduler's pod)."""
    main = stack.parts["worker"].pid
    pids = [main]
    children = Path(f"/proc/{main}/task/{main}/children")
    with contextlib.suppress(OSError):
        for pid in map(int, children.read_text().split()):
            if os.getsid(pid) == os.getsid(main):
                pids.append(pid)
    return pids


def kill_worker(stack: DevStack) -> None:
    """SIGKILL, as the kernel's OOM killer or a node failure would: no warm shutdown, no
    acknowledgement of the tasks it holds. The stack's supervisor starts another."""
    worker = stack.parts["worker"]
    for pid in worker_tree(stack):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    worker.wait(10)


def paced(count: int, rate: float, action: Callable[[int], None]) -> None:
    """`action(i)` for i < count, `rate` per second."""
    started = time.monotonic()
    for index in range(count):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        action(index)
