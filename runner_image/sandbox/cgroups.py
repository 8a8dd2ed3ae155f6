"""A cgroup (v1 memory, pids and cpuacct controllers) for the runs of untrusted code, where
this machine lets the runner create one (root on a host with writable cgroup v1
hierarchies): a real out-of-memory kill and the peak memory of each run, a process cap
that holds whatever uid the processes run as, CPU time that counts even unreaped
processes, and the complete list of a run's processes to kill. Elsewhere (an unprivileged
pod) the caller falls back to rlimits and samples.

A runner keeps one cgroup for all its runs, one run at a time, and stays in it itself:
moving a process between cgroups waits for an RCU grace period (several ms, more on a
busy machine), so programs are started inside by inheritance, never moved in. Programs
run with the highest oom_score_adj (OOM_SCORE_ADJ), so the cgroup's out-of-memory killer
picks them, not the runner; the runner is never killed with a run, and its own share of
each run's memory and CPU figures is subtracted.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import resource
import secrets
import select
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from runner_image.sandbox.control_files import (
    read_control_file,
    status_kb,
    write_control_file,
)

CGROUP_ROOT = Path("/sys/fs/cgroup")
# For the programs: the first the out-of-memory killer chooses (raising needs no privilege).
OOM_SCORE_ADJ = 1000
OWN_OOM_SCORE_ADJ = "/proc/self/oom_score_adj"


@contextlib.contextmanager
def spawning_first_to_kill() -> Iterator[None]:
    """The runner's OOM score at its highest while it spawns a run (the child inherits it),
    and back to what it was after: a process may raise its own score and lower it back to
    where it started without privilege, and an exec of util-linux `choom` costs far more."""
    before = read_control_file(OWN_OOM_SCORE_ADJ).strip()
    write_control_file(OWN_OOM_SCORE_ADJ, OOM_SCORE_ADJ)
    try:
        yield
    finally:
        write_control_file(OWN_OOM_SCORE_ADJ, before)


CONTROLLERS = ("memory", "pids", "cpuacct")
PARENT = "cloudemy-sandbox"
MIB = 1024 * 1024

log = logging.getLogger("runner")


@functools.cache
def runner_cgroup() -> RunCgroup:
    """This runner's cgroup for all its runs, created on first use and removed when the
    runner exits. Raises OSError where none can be created."""
    _remove_stale_cgroups()
    cgroup = _new_cgroup()
    atexit.register(cgroup.remove)
    cgroup.relax()
    cgroup.enter()  # at once: an empty cgroup is another runner's to remove as stale
    return cgroup


def _new_cgroup() -> RunCgroup:
    """A new cgroup, its limits placeholders: each run sets its own (prepare)."""
    return RunCgroup.create(memory_bytes=64 * MIB, max_processes=1)


STALE_AFTER_SECONDS = 60


def _remove_stale_cgroups(root: Path = CGROUP_ROOT) -> None:
    """The cgroups of runners that were killed before they could remove theirs. A live
    runner enters its own as soon as it has made it, so an empty one older than a minute
    is stale; rmdir refuses any that is not empty."""
    for controller in CONTROLLERS:
        with contextlib.suppress(OSError):
            for folder in (root / controller / PARENT).iterdir():
                if not folder.name.startswith("run-") or not folder.is_dir():
                    continue
                with contextlib.suppress(OSError):
                    if time.time() - folder.stat().st_mtime > STALE_AFTER_SECONDS:
                        folder.rmdir()


def cgroups_available() -> bool:
    """Whether this runner's runs get a cgroup (its own, created and entered now)."""
    try:
        runner_cgroup()
    except OSError:
        return False
    return True


def cgroups_creatable() -> bool:
    """Whether runs can get a cgroup on this machine (tried, not guessed): one is created
    and removed again, never entered, so a process that forks runners may ask."""
    if os.geteuid() != 0:
        return False
    try:
        _new_cgroup().remove()
    except OSError:
        return False
    return True


OOM_HEADROOM_MARGIN = 16 * MIB


def oom_headroom(own_rss: int, charged: int, budget: int) -> int:
    """Room above a run's budget that keeps its runner from being the out-of-memory victim.

    The cgroup's OOM killer scores a member by all its resident memory (the runner's too,
    though most of it was charged before it entered, or to the fork server it shares pages
    with) and a program at OOM_SCORE_ADJ by its own plus the limit; no runner may lower its
    own score (that takes CAP_SYS_RESOURCE). A program that filled a limit of
    `charged + budget + h` scores about `2 (budget + h) + charged`: h keeps that above the
    runner's score with a margin. It is 0 for a runner of usual size and a budget of 40 MiB
    or more; a run is held to its budget anyway by its measured peak (sandbox.process)."""
    needed = (own_rss - charged + 1) // 2 - budget + OOM_HEADROOM_MARGIN
    return max(needed, 0)


def _own_rss() -> int:
    return (status_kb("self", "VmRSS") or 0) * 1024


def _own_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def kill_and_wait(pids: list[int], deadline: float) -> None:
    """SIGKILL each process and wait until it has ended, woken by its pidfd the moment it
    has (a run's last process is often still tearing down its namespaces when the run
    ends), or until `deadline`. The pidfd is taken before the signal, so a pid reused
    meanwhile is never signalled."""
    pidfds = []
    try:
        for pid in pids:
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            pidfds.append(pidfd)
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        for pidfd in pidfds:
            select.select([pidfd], [], [], max(deadline - time.monotonic(), 0))
    finally:
        for pidfd in pidfds:
            os.close(pidfd)


@dataclass
class RunCgroup:
    name: str
    root: Path = CGROUP_ROOT
    # Where this process was before it entered, by controller.
    _homes: dict[str, Path] | None = None
    # At the start of the current run: the kernel's OOM kill count, the memory in use
    # (the runner's own share), and the runner's CPU time.
    _oom_kills_before: int | None = None
    _usage_before: int = 0
    _own_cpu_before: float = 0.0
    # Processes in the cgroup before the run: the runner, and whatever else it had started
    # by then (a test process's own servers). Never the run's, never killed with it.
    _residents: frozenset[int] = frozenset()
    # Above the current run's budget, for its runner's sake (oom_headroom).
    headroom: int = 0

    @classmethod
    def create(cls, memory_bytes: int, max_processes: int, root: Path = CGROUP_ROOT) -> RunCgroup:
        cgroup = cls(f"run-{secrets.token_hex(8)}", root)
        try:
            for controller in CONTROLLERS:
                cgroup.path(controller).mkdir(parents=True)
            cgroup.prepare(memory_bytes, max_processes)
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def path(self, controller: str) -> Path:
        return self.root / controller / PARENT / self.name

    @functools.cached_property
    def _folders(self) -> dict[str, str]:
        """Each controller's folder, joined once: a run reads and writes about twenty control
        files, and pathlib's joins cost more than the reads themselves."""
        return {controller: f"{self.path(controller)}/" for controller in CONTROLLERS}

    def _write(self, controller: str, name: str, value: int | str) -> None:
        write_control_file(self._folders[controller] + name, value)

    def _read(self, controller: str, name: str) -> str:
        return read_control_file(self._folders[controller] + name)

    @property
    def entered(self) -> bool:
        return self._homes is not None

    def enter(self) -> None:
        """Move this process in (once): everything it starts from now on starts inside."""
        if self.entered:
            return
        homes = {controller: self._current(controller) for controller in CONTROLLERS}
        for controller in CONTROLLERS:
            self._write(controller, "cgroup.procs", os.getpid())
        self._homes = homes

    def leave(self) -> None:
        """Move this process back where it was; the cgroup stays, with whatever else is
        in it."""
        if self._homes is None:
            return
        for home in self._homes.values():
            (home / "cgroup.procs").write_text(str(os.getpid()))
        self._homes = None

    def _current(self, controller: str) -> Path:
        with open("/proc/self/cgroup") as memberships:
            for line in memberships:
                _, names, path = line.rstrip("\n").split(":", 2)
                if controller in names.split(","):
                    return self.root / controller / path.lstrip("/")
        raise OSError(f"this process is in no {controller} cgroup")

    def prepare(self, memory_bytes: int, max_processes: int) -> None:
        """Limits for the next run, and its counters from now. No run is in the cgroup.
        The runner's own tasks count against the process cap while it is inside."""
        usage = self._unreclaimable_usage()
        self.headroom = 0
        if self.entered:
            self.headroom = oom_headroom(_own_rss(), usage, memory_bytes)
            memory_bytes += usage + self.headroom
            max_processes += int(self._read("pids", "pids.current"))
            self._residents = frozenset(self._members())
        memory = self._memory_limit_files
        current = int(self._read("memory", "memory.limit_in_bytes"))
        # memory+swap may never be below memory: raise it first, lower it last.
        for name in memory if memory_bytes >= current else reversed(memory):
            self._write("memory", name, memory_bytes)
        self._write("pids", "pids.max", max_processes)
        self._write("memory", "memory.max_usage_in_bytes", 0)
        self._write("memory", "memory.failcnt", 0)
        self._oom_kills_before = self._oom_kills()
        self._usage_before = usage
        self._write("cpuacct", "cpuacct.usage", 0)
        self._own_cpu_before = _own_cpu_ms()

    def _unreclaimable_usage(self) -> int:
        """What the cgroup holds that the kernel cannot give a run: its usage less the file
        cache on the LRU lists. The cache the runner and earlier runs left behind (files
        written, compilers read) is charged here too; counted as the runner's share, it
        would let a run take that much beyond its limit once the kernel reclaims it. The
        limit written below it makes the kernel reclaim the cache before the run starts."""
        usage = int(self._read("memory", "memory.usage_in_bytes"))
        stat = dict(line.split() for line in self._read("memory", "memory.stat").splitlines())
        file_cache = int(stat.get("active_file", 0)) + int(stat.get("inactive_file", 0))
        return max(usage - file_cache, 0)

    def relax(self) -> None:
        """No limits between runs: the runner's own work (the LLM step after grading)
        must never meet the last run's."""
        for name in self._memory_limit_files:
            self._write("memory", name, -1)
        self._write("pids", "pids.max", "max")

    @functools.cached_property
    def _memory_limit_files(self) -> tuple[str, ...]:
        """memory+swap first; without swap accounting there is no such file to set."""
        if os.path.exists(self._folders["memory"] + "memory.memsw.limit_in_bytes"):
            return ("memory.memsw.limit_in_bytes", "memory.limit_in_bytes")
        return ("memory.limit_in_bytes",)

    def peak_memory_kb(self) -> int:
        """The run's peak: the cgroup's, less what was in use when it started."""
        peak = int(self._read("memory", "memory.max_usage_in_bytes"))
        return max(peak - self._usage_before, 0) // 1024

    def _oom_kills(self) -> int | None:
        for line in self._read("memory", "memory.oom_control").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return None

    def out_of_memory(self) -> bool:
        """Whether the kernel killed a process of this run for memory (kernels without the
        `oom_kill` counter: whether usage ever hit the limit)."""
        kills = self._oom_kills()
        if kills is None:
            return int(self._read("memory", "memory.failcnt")) > 0
        return kills > (self._oom_kills_before or 0)

    def cpu_ms(self) -> int:
        """The run's CPU time: the cgroup's, less the runner's own while it supervised."""
        total = int(self._read("cpuacct", "cpuacct.usage")) / 1_000_000
        own = _own_cpu_ms() - self._own_cpu_before if self.entered else 0.0
        return max(int(total - own), 0)

    def _members(self) -> list[int]:
        return [int(pid) for pid in self._read("pids", "cgroup.procs").split()]

    def processes(self) -> list[int]:
        """The run's processes: everything in the cgroup but the runner and what was
        there before the run."""
        me = os.getpid()
        return [pid for pid in self._members() if pid != me and pid not in self._residents]

    def kill_all(self, timeout: float = 2.0) -> None:
        """SIGKILL every process of the run until none is left (a fork racing the kill
        lands in the same cgroup and is caught by the next round)."""
        deadline = time.monotonic() + timeout
        while (pids := self.processes()) and time.monotonic() < deadline:
            kill_and_wait(pids, deadline)

    def remove(self) -> None:
        """Leave, then remove the cgroup directories once their processes are gone (rmdir,
        retried briefly while the last exits are accounted)."""
        with contextlib.suppress(FileNotFoundError):  # already removed
            self.kill_all()
        self.leave()
        for controller in CONTROLLERS:
            folder = self.path(controller)
            for attempt in range(200):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if attempt == 199:
                        log.warning("cannot remove the cgroup %s: %s", folder, exc)
                    time.sleep(0.005)
