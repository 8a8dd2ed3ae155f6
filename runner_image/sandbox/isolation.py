"""Isolation layers for untrusted processes, strongest available first. Which layers this
machine supports is probed once per runner process and reported in `metrics.isolation`; a
required level the machine cannot meet is an error, never a silent downgrade.

Layers beyond the always-on ones (fresh working directory, scrubbed environment, rlimits,
own session, runner non-dumpable, runner a child subreaper):
- `uid`: the child runs as a sandbox uid of its own (one per runner, see uids.py) when
  the runner is root, so it can neither signal nor read the runner, and everything it
  started can be killed by uid afterwards.
- `namespaces`: fresh mount, PID, IPC, UTS, network and user namespaces per run, through
  bubblewrap (see namespaces.py): nothing of the host or of another run is visible, and
  nothing the run writes outside its working directory outlives it.
- `cgroup`: a memory, pids and cpuacct cgroup per run (see cgroups.py): exact peak memory,
  a real out-of-memory kill, a process cap across uids.
- `network_namespace`: without bubblewrap, a new empty network namespace in the child (no
  route anywhere, not even to the Redis on 127.0.0.1).
- `seccomp`: the filter of seccomp.py. It needs no privilege, so it also holds inside an
  unprivileged Kubernetes pod where namespaces are refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from runner_image.contract import IsolationLevel
from runner_image.sandbox.cgroups import cgroups_available, cgroups_creatable
from runner_image.sandbox.limits import Limits, prlimit_argv, rlimits
from runner_image.sandbox.namespaces import (
    BWRAP_PROCESSES,
    bwrap_argv,
    packaged_bwrap,
    staged_bwrap,
)
from runner_image.sandbox.reaping import become_subreaper, kill_orphans, own_children
from runner_image.sandbox.seccomp import bpf_program_fd, build_filter, seccomp_available
from runner_image.sandbox.uids import NoSandboxUid, allocate_uid

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
ALWAYS_ON = (
    "workdir",
    "scrubbed_env",
    "rlimits",
    "process_group",
    "runner_non_dumpable",
    "child_subreaper",
)

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationUnavailable(RuntimeError):
    """The configured minimum isolation level cannot be met on this machine."""


@dataclass(frozen=True)
class Isolation:
    uid: int | None = None
    network_namespace: bool = False
    seccomp: bool = False
    # The bwrap binary that gives each run fresh namespaces, or None.
    bwrap: Path | None = None
    cgroup: bool = False
    runner_pid: int = 0
    # Without a uid of its own, the child's process limit also counts the runner's processes.
    process_baseline: int = 0
    # A process the program could read (same uid, same PID namespace) holds a secret.
    secrets_exposed: bool = False

    @property
    def namespaces(self) -> bool:
        return self.bwrap is not None

    @property
    def layers(self) -> list[str]:
        extra = [
            name
            for name, active in (
                ("uid", self.uid is not None),
                ("namespaces", self.namespaces),
                ("cgroup", self.cgroup),
                ("network_namespace", self.network_namespace),
                ("seccomp", self.seccomp),
            )
            if active
        ]
        return [*ALWAYS_ON, *extra]

    @property
    def level(self) -> IsolationLevel:
        if self.secrets_exposed:
            return IsolationLevel.BASIC
        if self.namespaces and self.seccomp and self.uid is not None:
            return IsolationLevel.NAMESPACED
        network_blocked = self.network_namespace or self.namespaces or self.seccomp
        runner_protected = self.uid is not None or self.namespaces or self.seccomp
        if network_blocked and runner_protected:
            return IsolationLevel.STRICT
        return IsolationLevel.BASIC

    def namespaced_command(
        self,
        argv: list[str] | tuple[str, ...],
        workdir: Path,
        limits: Limits,
        seccomp_fd: int | None,
        keep_writes: bool = True,
    ) -> list[str]:
        """`argv` under bwrap, for a child spawned with no Python pre-exec hook (much
        cheaper to start): util-linux `prlimit` sets the run's rlimits and `setpriv`
        switches to the sandbox uid before bwrap starts; bwrap installs the seccomp program
        from `seccomp_fd` itself."""
        assert self.bwrap is not None
        processes = limits.processes + self.process_baseline + BWRAP_PROCESSES
        chosen = rlimits(limits, self.cgroup, processes)
        prefix = prlimit_argv(chosen)
        if self.uid is not None:
            prefix += ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
            prefix += ["--"]
        return [*prefix, *bwrap_argv(self.bwrap, workdir, argv, seccomp_fd, keep_writes)]

    def seccomp_program(self) -> int | None:
        """The BPF program's fd for bwrap, when bwrap is to install the filter."""
        return bpf_program_fd(self.runner_pid) if self.seccomp and self.namespaces else None

    def child_hook(self) -> Callable[[], None]:
        """What the forked child runs before exec, without namespaces. The seccomp filter
        is compiled here, in the parent, since the child may no longer read the library
        once it has switched uid. Order matters: the network namespace needs the privilege
        the uid switch gives up, and seccomp comes last."""
        assert self.bwrap is None
        seccomp_filter = build_filter(self.runner_pid) if self.seccomp else None

        def apply() -> None:
            if self.network_namespace:
                _unshare_network()
            if self.uid is not None:
                become(self.uid)
            if seccomp_filter is not None:
                seccomp_filter.load()

        return apply


def _unshare_network() -> None:
    if os.geteuid() == 0:
        _unshare(CLONE_NEWNET)
        return
    uid, gid = os.geteuid(), os.getegid()
    _unshare(CLONE_NEWUSER | CLONE_NEWNET)
    with open("/proc/self/setgroups", "w") as setgroups:
        setgroups.write("deny")
    with open("/proc/self/uid_map", "w") as uid_map:
        uid_map.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as gid_map:
        gid_map.write(f"{gid} {gid} 1")


def _unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"unshare: {os.strerror(code)}")


@cache
def runner_sandbox_uid() -> int | None:
    """This process's sandbox uid, taken once and held until it exits (root only)."""
    if os.geteuid() != 0:
        return None
    try:
        return allocate_uid().uid
    except (NoSandboxUid, OSError):
        return None


def become(uid: int) -> None:
    """This process as `uid` alone: no supplementary group, no way back."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def in_child_as(uid: int, action: Callable[[], None]) -> None:
    """`action` in a forked child that has become `uid`, waited for: what the sandbox uid
    is to do (kill its processes, delete its files) is done with its rights alone."""
    pid = os.fork()
    if pid == 0:
        try:
            become(uid)
            action()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def kill_all_of_uid(uid: int) -> None:
    """Kill every process of the sandbox uid, including any that left the process group."""
    in_child_as(uid, lambda: os.kill(-1, signal.SIGKILL))


PROBE_LIMITS = Limits(cpu_ms=5000, wall_ms=10_000, memory_mb=64)


def _works(candidate: Isolation) -> bool:
    """Run /bin/true through every layer of `candidate`, as a graded program would be."""
    workdir = Path(tempfile.mkdtemp(prefix="cloudemy-probe-"))
    seccomp_fd = None
    become_subreaper()
    known_children = own_children()
    try:
        if candidate.uid is not None:
            os.chown(workdir, candidate.uid, candidate.uid)
        seccomp_fd = candidate.seccomp_program()
        namespaced = candidate.namespaces
        trial = subprocess.Popen(
            candidate.namespaced_command(["/bin/true"], workdir, PROBE_LIMITS, seccomp_fd)
            if namespaced
            else ["/bin/true"],
            preexec_fn=None if namespaced else candidate.child_hook(),
            pass_fds=() if seccomp_fd is None else (seccomp_fd,),
            env={"PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not _ends_within(trial, 10):
            trial.kill()
            trial.wait()
            return False
    except (subprocess.SubprocessError, OSError):
        return False
    finally:
        kill_orphans(known_children)
        if seccomp_fd is not None:
            os.close(seccomp_fd)
        shutil.rmtree(workdir, ignore_errors=True)
    return trial.returncode == 0


def _ends_within(process: subprocess.Popen, seconds: float) -> bool:
    """Whether `process` ends within `seconds`, woken by its pidfd the moment it does:
    Popen.wait with a timeout polls with sleeps that grow to 50 ms."""
    pidfd = os.pidfd_open(process.pid)
    try:
        ended, _, _ = select.select([pidfd], [], [], seconds)
    finally:
        os.close(pidfd)
    if ended:
        process.wait()
    return bool(ended)


def processes_of_current_uid() -> int:
    uid = os.geteuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += entry.stat().st_uid == uid
    return count


@cache
def _bwrap_for_sandbox(as_root: bool) -> Path | None:
    source = packaged_bwrap()
    if source is None:
        return None
    return staged_bwrap(source) if as_root else source


@cache
def proven_layers() -> Isolation:
    """The optional layers this machine supports, each proven by a trial run under a sandbox
    uid borrowed for the trial (none when none can be taken). Proven once per process: the
    runner fork server proves them before it forks, so the runners it forks inherit the
    verdict instead of each paying a trial run. A runner's own uid, cgroup and pid are
    added by probe_isolation."""
    try:
        borrowed = allocate_uid() if os.geteuid() == 0 else None
    except (NoSandboxUid, OSError):
        borrowed = None
    try:
        return _probe(borrowed.uid if borrowed else None, cgroup=cgroups_creatable())
    finally:
        if borrowed is not None:
            borrowed.release()


def probe_isolation() -> Isolation:
    """This runner's isolation: the proven layers, with a sandbox uid of its own (held until
    it exits), its cgroup, entered now, and its pid for the seccomp filter."""
    proven = proven_layers()
    uid = runner_sandbox_uid() if proven.uid is not None else None
    if proven.uid is not None and uid is None:
        # Every sandbox uid is taken: what works without one, proven again.
        proven = _probe(None, cgroup=proven.cgroup)
    return replace(
        proven,
        uid=uid,
        cgroup=proven.cgroup and cgroups_available(),
        runner_pid=os.getpid(),
        process_baseline=processes_of_current_uid() if uid is None else 0,
    )


def _probe(uid: int | None, cgroup: bool) -> Isolation:
    """Every layer at once when this machine supports them all (one trial run); otherwise
    each optional layer on its own, keeping the ones that work. `cgroup`: whether runs can
    get one here (no trial run needs it)."""
    bwrap = _bwrap_for_sandbox(os.geteuid() == 0)
    if uid is not None and bwrap is not None and seccomp_available():
        everything = Isolation(
            uid=uid, seccomp=True, bwrap=bwrap, cgroup=cgroup, runner_pid=os.getpid()
        )
        if _works(everything):
            return everything
    best = Isolation(
        runner_pid=os.getpid(), cgroup=cgroup, process_baseline=processes_of_current_uid()
    )
    if uid is not None and _works(replace(best, uid=uid)):
        best = replace(best, uid=uid, process_baseline=0)
    if seccomp_available() and _works(replace(best, seccomp=True)):
        best = replace(best, seccomp=True)
    if bwrap is not None and _works(replace(best, bwrap=bwrap)):
        best = replace(best, bwrap=bwrap)
    elif _works(replace(best, network_namespace=True)):
        best = replace(best, network_namespace=True)
    return best


# Environment variables that hold the platform's secrets, wherever they are set.
SECRET_VARIABLES = (b"INTERNAL_RESULT_TOKEN=", b"SECRET_KEY=", b"LLM_API_KEY=")


def secrets_readable(isolation: Isolation, secrets: tuple[str, ...]) -> bool:
    """Whether the sandboxed program could read a secret from another process: one of the
    runner's uid (the program's, when it has no uid of its own) in the same PID namespace
    whose environment or command line shows a platform secret variable or one of `secrets`.
    In a pod, PID 1 holds the container's environment: a dumpable PID 1 (tini, a shell)
    hands the runner's token to the student's code. A non-dumpable process is not
    readable, so the runner itself never counts."""
    if isolation.uid is not None or isolation.namespaces:
        return False
    needles = (*SECRET_VARIABLES, *(secret.encode() for secret in secrets if secret))
    me, uid = os.getpid(), os.geteuid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        with contextlib.suppress(OSError):
            if entry.stat().st_uid != uid:
                continue
            for name in ("environ", "cmdline"):
                with contextlib.suppress(OSError), open(f"{entry.path}/{name}", "rb") as shown:
                    data = shown.read()
                    if any(needle in data for needle in needles):
                        return True
    return False


def require_level(isolation: Isolation, required: IsolationLevel) -> None:
    if isolation.level.rank < required.rank:
        exposed = " (a process the program could read holds a secret)"
        raise IsolationUnavailable(
            f"isolation level '{required}' is required but this machine provides "
            f"'{isolation.level}' (active layers: {', '.join(isolation.layers)})"
            f"{exposed if isolation.secrets_exposed else ''}"
        )
