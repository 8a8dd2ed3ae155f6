"""Run one untrusted process: fresh environment, rlimits, its own process group, the probed
isolation layers, a wall-clock deadline and an output cap. When it ends, its process group
is killed, and at the strict level every process of its uid too; at the basic level a
process that starts a session of its own escapes the group kill (seccomp refuses setsid)."""

from __future__ import annotations

import contextlib
import math
import os
import resource
import selectors
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runner_image.sandbox.isolation import Isolation, kill_all_of_uid
from runner_image.sandbox.languages import SANDBOX_PATH

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    cpu_ms: int
    wall_ms: int
    memory_mb: int
    output_bytes: int = 64 * 1024
    stderr_bytes: int = 16 * 1024
    file_bytes: int = 16 * MIB
    open_files: int = 64
    processes: int = 128
    memory_mode: str = "address_space"  # or "data", for runtimes that over-reserve (V8)
    memory_overhead_mb: int = 0


@dataclass(frozen=True)
class Execution:
    exit_code: int | None
    signal: int | None
    stdout: bytes
    stderr: bytes
    wall_ms: int
    cpu_ms: int
    max_rss_kb: int | None  # None: the process ended before its memory could be read
    timed_out: bool
    output_exceeded: bool


def _child_setup(limits: Limits, isolation: Isolation):
    cpu_seconds = max(1, math.ceil(limits.cpu_ms / 1000))
    memory = (limits.memory_mb + limits.memory_overhead_mb) * MIB
    memory_rlimit = resource.RLIMIT_DATA if limits.memory_mode == "data" else resource.RLIMIT_AS
    isolate = isolation.child_hook()

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
        resource.setrlimit(memory_rlimit, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        processes = limits.processes + isolation.process_baseline
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        isolate()

    return apply


def sandbox_env(workdir: Path) -> dict[str, str]:
    """A fresh environment: nothing of the runner's (no token, no key) is inherited."""
    return {"PATH": SANDBOX_PATH, "HOME": str(workdir), "LANG": "C.UTF-8", "TMPDIR": str(workdir)}


def _kill_everything(pgid: int, isolation: Isolation) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    if isolation.uid is not None:
        kill_all_of_uid(isolation.uid)


def execute(
    argv: list[str] | tuple[str, ...],
    stdin: bytes,
    workdir: Path,
    limits: Limits,
    isolation: Isolation,
) -> Execution:
    with tempfile.TemporaryFile() as stdin_file:
        stdin_file.write(stdin)
        stdin_file.seek(0)
        baseline_kb = _status_kb("self", "VmRSS") or 0
        started = time.monotonic()
        proc = subprocess.Popen(
            list(argv),
            stdin=stdin_file,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=sandbox_env(workdir),
            start_new_session=True,
            preexec_fn=_child_setup(limits, isolation),
            close_fds=True,
        )
    return _supervise(proc, started, limits, isolation, baseline_kb)


def _status_kb(pid: int | str, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(field.encode() + b":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _peak_memory_kb(samples: list[int], ru_maxrss: int, baseline_kb: int) -> int | None:
    """The kernel's ru_maxrss of a child counts the pages it shared with the runner when it
    was forked, so below the runner's own size it says nothing; above it, it is exact.
    Sampled VmHWM (taken after exec, since Popen returns only once exec succeeded) covers
    the small programs."""
    peak = max(samples, default=None)
    if ru_maxrss > baseline_kb * 1.1:
        peak = max(peak or 0, ru_maxrss)
    return peak


SAMPLE_SECONDS = 0.01


def _supervise(
    proc: subprocess.Popen,
    started: float,
    limits: Limits,
    isolation: Isolation,
    baseline_kb: int,
) -> Execution:
    """Collect output until the process exits, overflows its output or passes the deadline;
    then kill its whole process group, so nothing it started outlives the run."""
    deadline = started + limits.wall_ms / 1000
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    caps = {out_fd: limits.output_bytes, err_fd: limits.stderr_bytes}
    buffers: dict[int, bytearray] = {fd: bytearray() for fd in caps}
    pidfd = os.pidfd_open(proc.pid)
    selector = selectors.DefaultSelector()
    for fd in caps:
        selector.register(fd, selectors.EVENT_READ)
    selector.register(pidfd, selectors.EVENT_READ)
    timed_out = output_exceeded = exited = False
    samples: list[int] = []
    try:
        while not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            sample = _status_kb(proc.pid, "VmHWM")
            if sample is not None:
                samples.append(sample)
            for key, _ in selector.select(timeout=min(remaining, SAMPLE_SECONDS)):
                if key.fd == pidfd:
                    exited = True
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = buffers[key.fd]
                room = caps[key.fd] + 1 - len(buffer)
                buffer += chunk[: max(room, 0)]
                if key.fd == out_fd and len(buffer) > caps[key.fd]:
                    output_exceeded = True
            if output_exceeded:
                break
    finally:
        _kill_everything(proc.pid, isolation)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall_ms = int((time.monotonic() - started) * 1000)
        _drain(selector, buffers, caps, pidfd)
        selector.close()
        os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    stdout_buffer = buffers[out_fd]
    output_exceeded = output_exceeded or len(stdout_buffer) > limits.output_bytes
    stdout = bytes(stdout_buffer[: limits.output_bytes])
    return Execution(
        exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        stdout=stdout,
        stderr=bytes(buffers[err_fd][: limits.stderr_bytes]),
        wall_ms=wall_ms,
        cpu_ms=int((usage.ru_utime + usage.ru_stime) * 1000),
        max_rss_kb=_peak_memory_kb(samples, usage.ru_maxrss, baseline_kb),
        timed_out=timed_out,
        output_exceeded=output_exceeded,
    )


def _drain(selector, buffers, caps, pidfd) -> None:
    """Read what is left in the pipes now that every writer in the group is dead."""
    for key in list(selector.get_map().values()):
        if key.fd == pidfd:
            continue
        os.set_blocking(key.fd, False)
        while len(buffers[key.fd]) <= caps[key.fd]:
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            buffers[key.fd] += chunk
