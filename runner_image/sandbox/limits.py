"""What one run of untrusted code may use, and the rlimits that enforce it. Pure."""

from __future__ import annotations

import math
import resource
from dataclasses import dataclass

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

    @property
    def memory_bytes(self) -> int:
        return (self.memory_mb + self.memory_overhead_mb) * MIB


def rlimits(limits: Limits, capped_by_cgroup: bool, processes: int) -> dict[int, tuple[int, int]]:
    """The rlimits of a run. With a cgroup, memory and processes are capped by it
    (exactly, across uids); their rlimits are the fallback without one."""
    cpu_seconds = max(1, math.ceil(limits.cpu_ms / 1000))
    chosen = {
        resource.RLIMIT_CPU: (cpu_seconds, cpu_seconds + 1),
        resource.RLIMIT_FSIZE: (limits.file_bytes, limits.file_bytes),
        resource.RLIMIT_NOFILE: (limits.open_files, limits.open_files),
        resource.RLIMIT_CORE: (0, 0),
    }
    if not capped_by_cgroup:
        memory = resource.RLIMIT_DATA if limits.memory_mode == "data" else resource.RLIMIT_AS
        chosen[memory] = (limits.memory_bytes, limits.memory_bytes)
        chosen[resource.RLIMIT_NPROC] = (processes, processes)
    return chosen


PRLIMIT_OPTIONS = {
    resource.RLIMIT_CPU: "cpu",
    resource.RLIMIT_FSIZE: "fsize",
    resource.RLIMIT_NOFILE: "nofile",
    resource.RLIMIT_CORE: "core",
    resource.RLIMIT_AS: "as",
    resource.RLIMIT_DATA: "data",
    resource.RLIMIT_NPROC: "nproc",
}


def prlimit_argv(chosen: dict[int, tuple[int, int]]) -> list[str]:
    """util-linux `prlimit` setting `chosen` on itself before it executes what follows."""
    options = [f"--{PRLIMIT_OPTIONS[kind]}={soft}:{hard}" for kind, (soft, hard) in chosen.items()]
    return ["prlimit", *options, "--"]
