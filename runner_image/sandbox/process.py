"""Run one untrusted process: fresh environment, rlimits, its own process group, the probed
isolation layers (fresh namespaces and a cgroup where the machine has them), a wall-clock
deadline and an output cap. When it ends, everything it started is killed: its process
group, its cgroup, every process of its uid, and any orphan that reached the runner (the
runner is a child subreaper, so a process that left the group by starting its own session
is still found)."""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import selectors
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from runner_image.sandbox.cgroups import RunCgroup, runner_cgroup, spawning_first_to_kill
from runner_image.sandbox.control_files import status_kb
from runner_image.sandbox.isolation import Isolation, kill_all_of_uid
from runner_image.sandbox.languages import SANDBOX_PATH
from runner_image.sandbox.limits import Limits, rlimits
from runner_image.sandbox.namespaces import BWRAP_PROCESSES, SANDBOX_WORKDIR
from runner_image.sandbox.reaping import become_subreaper, kill_orphans, own_children

# bwrap reports a program killed by signal N as exit code 128 + N, as a shell does.
SIGNALLED_EXIT_CODES = range(129, 129 + 64)


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
    # The kernel killed it for memory (known where the run had a cgroup).
    out_of_memory: bool = False


def _child_setup(limits: Limits, isolation: Isolation):
    """Without namespaces: the rlimits, then the isolation layers, in the forked child."""
    chosen = rlimits(limits, isolation.cgroup, limits.processes + isolation.process_baseline)
    isolate = isolation.child_hook()

    def apply() -> None:
        for kind, values in chosen.items():
            resource.setrlimit(kind, values)
        isolate()

    return apply


def sandbox_env(workdir: Path | str) -> dict[str, str]:
    """A fresh environment: nothing of the runner's (no token, no key) is inherited."""
    return {"PATH": SANDBOX_PATH, "HOME": str(workdir), "LANG": "C.UTF-8", "TMPDIR": str(workdir)}


def _kill_everything(isolation: Isolation, cgroup: RunCgroup | None) -> None:
    """Everything of the run that its process group did not take along."""
    if cgroup is not None:
        cgroup.kill_all()
    if isolation.uid is not None and cgroup is None:
        # With a cgroup, its list of processes is complete: none can leave it.
        kill_all_of_uid(isolation.uid)


def _cgroup_for(limits: Limits, isolation: Isolation) -> RunCgroup | None:
    if not isolation.cgroup:
        return None
    processes = limits.processes + (BWRAP_PROCESSES if isolation.namespaces else 0)
    cgroup = runner_cgroup()
    cgroup.prepare(limits.memory_bytes, processes)
    return cgroup


def execute(
    argv: list[str] | tuple[str, ...],
    stdin: bytes,
    workdir: Path,
    limits: Limits,
    isolation: Isolation,
    keep_writes: bool = True,
) -> Execution:
    """Run `argv` in `workdir`. Without `keep_writes`, and where runs have namespaces of
    their own, what the program writes there is discarded with the run."""
    become_subreaper()
    known_children = own_children()
    cgroup = _cgroup_for(limits, isolation)
    seccomp_fd = isolation.seccomp_program()
    inside = SANDBOX_WORKDIR if isolation.namespaces else workdir
    try:
        with tempfile.TemporaryFile() as stdin_file:
            stdin_file.write(stdin)
            stdin_file.seek(0)
            # The runner's own size, against which a run without a cgroup is measured.
            baseline_kb = (status_kb("self", "VmRSS") or 0) if cgroup is None else 0
            started = time.monotonic()
            spawn = functools.partial(
                subprocess.Popen,
                stdin=stdin_file,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env=sandbox_env(inside),
                start_new_session=True,
                close_fds=True,
                pass_fds=() if seccomp_fd is None else (seccomp_fd,),
            )
            if isolation.namespaces:
                # No Python pre-exec hook: the child is spawned by vfork+exec, several ms
                # faster than fork for a runner of this size.
                command = isolation.namespaced_command(
                    argv, workdir, limits, seccomp_fd, keep_writes
                )
                setup = None
            else:
                command, setup = list(argv), _child_setup(limits, isolation)
            # A run starts in the cgroup because the runner is in it (see cgroups.py), and
            # with the OOM score that makes it, never the runner, the OOM killer's choice.
            with spawning_first_to_kill() if cgroup else contextlib.nullcontext():
                proc = spawn(command, preexec_fn=setup)
        if seccomp_fd is not None:
            os.close(seccomp_fd)
            seccomp_fd = None
        return _supervise(proc, started, limits, isolation, cgroup, baseline_kb, known_children)
    finally:
        if seccomp_fd is not None:
            os.close(seccomp_fd)
        if cgroup is not None:
            cgroup.kill_all()
            cgroup.relax()


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
    cgroup: RunCgroup | None,
    baseline_kb: int,
    known_children: set[int],
) -> Execution:
    """Collect output until the process exits, overflows its output or passes the deadline;
    then kill everything it started, so nothing outlives the run. Without a cgroup to read
    it from, peak memory is sampled meanwhile."""
    sampling = cgroup is None and not isolation.namespaces
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
            if sampling and (sample := status_kb(proc.pid, "VmHWM")) is not None:
                samples.append(sample)
            wait = min(remaining, SAMPLE_SECONDS) if sampling else remaining
            for key, _ in selector.select(timeout=wait):
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
        # The group is killed before the leader is reaped (its id cannot be reused
        # meanwhile); the cgroup and the uid after, so that a program that exited is not
        # waited for twice.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        _, status, usage = os.wait4(proc.pid, 0)
        _kill_everything(isolation, cgroup)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall_ms = int((time.monotonic() - started) * 1000)
        kill_orphans(known_children)
        _drain(selector, buffers, caps, pidfd)
        selector.close()
        os.close(pidfd)
        proc.stdout.close()
        proc.stderr.close()
    stdout_buffer = buffers[out_fd]
    output_exceeded = output_exceeded or len(stdout_buffer) > limits.output_bytes
    stdout = bytes(stdout_buffer[: limits.output_bytes])
    exit_code, signal_number = _exit_of(status, isolation)
    if cgroup is not None:
        cpu_ms, peak_kb = cgroup.cpu_ms(), cgroup.peak_memory_kb()
    else:
        cpu_ms = int((usage.ru_utime + usage.ru_stime) * 1000)
        # Under bwrap the program was started by bwrap, not forked from the runner, so its
        # ru_maxrss is its own.
        peak_kb = usage.ru_maxrss if isolation.namespaces else None
        peak_kb = peak_kb or _peak_memory_kb(samples, usage.ru_maxrss, baseline_kb)
    return Execution(
        exit_code=exit_code,
        signal=signal_number,
        stdout=stdout,
        stderr=bytes(buffers[err_fd][: limits.stderr_bytes]),
        wall_ms=wall_ms,
        cpu_ms=cpu_ms,
        max_rss_kb=peak_kb,
        timed_out=timed_out,
        output_exceeded=output_exceeded,
        out_of_memory=cgroup is not None
        and (cgroup.out_of_memory() or peak_kb * 1024 > limits.memory_bytes),
    )


def _exit_of(status: int, isolation: Isolation) -> tuple[int | None, int | None]:
    """(exit code, signal) of the program. bwrap passes a signal on as 128 + its number,
    which is read back as the signal (a program that exits with such a code on purpose is
    reported as killed by it: only the wording of its runtime error differs)."""
    if os.WIFSIGNALED(status):
        return None, os.WTERMSIG(status)
    code = os.WEXITSTATUS(status)
    if isolation.namespaces and code in SIGNALLED_EXIT_CODES:
        return None, code - 128
    return code, None


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
