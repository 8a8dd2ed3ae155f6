"""The runner as a child subreaper: orphans of a run (a process that started its own session,
whose parent then died, or the init of a PID namespace that outlived bwrap) are reparented
to the runner instead of the host's init, so the runner can find, kill and reap them."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal

from runner_image.sandbox.control_files import read_control_file

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans of a run (a process that started its own session, whose parent then died)
    are reparented to the runner instead of init, so the runner can still find them."""
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def own_children() -> set[int]:
    children: set[int] = set()
    for task in os.scandir("/proc/self/task"):
        with contextlib.suppress(OSError):
            children.update(int(pid) for pid in read_control_file(f"{task.path}/children").split())
    return children


def kill_orphans(known: set[int], rounds: int = 50) -> None:
    """Kill and reap every child the run left with the runner (orphans reparented to it,
    in rounds: killing one may orphan its own children), leaving `known` alone."""
    for _ in range(rounds):
        orphans = own_children() - known
        if not orphans:
            return
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pid in orphans:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
