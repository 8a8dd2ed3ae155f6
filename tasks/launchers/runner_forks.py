"""The launcher's side of the runner fork server (runner_image.forkserver): start it with no
secret, ask it for one runner per submission, and learn how each runner ended."""

from __future__ import annotations

import contextlib
import json
import math
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from runner_image.forkserver import WITH_LLM

# How long a fork may take to be confirmed before the launch counts as failed.
SPAWN_TIMEOUT_SECONDS = 30
# How often a runner whose server has gone is checked for, until it ends.
ORPHAN_POLL_SECONDS = 0.5


class ForkServerGone(OSError):
    """The fork server ended (or never started); the next spawn starts a new one."""


def process_exists(pid: int) -> bool:
    """Whether `pid` runs: a zombie (ended, not yet reaped by its new parent) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class ForkedRunner:
    """One runner the server forked, waited for like a `subprocess.Popen`. Its exit code is
    None when nobody could tell it: its server ended before the runner did."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._ended = threading.Event()
        self._orphaned = threading.Event()

    def ended(self, code: int) -> None:
        self.returncode = code
        self._ended.set()

    def orphaned(self) -> None:
        self._orphaned.set()

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ended.is_set():
            if self._orphaned.is_set() and not process_exists(self.pid):
                return None
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"runner {self.pid}", timeout or 0)
            self._ended.wait(min(ORPHAN_POLL_SECONDS, left if left is not None else math.inf))
        return self.returncode


class _Server:
    """One fork server process, and the runners it forked that have not ended yet (only its
    reader thread touches them)."""

    def __init__(self, with_llm: bool) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runner_image.forkserver", *([WITH_LLM] if with_llm else [])],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.started: queue.Queue[ForkedRunner | ForkServerGone] = queue.Queue()
        self.runners: dict[int, ForkedRunner] = {}
        threading.Thread(target=self._read_events, name="runner-forks", daemon=True).start()

    def _read_events(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            if "started" in event:
                runner = ForkedRunner(event["started"])
                self.runners[runner.pid] = runner
                self.started.put(runner)
            elif (runner := self.runners.pop(event["pid"], None)) is not None:
                runner.ended(event["exit"])
        self.process.wait()
        self.started.put(ForkServerGone(f"the fork server exited with {self.process.returncode}"))
        for runner in self.runners.values():
            runner.orphaned()

    def spawn(self, env: dict[str, str]) -> ForkedRunner:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps({"env": env}).encode() + b"\n")
            self.process.stdin.flush()
            answer = self.started.get(timeout=SPAWN_TIMEOUT_SECONDS)
        except (OSError, queue.Empty) as exc:
            with contextlib.suppress(OSError):
                self.process.kill()
            raise ForkServerGone(f"the runner fork server did not fork: {exc!r}") from exc
        if isinstance(answer, ForkServerGone):
            raise answer
        return answer


class RunnerForkServer:
    """One fork server per launcher (per worker process), started on first use and again
    after it ends. Its environment is PATH alone: whatever secret the worker holds stays in
    the worker, and each runner gets only the environment its spawn request carries.
    `with_llm` has it import the LLM client too, for runners that will call the model."""

    def __init__(self, with_llm: bool = False) -> None:
        self._with_llm = with_llm
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def spawn(self, env: dict[str, str]) -> ForkedRunner:
        """Fork a runner with `env`. Raises ForkServerGone when the server cannot do it."""
        with self._lock:
            return self._running().spawn(env)

    def start(self) -> None:
        """Start the server now rather than at the first spawn (its imports take a while)."""
        with self._lock:
            self._running()

    def _running(self) -> _Server:
        if self._server is None or self._server.process.poll() is not None:
            try:
                self._server = _Server(self._with_llm)
            except OSError as exc:
                raise ForkServerGone(f"cannot start the runner fork server: {exc}") from exc
        return self._server

    def close(self) -> None:
        """Closing its stdin ends the server; the runners it forked go on."""
        with self._lock:
            if self._server is not None and self._server.process.stdin is not None:
                with contextlib.suppress(OSError):
                    self._server.process.stdin.close()
