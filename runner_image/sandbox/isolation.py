"""Isolation layers for untrusted processes, strongest available first, applied in the child
between fork and exec. Which layers this machine supports is probed once per runner run and
reported in `metrics.isolation`; a required level the machine cannot meet is an error, never
a silent downgrade.

Layers beyond the always-on ones (fresh working directory, scrubbed environment, rlimits,
own process group, runner non-dumpable):
- `uid`: the child runs as a throw-away uid when the runner is root, so it can neither
  signal nor read the runner, and its processes can be killed by uid afterwards.
- `network_namespace`: a new, empty network namespace (no route anywhere, not even to the
  Redis on 127.0.0.1); as non-root through a user namespace where the kernel allows it.
- `seccomp`: refuses internet sockets (and io_uring, which could open them behind the
  filter's back), ptrace, session escapes, and signals to the runner. It needs no privilege,
  so it also holds inside an unprivileged Kubernetes pod where namespaces are refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from runner_image.contract import IsolationLevel

try:
    import pyseccomp
except (ImportError, OSError):  # no libseccomp on this machine: the layer is reported absent
    pyseccomp = None

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
ALWAYS_ON = ("workdir", "scrubbed_env", "rlimits", "process_group", "runner_non_dumpable")

_libc = ctypes.CDLL(None, use_errno=True)


class IsolationUnavailable(RuntimeError):
    """The configured minimum isolation level cannot be met on this machine."""


@dataclass(frozen=True)
class Isolation:
    uid: int | None = None
    network_namespace: bool = False
    seccomp: bool = False
    runner_pid: int = 0
    # Without a uid of its own, the child's process limit also counts the runner's processes.
    process_baseline: int = 0

    @property
    def layers(self) -> list[str]:
        extra = [
            name
            for name, active in (
                ("uid", self.uid is not None),
                ("network_namespace", self.network_namespace),
                ("seccomp", self.seccomp),
            )
            if active
        ]
        return [*ALWAYS_ON, *extra]

    @property
    def level(self) -> IsolationLevel:
        network_blocked = self.network_namespace or self.seccomp
        runner_protected = self.uid is not None or self.seccomp
        strict = network_blocked and runner_protected
        return IsolationLevel.STRICT if strict else IsolationLevel.BASIC

    def child_hook(self) -> Callable[[], None]:
        """What the forked child runs before exec. The seccomp filter is compiled here, in
        the parent, since the child may no longer be able to read the library once it has
        switched uid. Order matters: namespaces need the privileges the uid switch gives up,
        and seccomp comes last."""
        seccomp_filter = _seccomp_filter(self.runner_pid) if self.seccomp else None

        def apply() -> None:
            if self.network_namespace:
                _unshare_network()
            if self.uid is not None:
                os.setgroups([])
                os.setgid(self.uid)
                os.setuid(self.uid)
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


def _seccomp_filter(runner_pid: int):
    if pyseccomp is None:
        raise OSError("libseccomp is not available")
    sc = pyseccomp
    low32 = 0xFFFFFFFF
    denied = sc.ERRNO(errno.EPERM)
    rules = sc.SyscallFilter(defaction=sc.ALLOW)
    for family in (socket.AF_INET, socket.AF_INET6):
        rules.add_rule(sc.ERRNO(errno.EACCES), "socket", sc.Arg(0, sc.EQ, family))
    for call in (
        "io_uring_setup",
        "ptrace",
        "setsid",
        "setpgid",
        "process_vm_readv",
        "pidfd_send_signal",
    ):
        rules.add_rule(denied, call)
    # Signals to the runner, to its process group, or to every process (-1) are refused.
    for target in (runner_pid, -runner_pid & low32, low32):
        rules.add_rule(denied, "kill", sc.Arg(0, sc.MASKED_EQ, low32, target))
    for call in (
        "tkill",
        "tgkill",
        "rt_sigqueueinfo",
        "rt_tgsigqueueinfo",
        "pidfd_open",
        "prlimit64",
    ):
        rules.add_rule(denied, call, sc.Arg(0, sc.MASKED_EQ, low32, runner_pid))
    return rules


def sandbox_uid(runner_pid: int | None = None) -> int:
    """A uid nobody else uses, distinct per concurrent runner (pids are unique): that of the
    runner `runner_pid`, this process by default. Pure, so a test harness can tell which
    uid a runner it started used."""
    pid = os.getpid() if runner_pid is None else runner_pid
    return 100_000 + pid % 50_000


def kill_all_of_uid(uid: int) -> None:
    """Kill every process of the sandbox uid, including any that left the process group."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _works(candidate: Isolation) -> bool:
    try:
        completed = subprocess.run(
            ["/bin/true"],
            preexec_fn=candidate.child_hook(),
            env={},
            timeout=10,
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except (subprocess.SubprocessError, OSError):
        return False
    return completed.returncode == 0


def processes_of_current_uid() -> int:
    uid = os.geteuid()
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                count += entry.stat().st_uid == uid
    return count


def probe_isolation() -> Isolation:
    """Try each optional layer on its own and keep the ones this machine supports."""
    best = Isolation(runner_pid=os.getpid(), process_baseline=processes_of_current_uid())
    candidates = [replace(best, seccomp=True), replace(best, network_namespace=True)]
    if os.geteuid() == 0:
        candidates.append(replace(best, uid=sandbox_uid()))
    for candidate in candidates:
        if _works(candidate):
            best = replace(
                best,
                seccomp=best.seccomp or candidate.seccomp,
                network_namespace=best.network_namespace or candidate.network_namespace,
                uid=candidate.uid if candidate.uid is not None else best.uid,
            )
    for weaker in (replace(best, network_namespace=False), replace(best, seccomp=False)):
        if _works(best):
            break
        best = weaker
    if best.uid is not None:
        best = replace(best, process_baseline=0)
    return best


def require_level(isolation: Isolation, required: IsolationLevel) -> None:
    if isolation.level.rank < required.rank:
        raise IsolationUnavailable(
            f"isolation level '{required}' is required but this machine provides "
            f"'{isolation.level}' (active layers: {', '.join(isolation.layers)})"
        )


SHARED_WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def remove_files_of_sandbox_uid(isolation: Isolation) -> None:
    """Delete what a run left in world-writable places, so the next run (another test of the
    same submission) cannot pick it up. Only possible when the sandbox has a uid of its own;
    nothing is followed through a link."""
    if isolation.uid is None:
        return
    for top in SHARED_WRITABLE_DIRS:
        with contextlib.suppress(OSError):
            _remove_owned_by(Path(top), isolation.uid)


def _remove_owned_by(folder: Path, uid: int) -> None:
    for entry in os.scandir(folder):
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if info.st_uid == uid:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
        elif entry.is_dir(follow_symlinks=False) and info.st_mode & 0o002:
            _remove_owned_by(Path(entry.path), uid)
