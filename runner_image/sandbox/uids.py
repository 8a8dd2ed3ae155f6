"""Sandbox uids, one per concurrent runner, never shared: a uid is taken by holding an
exclusive lock on its lock file for the runner's whole life, so two runners on one machine
can never run as the same uid (and so can never signal or clean up each other's
processes), and a runner that dies gives its uid back with its file descriptors."""

from __future__ import annotations

import errno
import fcntl
import os
import random
from dataclasses import dataclass
from pathlib import Path

SANDBOX_UIDS = range(100_000, 150_000)
LOCK_DIR = Path("/run/cloudemy-sandbox-uids")


class NoSandboxUid(RuntimeError):
    """Every sandbox uid is taken (or the lock directory is unusable)."""


@dataclass(frozen=True)
class SandboxUid:
    uid: int
    lock_fd: int

    def release(self) -> None:
        os.close(self.lock_fd)


def allocate_uid(lock_dir: Path = LOCK_DIR, uids: range = SANDBOX_UIDS) -> SandboxUid:
    """Take a free uid. Root only: the lock directory is root's, mode 0700."""
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    start = random.randrange(len(uids))
    for offset in range(len(uids)):
        uid = uids[(start + offset) % len(uids)]
        fd = os.open(lock_dir / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                continue
            raise NoSandboxUid(f"cannot lock {lock_dir / str(uid)}: {exc}") from exc
        return SandboxUid(uid, fd)
    raise NoSandboxUid(f"all {len(uids)} sandbox uids are in use")
