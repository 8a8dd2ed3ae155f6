"""sandbox.cgroups.RunCgroup against a cgroup v1 hierarchy faked under tmp_path: a folder
made under a controller's `cloudemy-sandbox` gets the kernel's control files, removing it
takes them along (refused while it holds processes), and a memory limit above the
memory+swap limit or a negative process cap is refused, as the kernel does."""

from __future__ import annotations

import errno
import io
import os
import pathlib
import time
from pathlib import Path

import pytest

from runner_image.sandbox import cgroups
from runner_image.sandbox.cgroups import CONTROLLERS, PARENT, RunCgroup
from runner_image.sandbox.control_files import write_control_file as real_write_control_file

UNLIMITED = str(2**63 - 4096)
MIB = 1024 * 1024


def kernel_files(controller: str, swap_accounting: bool) -> dict[str, str]:
    files = {"cgroup.procs": ""}
    if controller == "memory":
        files |= {
            "memory.limit_in_bytes": UNLIMITED,
            "memory.usage_in_bytes": "0",
            "memory.max_usage_in_bytes": "123456789",
            "memory.failcnt": "7",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            "memory.stat": "cache 0\nrss 0\nactive_file 0\ninactive_file 0\n",
        }
        if swap_accounting:
            files["memory.memsw.limit_in_bytes"] = UNLIMITED
    elif controller == "pids":
        files |= {"pids.max": "max", "pids.current": "0"}
    elif controller == "cpuacct":
        files["cpuacct.usage"] = "987654321"
    return files


class FakeCgroupfs:
    def __init__(self, root: Path, swap_accounting: bool) -> None:
        self.root = root
        self.swap_accounting = swap_accounting
        for controller in CONTROLLERS:
            (root / controller / PARENT).mkdir(parents=True)

    def controller_of(self, path: Path) -> str | None:
        """The controller of a run's cgroup folder under this root, or None."""
        if path.parent.name == PARENT and path.parent.parent.parent == self.root:
            return path.parent.parent.name
        return None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original_mkdir, original_rmdir = pathlib.Path.mkdir, pathlib.Path.rmdir
        original_write_text = pathlib.Path.write_text
        fake = self

        def mkdir(self: Path, *args, **kwargs) -> None:
            original_mkdir(self, *args, **kwargs)
            controller = fake.controller_of(self)
            if controller is not None:
                for name, content in kernel_files(controller, fake.swap_accounting).items():
                    original_write_text(self / name, content)

        def rmdir(self: Path) -> None:
            if fake.controller_of(self) is not None and self.is_dir():
                if (self / "cgroup.procs").read_text().strip():
                    raise OSError(errno.EBUSY, "cgroup has processes", str(self))
                for control_file in self.iterdir():
                    control_file.unlink()
            original_rmdir(self)

        def write_control_file(path: str, value: int | str) -> None:
            control_file, data = Path(path), str(value)
            if fake.controller_of(control_file.parent) == "memory" and data.strip() == "-1":
                data = UNLIMITED  # the kernel's spelling of "no limit" on the way in
            if fake.controller_of(control_file.parent) == "memory":
                memory = control_file.parent / "memory.limit_in_bytes"
                memsw = control_file.parent / "memory.memsw.limit_in_bytes"
                above = memsw.exists() and int(data) > int(memsw.read_text())
                if control_file == memory and above:
                    raise OSError(errno.EINVAL, "memory above memory+swap", path)
                if control_file == memsw and int(data) < int(memory.read_text()):
                    raise OSError(errno.EINVAL, "memory+swap below memory", path)
            pids = fake.controller_of(control_file.parent) == "pids"
            if pids and control_file.name == "pids.max" and data != "max" and int(data) < 0:
                raise OSError(errno.EINVAL, "not a process count", path)
            real_write_control_file(path, data)

        monkeypatch.setattr(pathlib.Path, "mkdir", mkdir)
        monkeypatch.setattr(pathlib.Path, "rmdir", rmdir)
        monkeypatch.setattr(cgroups, "write_control_file", write_control_file)


@pytest.fixture(params=[True, False], ids=["swap-accounting", "no-swap-accounting"])
def cgroupfs(request, tmp_path, monkeypatch) -> FakeCgroupfs:
    fake = FakeCgroupfs(tmp_path / "cgroup", swap_accounting=request.param)
    fake.install(monkeypatch)
    # A runner of usual size: no headroom above a run's budget (see the oom_headroom tests).
    monkeypatch.setattr(cgroups, "_own_rss", lambda: 40 * MIB)
    return fake


@pytest.fixture
def cgroup(cgroupfs) -> RunCgroup:
    return RunCgroup.create(memory_bytes=256 * MIB, max_processes=12, root=cgroupfs.root)


def read(cgroup: RunCgroup, controller: str, name: str) -> str:
    return (cgroup.path(controller) / name).read_text()


def write(cgroup: RunCgroup, controller: str, name: str, content: str) -> None:
    (cgroup.path(controller) / name).write_text(content)


def test_create_makes_a_folder_per_controller_under_the_parent(cgroupfs, cgroup):
    assert cgroup.name.startswith("run-")
    for controller in CONTROLLERS:
        assert cgroup.path(controller) == cgroupfs.root / controller / PARENT / cgroup.name
        assert cgroup.path(controller).is_dir()


def test_create_writes_the_limits_into_the_right_files(cgroupfs, cgroup):
    assert read(cgroup, "memory", "memory.limit_in_bytes") == str(256 * MIB)
    if cgroupfs.swap_accounting:
        assert read(cgroup, "memory", "memory.memsw.limit_in_bytes") == str(256 * MIB)
    else:
        assert not (cgroup.path("memory") / "memory.memsw.limit_in_bytes").exists()
    assert read(cgroup, "pids", "pids.max") == "12"


def test_create_resets_the_counters(cgroup):
    assert read(cgroup, "memory", "memory.max_usage_in_bytes") == "0"
    assert read(cgroup, "memory", "memory.failcnt") == "0"
    assert read(cgroup, "cpuacct", "cpuacct.usage") == "0"


def test_two_cgroups_have_different_names(cgroupfs, cgroup):
    other = RunCgroup.create(memory_bytes=MIB, max_processes=1, root=cgroupfs.root)
    assert other.name != cgroup.name


def test_a_refused_limit_fails_create_and_leaves_nothing_behind(cgroupfs):
    with pytest.raises(OSError, match="not a process count"):
        RunCgroup.create(memory_bytes=MIB, max_processes=-1, root=cgroupfs.root)
    for controller in CONTROLLERS:
        assert list((cgroupfs.root / controller / PARENT).iterdir()) == []


def test_no_cgroup_where_the_hierarchy_is_missing(tmp_path):
    with pytest.raises(OSError):
        RunCgroup.create(memory_bytes=MIB, max_processes=1, root=tmp_path / "nowhere")


@pytest.mark.parametrize("megabytes", [64, 1024], ids=["lower", "higher"])
def test_prepare_moves_the_limits_either_way_and_resets_the_counters(cgroupfs, cgroup, megabytes):
    """With swap accounting, memory+swap may never be below memory: raising and lowering
    both pass only in the right order (the fake refuses the wrong one)."""
    write(cgroup, "memory", "memory.max_usage_in_bytes", "5555")
    write(cgroup, "memory", "memory.failcnt", "3")
    write(cgroup, "cpuacct", "cpuacct.usage", "4444")
    cgroup.prepare(megabytes * MIB, 40)
    assert read(cgroup, "memory", "memory.limit_in_bytes") == str(megabytes * MIB)
    if cgroupfs.swap_accounting:
        assert read(cgroup, "memory", "memory.memsw.limit_in_bytes") == str(megabytes * MIB)
    assert read(cgroup, "pids", "pids.max") == "40"
    assert read(cgroup, "memory", "memory.max_usage_in_bytes") == "0"
    assert read(cgroup, "memory", "memory.failcnt") == "0"
    assert read(cgroup, "cpuacct", "cpuacct.usage") == "0"


def test_peak_memory_and_cpu_time_are_read_from_the_counters(cgroup):
    write(cgroup, "memory", "memory.max_usage_in_bytes", str(5 * MIB + 1023))
    write(cgroup, "cpuacct", "cpuacct.usage", "1234567890")  # nanoseconds
    assert cgroup.peak_memory_kb() == 5 * 1024
    assert cgroup.cpu_ms() == 1234


def test_the_runners_own_share_is_left_out_of_the_peak_and_raises_the_limit(cgroupfs, monkeypatch):
    """Inside, the runner's memory in use when a run starts is not the run's: the limit
    gives the run its whole budget above it, and the peak counts from it."""
    cgroup = RunCgroup.create(memory_bytes=256 * MIB, max_processes=12, root=cgroupfs.root)
    monkeypatch.setattr(cgroup, "_current", lambda controller: cgroupfs.root / controller)
    cgroup.enter()
    write(cgroup, "memory", "memory.usage_in_bytes", str(3 * MIB))
    write(cgroup, "pids", "pids.current", "3")  # the runner's tasks, and what else it runs
    cgroup.prepare(64 * MIB, 10)
    assert read(cgroup, "memory", "memory.limit_in_bytes") == str(67 * MIB)
    assert read(cgroup, "pids", "pids.max") == str(10 + 3)
    write(cgroup, "memory", "memory.max_usage_in_bytes", str(3 * MIB + 10 * MIB))
    assert cgroup.peak_memory_kb() == 10 * 1024


def test_file_cache_in_the_cgroup_is_not_counted_as_the_runners_share(cgroupfs, monkeypatch):
    """Cache of files written or read by the runner is charged to its cgroup but the kernel
    reclaims it under pressure: counted as the runner's, it would be extra room for a run."""
    cgroup = RunCgroup.create(memory_bytes=256 * MIB, max_processes=12, root=cgroupfs.root)
    monkeypatch.setattr(cgroup, "_current", lambda controller: cgroupfs.root / controller)
    cgroup.enter()
    write(cgroup, "memory", "memory.usage_in_bytes", str(403 * MIB))
    stat = f"cache {400 * MIB}\nrss {3 * MIB}\nactive_file {150 * MIB}\ninactive_file {250 * MIB}\n"
    write(cgroup, "memory", "memory.stat", stat)
    cgroup.prepare(64 * MIB, 10)
    assert read(cgroup, "memory", "memory.limit_in_bytes") == str(67 * MIB)
    write(cgroup, "memory", "memory.max_usage_in_bytes", str(3 * MIB + 10 * MIB))
    assert cgroup.peak_memory_kb() == 10 * 1024


def test_out_of_memory_counts_the_kills_since_prepare(cgroup):
    """The oom_kill counter was 2 when the cgroup was prepared: only kills after count."""
    assert cgroup.out_of_memory() is False
    write(cgroup, "memory", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    assert cgroup.out_of_memory() is True
    cgroup.prepare(256 * MIB, 12)
    assert cgroup.out_of_memory() is False


def test_without_an_oom_kill_counter_hitting_the_limit_is_out_of_memory(cgroupfs):
    for controller in CONTROLLERS:
        (cgroupfs.root / controller / PARENT / "old").mkdir()
    old_kernel = RunCgroup("old", cgroupfs.root)
    write(old_kernel, "memory", "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")
    old_kernel.prepare(256 * MIB, 12)
    assert old_kernel.out_of_memory() is False
    write(old_kernel, "memory", "memory.failcnt", "1")
    assert old_kernel.out_of_memory() is True


def test_processes_are_listed_from_the_pids_controller_without_the_runner(cgroup):
    assert cgroup.processes() == []
    write(cgroup, "pids", "cgroup.procs", f"12\n{os.getpid()}\n345\n")
    assert cgroup.processes() == [12, 345]


def test_enter_moves_the_caller_in_once_and_remove_moves_it_back_home(
    cgroupfs, cgroup, monkeypatch
):
    own = {"memory": "/user.slice/a", "pids": "/user.slice/b", "cpuacct": "/"}
    memberships = (
        f"12:memory:{own['memory']}\n7:pids:{own['pids']}\n4:cpu,cpuacct:{own['cpuacct']}\n"
        "1:name=systemd:/user.slice\n"
    )
    homes = {ctl: cgroupfs.root / ctl / path.lstrip("/") for ctl, path in own.items()}
    for home in homes.values():
        home.mkdir(parents=True, exist_ok=True)

    def fake_open(path, *args, **kwargs):
        assert path == "/proc/self/cgroup"
        return io.StringIO(memberships)

    monkeypatch.setattr(cgroups, "open", fake_open, raising=False)
    cgroup.enter()
    for controller in CONTROLLERS:
        assert read(cgroup, controller, "cgroup.procs") == str(os.getpid())
    assert cgroup.entered
    write(cgroup, "memory", "cgroup.procs", "")
    cgroup.enter()  # already inside: nothing moves again
    assert read(cgroup, "memory", "cgroup.procs") == ""
    for controller in CONTROLLERS:
        write(cgroup, controller, "cgroup.procs", "")  # as the kernel does when one leaves
    cgroup.remove()
    for home in homes.values():
        assert (home / "cgroup.procs").read_text() == str(os.getpid())
    assert not cgroup.entered


def test_kill_all_kills_every_listed_process_until_none_is_left(cgroup, monkeypatch):
    """A fork racing the kill (103, listed once 101 is killed) is caught by the next round."""
    write(cgroup, "pids", "cgroup.procs", "101\n102\n")
    rounds = []

    def kill_and_wait(pids: list[int], deadline: float) -> None:
        rounds.append(sorted(pids))
        left = [] if 103 in pids else [103]
        write(cgroup, "pids", "cgroup.procs", "\n".join(map(str, left)))

    monkeypatch.setattr(cgroups, "kill_and_wait", kill_and_wait)
    cgroup.kill_all()
    assert rounds == [[101, 102], [103]]
    assert cgroup.processes() == []


def test_remove_deletes_the_folders(cgroupfs, cgroup):
    cgroup.remove()
    for controller in CONTROLLERS:
        assert not cgroup.path(controller).exists()
        assert (cgroupfs.root / controller / PARENT).is_dir()
    cgroup.remove()  # already gone: nothing to do


def test_stale_cgroups_of_killed_runners_are_removed_busy_and_new_ones_kept(cgroupfs):
    stale = RunCgroup.create(memory_bytes=MIB, max_processes=1, root=cgroupfs.root)
    busy = RunCgroup.create(memory_bytes=MIB, max_processes=1, root=cgroupfs.root)
    new = RunCgroup.create(memory_bytes=MIB, max_processes=1, root=cgroupfs.root)
    write(busy, "memory", "cgroup.procs", "4242\n")
    an_hour_ago = time.time() - 3600
    for old in (stale, busy):
        os.utime(old.path("memory"), (an_hour_ago, an_hour_ago))

    cgroups._remove_stale_cgroups(cgroupfs.root)

    assert not stale.path("memory").exists()
    assert busy.path("memory").exists()  # processes in it: rmdir refused
    assert new.path("memory").exists()  # just made: its runner is about to enter


def test_relax_lifts_every_limit_between_runs(cgroupfs, cgroup):
    cgroup.prepare(16 * MIB, 3)

    cgroup.relax()

    assert read(cgroup, "memory", "memory.limit_in_bytes") == UNLIMITED
    if cgroupfs.swap_accounting:
        assert read(cgroup, "memory", "memory.memsw.limit_in_bytes") == UNLIMITED
    assert read(cgroup, "pids", "pids.max") == "max"
    cgroup.prepare(32 * MIB, 5)  # and the next run's limits go in again, in order
    assert read(cgroup, "memory", "memory.limit_in_bytes") == str(32 * MIB)


def test_what_was_in_the_cgroup_before_a_run_is_neither_listed_nor_killed(cgroupfs, monkeypatch):
    """A process the runner had started before (a test process's own server) is no part
    of the run."""
    cgroup = RunCgroup.create(memory_bytes=256 * MIB, max_processes=12, root=cgroupfs.root)
    monkeypatch.setattr(cgroup, "_current", lambda controller: cgroupfs.root / controller)
    cgroup.enter()
    write(cgroup, "pids", "cgroup.procs", f"{os.getpid()}\n777\n")
    cgroup.prepare(64 * MIB, 10)
    write(cgroup, "pids", "cgroup.procs", f"{os.getpid()}\n777\n888\n")

    assert cgroup.processes() == [888]


@pytest.mark.parametrize(
    ("own_rss_mib", "charged_mib", "budget_mib", "headroom_mib"),
    [
        (60, 5, 256, 0),  # a runner of usual size, the default budget
        (80, 5, 16, 37.5),  # a small budget: the program must still outscore the runner
        (300, 20, 128, 28),  # a test session grading in-process
    ],
)
def test_the_headroom_keeps_a_program_that_fills_its_limit_above_its_runner(
    own_rss_mib, charged_mib, budget_mib, headroom_mib
):
    headroom = cgroups.oom_headroom(own_rss_mib * MIB, charged_mib * MIB, budget_mib * MIB)

    assert headroom == headroom_mib * MIB
    # The kernel's scores when the program has filled the limit: it, at OOM_SCORE_ADJ 1000,
    # its memory plus the limit; the runner its resident memory.
    limit = (charged_mib + budget_mib) * MIB + headroom
    program_score = (limit - charged_mib * MIB) + limit
    assert program_score > own_rss_mib * MIB
