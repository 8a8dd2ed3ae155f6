"""Kernel control files (cgroup, /proc) read and written with plain system calls: a run
reads and writes about twenty of them, and pathlib's and io's layers cost several times the
system calls themselves (about 65 against 15 microseconds a read here)."""

from __future__ import annotations

import os


def read_control_file(path: str) -> str:
    """The whole file: the kernel may answer a large one in several reads."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def write_control_file(path: str, value: int | str) -> None:
    """Never creates a file: a control file that is not there is an error."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def status_kb(pid: int | str, field: str) -> int | None:
    """A kB figure of /proc/<pid>/status (VmRSS, VmHWM); None once the process is gone."""
    try:
        prefix = field + ":"
        for line in read_control_file(f"/proc/{pid}/status").splitlines():
            if line.startswith(prefix):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None
