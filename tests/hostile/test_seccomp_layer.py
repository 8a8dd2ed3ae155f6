"""The seccomp layer on its own, as in an unprivileged Kubernetes pod where namespaces and a
uid switch are refused: it alone must keep the network closed, the runner alive and the
process group whole."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from runner_image.sandbox.isolation import Isolation
from runner_image.sandbox.languages import SANDBOX_PATH
from runner_image.sandbox.process import Limits, execute

# libseccomp, or the suite fails under CI / is skipped loudly (conftest.py).
pytestmark = pytest.mark.usefixtures("seccomp_filter")

PROBES = """\
import ctypes, os, signal, socket
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, action):
    try:
        action()
        print(name, "allowed")
    except OSError as exc:
        print(name, "refused", exc.errno)
attempt("inet", lambda: socket.socket(socket.AF_INET).close())
attempt("inet6", lambda: socket.socket(socket.AF_INET6).close())
attempt("unix", lambda: socket.socket(socket.AF_UNIX).close())
attempt("kill-runner", lambda: os.kill(RUNNER, signal.SIGKILL))
child = os.fork()  # the program itself already leads a session; a child does not
if child == 0:
    try:
        os.setsid()
        os._exit(0)
    except OSError as exc:
        os._exit(exc.errno)
code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
print("setsid", "refused" if code else "allowed", code)
io_uring_setup = libc.syscall(425, 1, ctypes.create_string_buffer(120))
print("io_uring", "refused" if io_uring_setup < 0 else "allowed", ctypes.get_errno())
queued = libc.syscall(129, RUNNER, signal.SIGINT, ctypes.create_string_buffer(128))
print("rt_sigqueueinfo", "refused" if queued < 0 else "allowed", ctypes.get_errno())
ctypes.set_errno(0)
sent = libc.syscall(424, 0, signal.SIGINT, None, 0)
print("pidfd_send_signal", "refused" if sent < 0 else "allowed", ctypes.get_errno())
"""


@pytest.fixture
def stand_in_runner():
    """A process playing the runner, so a failed filter could only kill this one."""
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid
    process.kill()
    process.wait()


def test_seccomp_alone_refuses_network_signals_to_the_runner_and_new_sessions(stand_in_runner):
    isolation = Isolation(seccomp=True, runner_pid=stand_in_runner)
    workdir = Path(tempfile.mkdtemp())
    python = next(
        str(Path(folder) / "python3")
        for folder in SANDBOX_PATH.split(":")
        if (Path(folder) / "python3").exists()
    )
    execution = execute(
        [python, "-I", "-S", "-c", PROBES.replace("RUNNER", str(stand_in_runner))],
        b"",
        workdir,
        Limits(cpu_ms=2000, wall_ms=5000, memory_mb=256),
        isolation,
    )
    lines = execution.stdout.decode().splitlines()
    assert lines == [
        "inet refused 13",
        "inet6 refused 13",
        "unix allowed",
        "kill-runner refused 1",
        "setsid refused 1",
        "io_uring refused 1",
        "rt_sigqueueinfo refused 1",
        "pidfd_send_signal refused 1",
    ], execution.stderr
    os.kill(stand_in_runner, 0)  # still alive
