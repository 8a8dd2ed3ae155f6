"""Hostile submissions against the isolation of issue 9, each through the real runner at
the `namespaced` level: nothing a run does reaches the host, another run, or outlives it.
Each attack is also shown to work (or its trace to be detectable) outside the sandbox, so
no case can pass because the attack itself was broken."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.runner_harness import RunnerRun, assert_contained

REPOSITORY = Path(__file__).resolve().parents[2]
SYS_RENAMEAT2 = 316  # x86_64
RENAME_EXCHANGE = 2
AT_FDCWD = -100
IPC_CREAT = 0o1000
IPC_RMID = 0
SHM_BYTES = 128 * 1024 * 1024
WRITABLE_PLACES = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
# What a sandbox's root may hold: the toolchain (/usr and its links, a few /etc files), its
# own /proc, /dev, private temporary folders, and its working folder.
SANDBOX_ROOT = {
    *("bin", "sbin", "lib", "lib32", "lib64", "usr", "etc"),
    *("proc", "dev", "tmp", "var", "run", "work"),
}

_libc = ctypes.CDLL(None, use_errno=True)

# Root and the namespaced level with every layer, or the suite fails under CI / is skipped
# loudly (conftest.py).
pytestmark = pytest.mark.usefixtures("namespaced_sandbox")


@dataclass
class TimedRun:
    run: RunnerRun
    started: float  # time.time(), the clock a submission reads too (no time namespace)
    ended: float


def run_concurrently(
    run_submission: Callable[..., RunnerRun], *submissions: dict[str, Any]
) -> list[TimedRun]:
    """Each submission through its own runner process, all at the same time."""

    def timed(kwargs: dict[str, Any]) -> TimedRun:
        started = time.time()
        run = run_submission(require_isolation="namespaced", **kwargs)
        return TimedRun(run, started, time.time())

    with ThreadPoolExecutor(max_workers=len(submissions)) as pool:
        return list(pool.map(timed, submissions))


def host_cmdlines_with(marker: str) -> list[int]:
    """Host processes whose command line holds `marker` (the host sees every pid)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError), open(f"{entry.path}/cmdline", "rb") as cmdline:
                if marker.encode() in cmdline.read():
                    found.append(int(entry.name))
    return found


def shm_segments() -> list[dict[str, str]]:
    """`ipcs -m` on the host, one dict per segment."""
    listing = subprocess.run(["ipcs", "-m"], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[0].startswith("0x"):
            keys = ("key", "shmid", "owner", "perms", "bytes", "nattch")
            rows.append(dict(zip(keys, fields, strict=False)))
    return rows


def shm_key_hex(key: int) -> str:
    return f"0x{key:08x}"


@pytest.fixture
def root_only_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="cloudemy-hostile-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# 1. The rename-exchange race against whatever root cleans up ---------------------------

RACE_CODE = """\
import ctypes, glob, os, secrets, time
CANARY_DIR, BAIT, SECONDS = {canary_dir!r}, {bait!r}, {seconds!r}
PLACES = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", os.getcwd())
libc = ctypes.CDLL(None, use_errno=True)

def exchange(a, b):
    if libc.syscall(316, -100, a.encode(), -100, b.encode(), 2) == 0:
        return 1
    if ctypes.get_errno() != 38:  # only without renameat2 (ENOSYS): plain renames
        return 0
    os.rename(a, a + ".x"); os.rename(b, a); os.rename(a + ".x", b)
    return 1

def plant(folder):
    # A file of ours under the canary's name in another run's world-writable folder, where
    # a sweep of our files would look (and the other run swaps that folder for a link).
    try:
        with open(os.path.join(folder, BAIT), "w") as bait:
            bait.write("bait")
    except OSError:
        pass

def race(place):
    base = os.path.join(place, "race-" + secrets.token_hex(6))
    os.makedirs(base + "/d")
    os.chmod(base, 0o777)
    os.chmod(base + "/d", 0o777)
    os.symlink(CANARY_DIR, base + "/l")
    rounds, end = 0, time.monotonic() + SECONDS
    while time.monotonic() < end:
        for _ in range(100):
            rounds += exchange(base + "/d", base + "/l")
        for other in glob.glob(os.path.join(place, "race-*", "d")):  # another run's
            if not other.startswith(base):
                plant(other)
    return rounds

children = []
for place in PLACES:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write, str(race(place)).encode())
        finally:
            os._exit(0)
    os.close(write)
    children.append((pid, read))
raced = 0
for pid, read in children:
    rounds = int(os.read(read, 64) or b"0")
    os.waitpid(pid, 0)
    raced += rounds >= 200
print("raced", raced)
"""


def test_rename_exchange_race_cannot_reach_a_root_owned_file(run_submission, root_only_dir: Path):
    canary_dir = root_only_dir / "canary-dir"
    canary_dir.mkdir(mode=0o700)
    canary = canary_dir / "canary.txt"
    content = secrets.token_hex(16)
    canary.write_text(content)
    # The attack's primitive works here: a directory and a symlink swap places.
    scratch = root_only_dir / "scratch"
    (scratch / "d").mkdir(parents=True)
    (scratch / "l").symlink_to(canary_dir)
    swapped = _libc.syscall(
        SYS_RENAMEAT2,
        AT_FDCWD,
        bytes(scratch / "d"),
        AT_FDCWD,
        bytes(scratch / "l"),
        RENAME_EXCHANGE,
    )
    assert swapped == 0, os.strerror(ctypes.get_errno())
    assert (scratch / "d").is_symlink() and not (scratch / "l").is_symlink()
    shutil.rmtree(scratch)

    # Out of step (10 tests of 0.3 s against 4 of 0.9 s), so that whatever is cleaned up after
    # a test of one run is cleaned up while the other run is racing.
    submissions = [
        {
            "code": RACE_CODE.format(canary_dir=str(canary_dir), bait=canary.name, seconds=s),
            "tests": [
                {"name": f"race-{i}", "stdin": "", "expected_stdout": "raced 5\n"}
                for i in range(count)
            ],
            "time_limit_ms": 4000,
        }
        for s, count in ((0.3, 10), (0.9, 4))
    ]
    timed = run_concurrently(run_submission, *submissions)

    assert canary.read_text() == content
    assert canary_dir.is_dir() and not canary_dir.is_symlink()
    assert sorted(os.listdir(canary_dir)) == [canary.name]
    for each in timed:
        # Every test raced at least 200 rounds in each of its five writable places.
        assert set(each.run.verdicts()) == {"accepted"}, each.run.result["tests"]
        assert_contained(each.run)
    assert timed[0].run.sandbox_uid != timed[1].run.sandbox_uid


# 2. SysV shared memory and files in the shared writable folders --------------------------

SHM_AND_FILES_CODE = """\
import ctypes, os
KEY, SIZE, NAME = {key!r}, {size!r}, {name!r}
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
shmid = libc.shmget(KEY, ctypes.c_size_t(SIZE), 0o1000 | 0o666)
address = libc.shmat(shmid, None, 0) if shmid >= 0 else None
if address in (None, ctypes.c_void_p(-1).value):
    print("no segment", ctypes.get_errno())
else:
    ctypes.memset(address, 0x5A, SIZE)  # every page allocated, and no IPC_RMID
    print("segment held")
for place in ("/run/lock", "/tmp", "/var/tmp", "/dev/shm"):
    with open(os.path.join(place, NAME), "w") as stash:
        stash.write("left behind")
    print("wrote", place)
"""


def test_sysv_memory_and_shared_folder_files_do_not_outlive_the_run(run_submission):
    key = secrets.randbits(30) | 1
    name = f"cloudemy-left-{secrets.token_hex(8)}"
    # A segment made on the host shows in `ipcs -m` by its key: the check below can see one.
    probe_key = key ^ 0x2
    probe = _libc.shmget(probe_key, ctypes.c_size_t(4096), IPC_CREAT | 0o600)
    assert probe >= 0, os.strerror(ctypes.get_errno())
    try:
        assert shm_key_hex(probe_key) in {row["key"] for row in shm_segments()}
    finally:
        _libc.shmctl(probe, IPC_RMID, None)
    before = {row["shmid"] for row in shm_segments()}

    code = SHM_AND_FILES_CODE.format(key=key, size=SHM_BYTES, name=name)
    expected = "segment held\n" + "".join(
        f"wrote {place}\n" for place in ("/run/lock", "/tmp", "/var/tmp", "/dev/shm")
    )
    run = run_submission(
        code,
        [{"name": "stash", "stdin": "", "expected_stdout": expected}],
        memory_limit_mb=512,
        require_isolation="namespaced",
    )
    # The segment was made and filled, and every file written, inside the run.
    assert run.verdicts() == ["accepted"], run.result["tests"]
    assert_contained(run)

    after = shm_segments()
    assert shm_key_hex(key) not in {row["key"] for row in after}
    assert str(run.sandbox_uid) not in {row["owner"] for row in after}
    new = [row for row in after if row["shmid"] not in before]
    assert not [row for row in new if int(row["bytes"]) >= SHM_BYTES], new
    for place in WRITABLE_PLACES:
        assert not os.path.lexists(os.path.join(place, name)), place


# 3. A hidden input stashed by one submission, looked for by the next ---------------------

STASH_CODE = """\
import ctypes, os, sys
KEY, NAME = 0x5EED0009, {name!r}
FILES = ["/run/lock/" + NAME, "/tmp/" + NAME, "/var/tmp/" + NAME, "/dev/shm/" + NAME,
         os.path.join(os.getcwd(), "..", NAME), os.path.expanduser("~/" + NAME), "/" + NAME]
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]

secret = sys.stdin.read().strip()
if secret:
    for path in FILES:
        try:
            with open(path, "w") as stash:
                stash.write(secret)
        except OSError:
            pass
    shmid = libc.shmget(KEY, ctypes.c_size_t(4096), 0o1000 | 0o666)
    address = libc.shmat(shmid, None, 0)
    ctypes.memmove(address, secret.encode() + b"\\0", len(secret) + 1)

found = []
for path in FILES:
    try:
        with open(path) as stash:
            found.append(f"found {{path}} {{stash.read()}}")
    except OSError:
        pass
shmid = libc.shmget(KEY, ctypes.c_size_t(0), 0)
if shmid >= 0:
    address = libc.shmat(shmid, None, 0o10000)  # SHM_RDONLY
    found.append(f"found shm {{ctypes.string_at(address).decode(errors='replace')}}")
print("\\n".join(found) or "nothing")
"""


def test_a_hidden_input_stashed_by_one_submission_is_invisible_to_the_next(run_submission):
    secret = f"hidden-input-{secrets.token_hex(12)}"
    name = f"cloudemy-stash-{secrets.token_hex(8)}"
    code = STASH_CODE.format(name=name)
    stasher = run_submission(
        code,
        [
            {"name": "public", "stdin": "", "expected_stdout": "nothing\n"},
            {"name": "hidden", "stdin": secret + "\n", "expected_stdout": "x", "hidden": True},
        ],
        require_isolation="namespaced",
    )
    assert_contained(stasher)
    # Within its own run the stash worked, and the reader below finds it where it is.
    stashed = stasher.result["tests"][1]["stdout"]
    for place in ("/run/lock", "/tmp", "/var/tmp", "/dev/shm"):
        assert f"found {place}/{name} {secret}" in stashed, stashed
    assert f"found shm {secret}" in stashed, stashed

    reader = run_submission(
        code,
        [{"name": "public", "stdin": "", "expected_stdout": "nothing\n"}],
        require_isolation="namespaced",
    )
    assert_contained(reader)
    assert reader.verdicts() == ["accepted"], reader.result["tests"]
    assert secret not in json.dumps(reader.result)
    assert secret not in reader.stderr
    for place in WRITABLE_PLACES:
        assert not os.path.lexists(os.path.join(place, name)), place


# 4. The host: files, process command lines, Unix sockets ---------------------------------

HOST_PROBE_CODE = """\
import os, socket
PATHS, MARKER, SOCKETS = {paths!r}, {marker!r}, {sockets!r}
for path in PATHS:
    try:
        with open(path, "rb") as planted:
            print("readable", path, planted.read(200))
    except OSError as exc:
        print("unreadable", path, exc.errno)
seen = []
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            with open(f"/proc/{{pid}}/cmdline", "rb") as cmdline:
                if MARKER.encode() in cmdline.read():
                    seen.append(pid)
        except OSError:
            pass
print("marker seen in", seen)
for target in SOCKETS:
    try:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.settimeout(1)
        client.connect(target)
        client.sendall(b"hello from the sandbox")
        print("connected", repr(target))
    except OSError as exc:
        print("unreachable", repr(target), exc.errno)
print(*sorted(os.listdir("/")))
print(*sorted(os.listdir(os.getcwd())))
"""


@pytest.fixture
def host_process() -> Iterator[str]:
    """A host process with a random marker on its command line."""
    marker = f"cloudemy-host-marker-{secrets.token_hex(8)}"
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", marker],
        stdin=subprocess.DEVNULL,
    )
    try:
        # Right after exec the command line may read empty for a moment.
        deadline = time.monotonic() + 5
        while not host_cmdlines_with(marker) and time.monotonic() < deadline:
            time.sleep(0.01)
        yield marker
    finally:
        process.kill()
        process.wait()


def test_host_files_processes_and_unix_sockets_are_out_of_reach(run_submission, host_process: str):
    planted_dir = Path(tempfile.mkdtemp(prefix="cloudemy-planted-"))
    try:
        # Readable by any uid: only the sandbox itself can keep them out of reach.
        planted_dir.chmod(0o755)
        planted = planted_dir / "secret"
        planted_text = f"planted-{secrets.token_hex(12)}"
        planted.write_text(planted_text)
        planted.chmod(0o644)
        readme = REPOSITORY / "README.md"
        venv_config = Path(sys.prefix) / "pyvenv.cfg"
        paths = [str(planted), str(readme), str(venv_config), str(REPOSITORY / "setup.cfg")]
        path_socket = str(planted_dir / "listener.sock")
        abstract = "\0cloudemy-" + secrets.token_hex(8)
        listeners = []
        for address in (path_socket, abstract):
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(address)
            listener.listen(8)
            listeners.append(listener)
        os.chmod(path_socket, 0o777)

        # On the host all of it is there: readable files, the marked process, sockets
        # that accept (those test connections are taken off the queue here).
        for path in paths:
            assert Path(path).read_bytes()
        assert host_cmdlines_with(host_process)
        for listener, address in zip(listeners, (path_socket, abstract), strict=True):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(address)
                accepted, _ = listener.accept()
                accepted.close()
            listener.setblocking(False)

        code = HOST_PROBE_CODE.format(
            paths=paths, marker=host_process, sockets=[path_socket, abstract]
        )
        run = run_submission(
            code,
            [{"name": "probe", "stdin": "", "expected_stdout": "x"}],
            require_isolation="namespaced",
        )
        assert_contained(run)
        lines = run.result["tests"][0]["stdout"].splitlines()
        assert [line.split()[0] for line in lines[: len(paths)]] == ["unreadable"] * len(paths)
        assert lines[len(paths)] == "marker seen in []", lines
        assert [line.split()[0] for line in lines[len(paths) + 1 : -2]] == ["unreachable"] * 2
        # Of the host's root only the toolchain's folders and the sandbox's own are there,
        # and the working folder holds the submission, not the checkout at /work/main.
        assert set(lines[-2].split()) <= SANDBOX_ROOT, lines[-2]
        assert set(os.listdir("/")) - SANDBOX_ROOT  # the host has more
        assert "main" not in lines[-1].split(), lines[-1]
        reported = json.dumps(run.result)
        assert planted_text not in reported
        assert max(readme.read_text().splitlines(), key=len) not in reported
        for listener in listeners:
            with pytest.raises(BlockingIOError):
                listener.accept()
            listener.close()
    finally:
        shutil.rmtree(planted_dir, ignore_errors=True)


# 5. Two concurrent runs: distinct uids, and neither can kill the other ------------------

PATIENT_CODE = "import time\ntime.sleep(2)\nprint('A ok')\n"
KILLER_CODE = """\
import os, signal, time
started, killed, me = time.time(), set(), os.getpid()
spared, pid = {me}, me
while pid > 1:  # its own ancestors (it would only kill itself through them)
    with open(f"/proc/{pid}/stat") as stat:
        pid = int(stat.read().rsplit(")", 1)[1].split()[1])
    spared.add(pid)
while time.time() < started + 4:
    try:
        os.kill(-1, signal.SIGKILL)
        killed.add(-1)
    except OSError:
        pass
    visible = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    for pid in visible + list(range(2, 70000)):
        if pid not in spared:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except OSError:
                pass
print(started, time.time(), sorted(killed))
"""


def test_concurrent_runs_get_distinct_uids_and_cannot_kill_each_other(run_submission):
    patient, killer = run_concurrently(
        run_submission,
        {
            "code": PATIENT_CODE,
            "tests": [{"name": "patient", "stdin": "", "expected_stdout": "A ok\n"}],
            "time_limit_ms": 3000,
        },
        {
            "code": KILLER_CODE,
            "tests": [{"name": "killer", "stdin": "", "expected_stdout": "x"}],
            "time_limit_ms": 8000,
        },
    )
    assert patient.run.sandbox_uid is not None and killer.run.sandbox_uid is not None
    assert patient.run.sandbox_uid != killer.run.sandbox_uid
    assert patient.run.verdicts() == ["accepted"], patient.run.result["tests"]
    # The killer's spree really overlapped the patient run by more than a second.
    spree = killer.run.result["tests"][0]["stdout"].split()
    spree_start, spree_end = float(spree[0]), float(spree[1])
    overlap = min(spree_end, patient.ended) - max(spree_start, patient.started)
    assert overlap > 1.0, (spree_start, spree_end, patient.started, patient.ended)
    assert_contained(patient.run)
    assert_contained(killer.run)


# 6. A process that leaves the session (setsid, double fork) is still killed -------------

ESCAPE_CODE = """\
import os, sys, time
MARKER = {marker!r}
LINGER = '''import time
while True:  # outlives its working folder too
    try:
        open("alive", "a").write("x")
    except OSError:
        pass
    time.sleep(0.2)
'''
if os.fork() == 0:
    try:
        os.setsid()
        print("setsid allowed", flush=True)
    except OSError as exc:
        print("setsid refused", exc.errno, flush=True)
    if os.fork() == 0:  # double fork: the grandchild is orphaned at once
        os.execv(sys.executable, [sys.executable, "-c", LINGER, MARKER])
    os._exit(0)
time.sleep(1.5)
print("parent done")
"""


def test_a_process_that_leaves_the_session_does_not_survive_the_run(run_submission):
    marker = f"cloudemy-escape-{secrets.token_hex(8)}"
    seen_during_run = threading.Event()
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if host_cmdlines_with(marker):
                seen_during_run.set()
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run = run_submission(
            ESCAPE_CODE.format(marker=marker),
            [{"name": "escape", "stdin": "", "expected_stdout": "x"}],
            time_limit_ms=3000,
            require_isolation="namespaced",
        )
    finally:
        finished.set()
        watcher.join()
    # The escapee really ran (the host saw its marker while the run went on) ...
    assert seen_during_run.is_set()
    assert "parent done" in run.result["tests"][0]["stdout"]
    # ... and nothing of it is left: not under the run's uid, not anywhere on the host.
    assert_contained(run)
    deadline = time.monotonic() + 5
    while host_cmdlines_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_cmdlines_with(marker) == []
