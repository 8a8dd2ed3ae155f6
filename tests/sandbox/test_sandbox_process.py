"""sandbox.process.execute with real child processes, once with the always-on layers only
("basic") and once with every layer this machine supports ("probed", what the runner uses).

With the `namespaces` layer the program runs in a PID namespace of its own, so the pids it
reports mean nothing on the host: whether its processes survived is checked by a marker
each test puts in their command lines, looked up in the host's /proc."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from runner_image.sandbox.cgroups import kill_and_wait, runner_cgroup
from runner_image.sandbox.isolation import Isolation, probe_isolation, processes_of_current_uid
from runner_image.sandbox.namespaces import SANDBOX_WORKDIR
from runner_image.sandbox.process import Limits, execute

# The sandbox's python3 (found through the sandbox's PATH), as the python language runs it.
PYTHON = ("python3", "-I", "-S", "-c")
LIMITS = Limits(cpu_ms=1000, wall_ms=5000, memory_mb=128)


@pytest.fixture(scope="module")
def probed() -> Isolation:
    return probe_isolation()


@pytest.fixture(params=["basic", "probed"])
def isolation(request) -> Isolation:
    if request.param == "probed":
        return request.getfixturevalue("probed")
    return Isolation(runner_pid=os.getpid(), process_baseline=processes_of_current_uid())


@pytest.fixture
def workdir(isolation) -> Path:
    """Like the grader's: a fresh directory the sandbox uid (if any) owns."""
    path = Path(tempfile.mkdtemp(prefix="cloudemy-sandbox-test-"))
    if isolation.uid is not None:
        os.chown(path, isolation.uid, isolation.uid)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def run(workdir, isolation):
    def run(code: str, stdin: bytes = b"", limits: Limits = LIMITS):
        return execute([*PYTHON, code], stdin, workdir, limits, isolation)

    return run


def alive(pid: int) -> bool:
    """os.kill(pid, 0), except that a zombie (killed, awaiting its reaper) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def marked_processes(marker: str) -> list[int]:
    """Host pids of the live processes whose command line holds `marker`: a sandboxed
    program's, its forks' (which share it), bwrap's (whose command line ends with the
    program's), and those of children started with the marker in their own."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until_none_left(marker: str, timeout: float = 2.0) -> list[int]:
    """The marked processes still alive after `timeout` (none, if the sandbox did its job)."""
    deadline = time.monotonic() + timeout
    while (left := marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.fixture
def marker():
    """A string unique to the test, for the command lines of the processes it starts in the
    sandbox; whatever of them the sandbox missed is killed afterwards."""
    marker = f"cloudemy-marker-{secrets.token_hex(8)}"
    yield marker
    for pid in marked_processes(marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


class Watcher:
    """Polls for marked processes while a run goes on, to prove the marker finds them."""

    def __init__(self, marker: str) -> None:
        self.marker = marker
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.seen.update(marked_processes(self.marker))
            time.sleep(0.02)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


def test_output_and_exit_code(run):
    result = run("import sys; print('hello'); sys.stderr.write('oops'); sys.exit(3)")
    assert result.stdout == b"hello\n"
    assert result.stderr == b"oops"
    assert result.exit_code == 3
    assert result.signal is None
    assert result.timed_out is False
    assert result.output_exceeded is False
    assert result.max_rss_kb > 0


def test_stdin_is_delivered(run):
    result = run("import sys; print(sys.stdin.read().upper(), end='')", b"abc\nxyz\n")
    assert result.exit_code == 0
    assert result.stdout == b"ABC\nXYZ\n"


def test_large_stdin_is_delivered_whole(run):
    stdin = b"0123456789abcdef" * 128 * 1024  # 2 MiB, far beyond a pipe's buffer
    result = run("import sys; print(len(sys.stdin.buffer.read()))", stdin)
    assert result.stdout == str(len(stdin)).encode() + b"\n"


def test_runs_in_the_workdir(run, workdir, isolation):
    """In the workdir, seen as /work inside the namespaces: what it writes there lands in
    the host's workdir."""
    result = run("import os; print(os.getcwd()); open('proof', 'w').write('here')")
    inside = SANDBOX_WORKDIR if isolation.namespaces else str(workdir)
    assert result.stdout.decode().strip() == inside
    assert (workdir / "proof").read_text() == "here"


def test_environment_is_scrubbed(run, workdir, isolation, monkeypatch):
    monkeypatch.setenv("INTERNAL_RESULT_TOKEN", "secret-xyz")
    monkeypatch.setenv("LLM_API_KEY", "secret-key-abc")
    result = run("import json, os; print(json.dumps(dict(os.environ)))")
    assert result.exit_code == 0
    assert b"secret-xyz" not in result.stdout
    assert b"secret-key-abc" not in result.stdout
    environ = json.loads(result.stdout)
    inside = SANDBOX_WORKDIR if isolation.namespaces else str(workdir)
    expected = {"PATH", "HOME", "LANG", "TMPDIR"}
    if isolation.namespaces:
        expected.add("PWD")  # bwrap sets it for its --chdir
        assert environ["PWD"] == SANDBOX_WORKDIR
    assert set(environ) == expected
    assert environ["HOME"] == inside
    assert environ["TMPDIR"] == inside


FORK_UNTIL_REFUSED = """
import errno, os, time
started = 0
while started < 64:
    try:
        pid = os.fork()
    except OSError as exc:
        print(started, errno.errorcode[exc.errno])
        break
    if pid == 0:
        time.sleep(10)
        os._exit(0)
    started += 1
else:
    print(started, "never refused")
"""


PROCESS_CAP_IN_A_RUNNER = """
import os, shutil, sys, tempfile
from pathlib import Path
from runner_image.sandbox.isolation import probe_isolation
from runner_image.sandbox.process import Limits, execute

isolation = probe_isolation()
workdir = Path(tempfile.mkdtemp())
os.chown(workdir, isolation.uid, isolation.uid)
few = Limits(cpu_ms=1500, wall_ms=5000, memory_mb=128, processes=16)
result = execute(["python3", "-I", "-S", "-c", sys.argv[1]], b"", workdir, few, isolation)
print(result.stdout.decode() or result.stderr.decode())
shutil.rmtree(workdir)
"""


def test_resource_limits_are_applied(run, isolation):
    code = (
        "import resource as r\n"
        "print(r.getrlimit(r.RLIMIT_AS)[0], r.getrlimit(r.RLIMIT_NOFILE)[0],"
        " r.getrlimit(r.RLIMIT_CORE)[0], r.getrlimit(r.RLIMIT_CPU)[0])"
    )
    limits = Limits(cpu_ms=1500, wall_ms=5000, memory_mb=128, open_files=32)
    result = run(code, limits=limits)
    address_space, *others = result.stdout.split()
    assert others == [b"32", b"0", b"2"]
    if not isolation.cgroup:
        assert address_space == str(128 * 1024 * 1024).encode()
        return
    # With a cgroup, memory and processes are capped by it instead of by rlimits.
    assert address_space == str(resource.RLIM_INFINITY).encode()
    # The process cap, in a process of its own, as a runner is: in this one, a thread of
    # another fixture that ended during the run would free its slot for the program.
    forked = subprocess.run(
        [sys.executable, "-c", PROCESS_CAP_IN_A_RUNNER, FORK_UNTIL_REFUSED],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert forked.returncode == 0, forked.stderr
    started, refusal = forked.stdout.split()
    # The program and its children stay within the cap, give or take the slot the runner
    # held in the cgroup for the instant it spawned the run (its one thread), freed after.
    assert int(started) <= 16
    assert refusal == "EAGAIN"
    result = run("x = bytearray(256 * 1024 * 1024)", limits=limits)
    assert result.out_of_memory is True
    assert result.signal == signal.SIGKILL
    assert result.max_rss_kb <= 128 * 1024 + runner_cgroup().headroom // 1024


def test_file_cache_the_runner_left_is_no_extra_memory_for_a_run(run, isolation):
    """Cache of files the runner wrote is charged to its cgroup; once the kernel reclaims
    it, a run must not get that much beyond its limit."""
    if not isolation.cgroup:
        pytest.skip("rlimits cap the address space itself; no cache is charged to them")
    limits = Limits(cpu_ms=1500, wall_ms=5000, memory_mb=128)
    with tempfile.TemporaryFile(dir="/var/tmp") as cache:
        for _ in range(256):
            cache.write(secrets.token_bytes(1024 * 1024))
        cache.flush()
        result = run("x = bytearray(256 * 1024 * 1024)", limits=limits)
    assert result.out_of_memory is True
    assert result.signal == signal.SIGKILL


def test_runs_in_its_own_session(run, isolation):
    """Not in the runner's session, and without a controlling terminal. Under bwrap the
    session is the one bwrap's init (pid 1 of the namespace) started for the program: a
    session led from outside the PID namespace would read as 0 there."""
    code = (
        "import os\n"
        "print(os.getsid(0), os.getpgid(0), os.getpid())\n"
        "try:\n"
        "    open('/dev/tty').close()\n"
        "    print('terminal')\n"
        "except OSError:\n"
        "    print('no-terminal')\n"
    )
    result = run(code)
    sid, pgid, pid, terminal = result.stdout.split()
    assert terminal == b"no-terminal"
    if isolation.namespaces:
        assert (sid, pgid) == (b"1", b"1")
        assert pid != b"1"
    else:
        assert sid == pgid == pid


def test_wall_timeout(run):
    limits = Limits(cpu_ms=1000, wall_ms=500, memory_mb=128)
    started = time.monotonic()
    result = run("import time; time.sleep(30)", limits=limits)
    elapsed = time.monotonic() - started
    assert elapsed < 10
    assert result.timed_out is True
    assert result.signal == signal.SIGKILL
    assert result.exit_code is None
    assert 500 <= result.wall_ms < 5000


def test_timeout_kills_the_whole_process_group(run, marker):
    code = (
        "import subprocess, sys, time\n"
        # The child's marker is put together at run time: only the child's command line
        # holds it whole, so the watcher below proves the child itself was found.
        "child = ('import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f" time.sleep(60)  # ' + 'child-' + '{marker}')\n"
        "p = subprocess.Popen([sys.executable, '-I', '-S', '-c', child],"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    limits = Limits(cpu_ms=1000, wall_ms=1000, memory_mb=128)
    with Watcher(f"child-{marker}") as watcher:
        result = run(code, limits=limits)
    int(result.stdout)  # the child was started
    assert result.timed_out is True
    assert watcher.seen, "the child was never found by its marker while it ran"
    left = wait_until_none_left(marker)
    assert left == [], f"processes {left} of the sandboxed group survived"


def test_grandchild_holding_stdout_does_not_hang(run, marker):
    code = (
        "import subprocess, sys\n"
        f"grandchild = 'import time; time.sleep(30)  # {marker}'\n"
        "p = subprocess.Popen([sys.executable, '-I', '-S', '-c', grandchild])\n"
        "print(p.pid)\n"
        "print('done')\n"
    )
    started = time.monotonic()
    result = run(code)
    elapsed = time.monotonic() - started
    int(result.stdout.split()[0])  # the grandchild was started
    assert elapsed < 3
    assert result.timed_out is False
    assert result.exit_code == 0
    assert result.stdout.split()[1] == b"done"
    assert wait_until_none_left(marker) == []


ESCAPE_TO_A_NEW_SESSION = """
import os, time
ready_r, ready_w = os.pipe()
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        os.setsid()
    except OSError:
        pass  # refused by seccomp: it stays in the group
    os.write(ready_w, b"x")
    time.sleep(20)
    os._exit(0)
os.read(ready_r, 1)
print(pid)
# MARKER
"""


def test_descendant_in_a_new_session_does_not_survive(run, marker):
    """Even at the basic level, where nothing refuses setsid: the runner is a child
    subreaper, so the orphan that left the group comes back to it and is killed."""
    result = run(ESCAPE_TO_A_NEW_SESSION.replace("MARKER", marker))
    int(result.stdout)  # the descendant was started (and has left the group if it could)
    assert result.exit_code == 0
    left = wait_until_none_left(marker, timeout=1.0)
    assert left == [], f"processes {left} escaped and survived"


def test_output_flood_is_capped(run):
    limits = Limits(cpu_ms=1000, wall_ms=5000, memory_mb=128, output_bytes=4096)
    started = time.monotonic()
    result = run("while True: print('x' * 1000)", limits=limits)
    assert time.monotonic() - started < 3
    assert result.output_exceeded is True
    assert result.timed_out is False
    assert len(result.stdout) == 4096
    assert set(result.stdout) <= set(b"x\n")


def test_output_exactly_at_the_cap_is_allowed(run):
    limits = Limits(cpu_ms=1000, wall_ms=5000, memory_mb=128, output_bytes=4096)
    result = run("import sys; sys.stdout.write('y' * 4096)", limits=limits)
    assert result.output_exceeded is False
    assert result.stdout == b"y" * 4096


def test_stderr_flood_is_truncated_without_failing(run):
    limits = Limits(cpu_ms=1000, wall_ms=5000, memory_mb=128, stderr_bytes=1024)
    result = run("import sys; sys.stderr.write('e' * 200000); print('ok')", limits=limits)
    assert result.exit_code == 0
    assert result.stdout == b"ok\n"
    assert result.stderr == b"e" * 1024
    assert result.output_exceeded is False


def test_cpu_burn_is_stopped(run):
    limits = Limits(cpu_ms=500, wall_ms=8000, memory_mb=128)
    started = time.monotonic()
    result = run("while True: pass", limits=limits)
    assert time.monotonic() - started < 5
    assert result.timed_out is False
    assert result.signal in (signal.SIGXCPU, signal.SIGKILL)
    assert result.signal == signal.SIGXCPU or result.cpu_ms > 500
    assert result.cpu_ms >= 900


def test_memory_hog_gets_memory_error(run, isolation):
    """Refused by RLIMIT_AS (a MemoryError) or, under a cgroup, killed by the kernel's
    out-of-memory killer at the limit; either way it never holds more than the limit."""
    limits = Limits(cpu_ms=1000, wall_ms=5000, memory_mb=128)
    result = run("x = bytearray(10**9)", limits=limits)
    if isolation.cgroup:
        assert result.out_of_memory is True
        assert result.signal == signal.SIGKILL
        # The limit's headroom is what a test session as big as this one needs to never be
        # chosen by the OOM killer before its program (cgroups.oom_headroom).
        assert result.max_rss_kb <= 128 * 1024 + runner_cgroup().headroom // 1024
    else:
        assert result.out_of_memory is False
        assert result.exit_code == 1
        assert b"MemoryError" in result.stderr
        assert result.max_rss_kb < 128 * 1024


def test_between_runs_the_runners_cgroup_has_no_limit(probed, workdir):
    """The runner stays in its cgroup: its own work after a run (the LLM step) must never
    meet that run's memory or process limit."""
    if not probed.cgroup:
        pytest.skip("no cgroup on this machine: nothing shared with the runner")
    if probed.uid is not None:
        os.chown(workdir, probed.uid, probed.uid)
    small = Limits(cpu_ms=1000, wall_ms=5000, memory_mb=32)
    execution = execute([*PYTHON, "print(1)"], b"", workdir, small, probed)

    assert execution.exit_code == 0
    cgroup = runner_cgroup()
    assert int((cgroup.path("memory") / "memory.limit_in_bytes").read_text()) > 2**60
    assert (cgroup.path("pids") / "pids.max").read_text().strip() == "max"


def test_the_programs_are_the_ones_the_out_of_memory_killer_chooses(probed, workdir):
    """The cgroup's OOM killer weighs every member by its resident memory, even memory the
    runner had before it entered (charged elsewhere): a big runner (this test session)
    must still never be chosen before its program."""
    if not probed.cgroup:
        pytest.skip("no cgroup on this machine: rlimits stop the program itself")
    if probed.uid is not None:
        os.chown(workdir, probed.uid, probed.uid)
    code = "print(open('/proc/self/oom_score_adj').read().strip())"
    execution = execute([*PYTHON, code], b"", workdir, LIMITS, probed)
    assert execution.stdout == b"1000\n"

    ballast = bytearray(os.urandom(1024)) * (400 * 1024)  # 400 MiB, resident, this process
    small = Limits(cpu_ms=2000, wall_ms=10_000, memory_mb=64)
    hog = execute([*PYTHON, "x = bytearray(10**9)"], b"", workdir, small, probed)

    assert hog.out_of_memory is True  # and this process, far bigger than the program, lives
    assert hog.signal == signal.SIGKILL
    assert len(ballast) == 400 * 1024 * 1024


def test_a_run_over_its_budget_is_out_of_memory_even_when_it_finishes(run, isolation):
    """Where the kernel's cap leaves headroom for a big runner (this test session), the
    budget itself is held by the run's measured peak."""
    if not isolation.cgroup:
        pytest.skip("rlimits cap the address space itself")
    code = "x = bytearray(100 * 1024 * 1024)\nprint('done')"
    result = run(code, limits=Limits(cpu_ms=2000, wall_ms=10_000, memory_mb=64))

    assert result.out_of_memory is True


def test_kill_and_wait_returns_once_every_process_has_ended():
    """Processes that ignore every signal they may, and one that has exited already (not
    reaped yet): all end, and the call returns as soon as they have, long before its
    deadline."""
    stubborn = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import signal, time\n"
                "for s in (signal.SIGTERM, signal.SIGINT): signal.signal(s, signal.SIG_IGN)\n"
                "time.sleep(60)",
            ]
        )
        for _ in range(2)
    ]
    exited = subprocess.Popen(["true"])
    while Path(f"/proc/{exited.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
    began = time.monotonic()
    kill_and_wait([p.pid for p in stubborn] + [exited.pid], deadline=began + 30)
    assert time.monotonic() - began < 10
    for process in stubborn:
        assert process.wait(timeout=5) == -signal.SIGKILL
    assert exited.wait(timeout=5) == 0
