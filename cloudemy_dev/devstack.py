"""The embedded default: Redis, the webapp and a scheduler worker on this machine, with no
set-up. `cloudemy dev`, `cloudemy demo` and the integration tests all start it this way."""

from __future__ import annotations

import ctypes
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis
import requests
from celery import Celery

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StackFailed(RuntimeError):
    """A part of the dev stack could not start; the message says which and why."""


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _die_with_parent() -> None:
    """A child of the dev stack gets SIGTERM if the process that started it dies."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def wait_until(
    check, timeout: float, what: str, watched: list[subprocess.Popen] | None = None
) -> None:
    """Poll `check` until it holds; fail at once if a watched process has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in watched or ():
            if process.poll() is not None:
                raise StackFailed(
                    f"{what} did not start: {' '.join(map(str, process.args[:4]))} exited "
                    f"with code {process.returncode}"
                )
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise StackFailed(f"{what} did not come up within {timeout:.0f} s")


@contextmanager
def private_redis() -> Iterator[str]:
    """A private redis-server on a free port, or fakeredis's TCP server when there is none."""
    port = free_port()
    binary = shutil.which("redis-server")
    if binary:
        workdir = tempfile.mkdtemp(prefix="cloudemy-redis-")
        process = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        url = f"redis://127.0.0.1:{port}/0"
        try:
            wait_until(lambda: redis.Redis.from_url(url).ping(), 15, "redis-server", [process])
            yield url
        finally:
            process.terminate()
            process.wait(10)
            shutil.rmtree(workdir, ignore_errors=True)
        return
    from fakeredis import TcpFakeServer

    log.warning("redis-server is not installed: using fakeredis's embedded Redis server")
    server = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.shutdown()
        server.server_close()


# A supervised part that ends is started again after this long, doubled each time it ends
# within CRASH_LOOP_SECONDS of its start, up to RESTART_DELAY_MAX_SECONDS: a part that
# cannot run is retried slowly, as Kubernetes backs off a crash-looping container.
RESTART_DELAY_SECONDS = 0.5
RESTART_DELAY_MAX_SECONDS = 30.0
CRASH_LOOP_SECONDS = 10.0


@dataclass
class DevStack:
    """The running stack. Its parts are named (`webapp`, `worker`, `reconciler`) so that a
    test can kill one and watch it come back (tests/faults)."""

    api_url: str
    redis_url: str
    env: dict[str, str]
    commands: dict[str, list[str]] = field(default_factory=dict)
    parts: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_dir: Path | None = None
    supervised: frozenset[str] = frozenset()
    restarts: dict[str, int] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    @property
    def processes(self) -> list[subprocess.Popen]:
        return list(self.parts.values())

    def start(self, name: str) -> subprocess.Popen:
        """Start part `name` (again), its output appended to its log. The part gets SIGTERM
        when the calling *thread* ends (PR_SET_PDEATHSIG follows the thread): call this
        from a thread that lives as long as the stack."""
        log = open(self.log_dir / f"{name}.log", "ab") if self.log_dir else None  # noqa: SIM115
        try:
            self.parts[name] = subprocess.Popen(
                self.commands[name],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                preexec_fn=_die_with_parent,
            )
        finally:
            if log:
                log.close()  # the child has its own copy
        return self.parts[name]

    def wait_for_worker(self, timeout: float = 120) -> None:
        """Fails at once if an unsupervised part ends meanwhile; a supervised worker that
        ends is being started again, so only the timeout fails for it."""
        unsupervised = [p for name, p in self.parts.items() if name not in self.supervised]
        wait_until(
            lambda: _worker_is_up(self.redis_url), timeout, "the scheduler worker", unsupervised
        )

    def supervise(self, names: frozenset[str]) -> None:
        """From now on, start each of `names` again whenever it ends, as a Deployment
        replaces its pod: a Celery worker exits on some broker failures (a Redis restart
        can end it with "Unrecoverable error"), and production would bring it back. The
        webapp is not supervised: its in-process MongoDB stand-in would not survive it."""
        self.supervised = names
        self._supervisor = threading.Thread(
            target=self._restart_ended_parts, name="dev-stack-supervisor", daemon=True
        )
        self._supervisor.start()

    def _restart_ended_parts(self) -> None:
        """The parts this thread starts get SIGTERM when it ends (PR_SET_PDEATHSIG): it runs
        until the stack stops."""
        started = {name: time.monotonic() for name in self.supervised}
        delay = dict.fromkeys(self.supervised, RESTART_DELAY_SECONDS)
        while not self._stopping.wait(0.2):
            for name in self.supervised:
                code = self.parts[name].poll()
                if code is None:
                    continue
                crashed_soon = time.monotonic() - started[name] < CRASH_LOOP_SECONDS
                delay[name] = (
                    min(delay[name] * 2, RESTART_DELAY_MAX_SECONDS)
                    if crashed_soon
                    else RESTART_DELAY_SECONDS
                )
                log.warning("the %s exited with code %s; starting it again", name, code)
                if self._stopping.wait(delay[name]):
                    return
                self.start(name)
                self.restarts[name] = self.restarts.get(name, 0) + 1
                started[name] = time.monotonic()

    def stop(self) -> None:
        """Stop supervising, then every part, the last started first."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
        for process in reversed(self.processes):
            stop_process(process)


def stack_env(redis_url: str, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MONGO_URI", "mongomock://localhost")
    env.setdefault("INTERNAL_RESULT_TOKEN", secrets.token_hex(32))
    env.setdefault("SECRET_KEY", secrets.token_hex(32))
    env.update(
        {
            "REDIS_URL": redis_url,
            "BACKEND_INTERNAL_URL": f"http://127.0.0.1:{port}/internal",
            "RUNNER_LAUNCHER": "local",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


def stop_process(process: subprocess.Popen) -> None:
    """TERM, then KILL if it is still there after 15 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def dev_stack(
    port: int | None = None,
    redis_url: str | None = None,
    extra_env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    worker_concurrency: int = 2,
) -> Iterator[DevStack]:
    """Start Redis (private unless `redis_url` is given), the webapp under gunicorn, one
    Celery worker with the local launcher, and the reconciler, whose passes have the
    backend sweep what the pipeline dropped (as in production); stop them all on exit."""
    port = port or free_port()
    if port_in_use(port):
        raise StackFailed(
            f"port {port} is already in use (another Cloudemy, or another program); "
            "choose another with --port or PORT"
        )
    with _redis_for_stack(redis_url) as url:
        env = stack_env(url, port, extra_env)
        python = [sys.executable, "-m"]
        stack = DevStack(
            api_url=f"http://127.0.0.1:{port}",
            redis_url=url,
            env=env,
            log_dir=log_dir,
            commands={
                "webapp": [*python, "cloudemy_dev.embedded", "--bind", f"127.0.0.1:{port}"],
                "worker": [
                    *python,
                    "webapp.cli",
                    "worker",
                    "--concurrency",
                    str(worker_concurrency),
                ],
                "reconciler": [*python, "webapp.cli", "reconcile"],
            },
        )
        try:
            stack.start("webapp")
            stack.start("worker")
            wait_until(
                lambda: requests.get(f"{stack.api_url}/readyz", timeout=2).ok,
                120,  # a part that dies is reported at once; a slow machine is given time
                "the webapp",
                stack.processes,
            )
            stack.wait_for_worker()
            # After the webapp: its first pass calls the backend at once.
            stack.start("reconciler")
            stack.supervise(frozenset({"worker", "reconciler"}))
            yield stack
        finally:
            stack.stop()


@contextmanager
def _redis_for_stack(given: str | None) -> Iterator[str]:
    if given:
        yield given
    else:
        with private_redis() as url:
            yield url


def _worker_is_up(redis_url: str) -> bool:
    app = Celery("cloudemy-dev", broker=redis_url, set_as_current=False)
    try:
        return bool(app.control.ping(timeout=1.0))
    finally:
        app.close()
