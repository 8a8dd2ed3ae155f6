"""The runner fork server (runner_image.forkserver) and the launcher's client for it
(tasks.launchers.runner_forks), as real processes: what a forked runner is given, how its end
is learnt, and what happens when the server goes away."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner_image.forkserver import RUNNER_NICENESS
from tasks.launchers.runner_forks import ForkServerGone, RunnerForkServer, process_exists

SECRET = "the-server-secret-" * 3


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunnerForkServer]:
    # What a worker holds: the server must not inherit it.
    monkeypatch.setenv("INTERNAL_RESULT_TOKEN", SECRET)
    server = RunnerForkServer()
    yield server
    server.close()


@pytest.fixture
def silent_backend() -> Iterator[str]:
    """Accepts connections and never answers: a runner posting its status to it waits."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/internal"
    listener.close()


def runner_env(backend_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "SUBMISSION_ID": "65a0000000000000000000aa",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "BACKEND_INTERNAL_URL": backend_url,
        "INTERNAL_RESULT_TOKEN": "scoped-token-of-one-submission",
    }


def server_pid(forks: RunnerForkServer) -> int:
    assert forks._server is not None
    return forks._server.process.pid


def environ_of(pid: int) -> bytes:
    return Path(f"/proc/{pid}/environ").read_bytes()


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while process_exists(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process_exists(pid)


def test_a_runner_with_bad_settings_ends_with_their_exit_code(forks):
    runner = forks.spawn({"PATH": os.environ["PATH"]})

    assert runner.wait(30) == 2  # runner_image.main: invalid settings


def test_the_server_holds_no_secret_and_each_runner_only_its_own_environment(forks, silent_backend):
    runner = forks.spawn(runner_env(silent_backend))
    try:
        assert SECRET.encode() not in environ_of(server_pid(forks))
        assert SECRET.encode() not in environ_of(runner.pid)
        # A session of its own, so a deadline's killpg ends the runner and all it started.
        assert os.getsid(runner.pid) == runner.pid
        assert os.getsid(runner.pid) != os.getsid(server_pid(forks))
        with pytest.raises(subprocess.TimeoutExpired):
            runner.wait(0.3)  # still posting its status to a backend that never answers
    finally:
        os.killpg(runner.pid, signal.SIGKILL)
    assert runner.wait(10) == -signal.SIGKILL


def test_runners_are_forked_concurrently_and_each_end_is_told_apart(forks, silent_backend):
    waiting = forks.spawn(runner_env(silent_backend))
    quick = [forks.spawn({"PATH": os.environ["PATH"]}) for _ in range(4)]
    try:
        assert [runner.wait(30) for runner in quick] == [2, 2, 2, 2]
        assert len({runner.pid for runner in [waiting, *quick]}) == 5
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(0.1)
    finally:
        os.killpg(waiting.pid, signal.SIGKILL)
    assert waiting.wait(10) == -signal.SIGKILL


def test_when_the_server_dies_its_runners_go_on_and_a_new_server_takes_over(forks, silent_backend):
    runner = forks.spawn(runner_env(silent_backend))
    first_server = server_pid(forks)
    os.kill(first_server, signal.SIGKILL)
    assert wait_gone(first_server)

    assert process_exists(runner.pid)  # not killed with its server
    os.killpg(runner.pid, signal.SIGKILL)
    # Nobody can tell its exit code any more: None, once it is gone.
    assert runner.wait(30) is None

    replacement = forks.spawn({"PATH": os.environ["PATH"]})
    assert server_pid(forks) != first_server
    assert replacement.wait(30) == 2


def test_closing_ends_the_server_but_not_its_runners(forks, silent_backend):
    runner = forks.spawn(runner_env(silent_backend))
    pid = server_pid(forks)

    forks.close()

    assert wait_gone(pid)
    assert process_exists(runner.pid)
    os.killpg(runner.pid, signal.SIGKILL)


def test_a_server_that_cannot_start_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("sys.executable", "/nonexistent/python")

    with pytest.raises(ForkServerGone, match="cannot start the runner fork server"):
        RunnerForkServer().spawn({"PATH": os.environ["PATH"]})


def test_a_runner_ends_with_its_exit_handlers_run_and_no_interpreter_teardown(tmp_path):
    """forkserver.end_runner: what a runner registered to run at exit (its cgroup's removal)
    runs and its last log line is written, with its exit code; the interpreter's teardown,
    which would free every object the runner shares with the server, does not run."""
    handler, teardown = tmp_path / "handler", tmp_path / "teardown"
    script = f"""
import atexit, logging, pathlib
from runner_image.forkserver import end_runner

class Kept:
    def __del__(self):
        pathlib.Path({str(teardown)!r}).write_text("ran")

kept = Kept()  # a module global: only the interpreter's teardown deletes it
atexit.register(pathlib.Path({str(handler)!r}).write_text, "ran")
logging.basicConfig(level=logging.INFO, format="%(message)s")
logging.getLogger("runner").info("last words")
end_runner(3)
"""
    ended = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )

    assert ended.returncode == 3
    assert "last words" in ended.stderr
    assert handler.read_text() == "ran"
    assert not teardown.exists()


def test_runners_yield_the_cpu_to_the_platform(forks, silent_backend):
    """Forked runners (and so the programs they run) have a lower priority than the worker
    and the webapp they share the machine with."""
    runner = forks.spawn(runner_env(silent_backend))
    try:
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, runner.pid) == min(ours + RUNNER_NICENESS, 19)
        assert RUNNER_NICENESS > 0
    finally:
        os.killpg(runner.pid, signal.SIGKILL)
    assert runner.wait(10) == -signal.SIGKILL
