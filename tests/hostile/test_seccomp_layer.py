"""The seccomp layer on its own, as in an unprivileged Kubernetes pod where namespaces and a
uid switch are refused: it alone must keep the network and the host's sockets closed (a
socketpair stays open), refuse new namespaces and the kernel interfaces a program never
needs (keyrings, bpf, userfaultfd, perf events, mounts), keep the runner alive and the
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
libc.syscall.restype = ctypes.c_long
def attempt(name, action):
    try:
        action()
        print(name, "allowed")
    except OSError as exc:
        print(name, "refused", exc.errno)
def call(name, number, *args):
    ctypes.set_errno(0)
    args = [arg if isinstance(arg, ctypes.Array) else ctypes.c_long(arg) for arg in args]
    result = libc.syscall(ctypes.c_long(number), *args)
    print(name, "refused" if result < 0 else "allowed", ctypes.get_errno())
def raw_socket(family):
    # The family with bits set above the 32 the kernel reads: the same family to the
    # kernel, a different 64-bit argument to a filter that compares all of it.
    fd = libc.syscall(ctypes.c_long(41), ctypes.c_long((1 << 32) | family), ctypes.c_long(1),
                      ctypes.c_long(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "socket")
    os.close(fd)
attempt("inet", lambda: socket.socket(socket.AF_INET).close())
attempt("inet6", lambda: socket.socket(socket.AF_INET6).close())
attempt("unix", lambda: socket.socket(socket.AF_UNIX).close())
attempt("netlink", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close())
attempt("inet-high-bits", lambda: raw_socket(socket.AF_INET))
attempt("unix-high-bits", lambda: raw_socket(socket.AF_UNIX))
attempt("socketpair", lambda: [end.close() for end in socket.socketpair(socket.AF_UNIX)])
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
call("io_uring", 425, 1, ctypes.create_string_buffer(120))
info = ctypes.create_string_buffer(128)  # a siginfo_t with si_code SI_QUEUE, as sigqueue(3)
ctypes.c_int.from_buffer(info, 0).value = signal.SIGINT
ctypes.c_int.from_buffer(info, 8).value = -1
call("rt_sigqueueinfo", 129, RUNNER, signal.SIGINT, info)
call("pidfd_send_signal", 424, 0, signal.SIGINT, 0, 0)
call("keyctl", 250, 0, -3, 0)  # KEYCTL_GET_KEYRING_ID of the session keyring
call("bpf", 321, 0, 0, 0)
call("userfaultfd", 323, 0)
call("perf_event_open", 298, 0, 0, -1, -1, 0)
# Onto a path that does not exist: allowed, it would fail with ENOENT and mount nothing.
source, target = ctypes.create_string_buffer(b"none"), ctypes.create_string_buffer(b"/nowhere/x")
call("mount", 165, source, target, ctypes.create_string_buffer(b"tmpfs"), 0, 0)
# Last: were it allowed, the calls after it would run in a user namespace of their own.
call("unshare-user", 272, 0x10000000)
"""


@pytest.fixture
def stand_in_runner():
    """A process playing the runner, so a failed filter could only kill this one."""
    process = subprocess.Popen(["sleep", "60"])
    yield process.pid
    process.kill()
    process.wait()


def test_seccomp_alone_refuses_network_signals_to_the_runner_and_new_sessions(stand_in_runner):
    """Each refused call answers the filter's errno (EACCES for sockets, EPERM otherwise),
    where the kernel itself would have let it through or failed differently: the program
    runs as the runner's uid here, root in CI."""
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
        "unix refused 13",
        "netlink refused 13",
        "inet-high-bits refused 13",
        "unix-high-bits refused 13",
        "socketpair allowed",
        "kill-runner refused 1",
        "setsid refused 1",
        "io_uring refused 1",
        "rt_sigqueueinfo refused 1",
        "pidfd_send_signal refused 1",
        "keyctl refused 1",
        "bpf refused 1",
        "userfaultfd refused 1",
        "perf_event_open refused 1",
        "mount refused 1",
        "unshare-user refused 1",
    ], execution.stderr
    os.kill(stand_in_runner, 0)  # still alive
