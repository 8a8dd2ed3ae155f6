"""sandbox.isolation.probe_isolation on this machine: it tries each layer in a real child
process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner_image.contract import IsolationLevel
from runner_image.sandbox.isolation import probe_isolation
from runner_image.sandbox.namespaces import packaged_bwrap, staged_bwrap


def test_this_machine_reaches_namespaced_as_root():
    """CI runs as root with seccomp, bubblewrap and writable cgroup v1 controllers: the probe
    must find every layer, and with them the namespaced level."""
    if os.geteuid() != 0:
        pytest.skip("the uid layer needs root")
    probed = probe_isolation()
    assert probed.level == IsolationLevel.NAMESPACED
    assert {"uid", "namespaces", "cgroup", "seccomp"} <= set(probed.layers)


# A process that proves the layers, then forks runners, as the runner fork server does.
FORKING_PROCESS = """
import fcntl, json, os, sys
from runner_image.sandbox import isolation
from runner_image.sandbox.uids import LOCK_DIR

proven = isolation.proven_layers()
with open(LOCK_DIR / str(proven.uid)) as lock:  # the borrowed uid was given back
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

def no_trial_run(candidate):
    raise AssertionError("a forked runner ran a trial")

isolation._works = no_trial_run
runners = []
for _ in range(2):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        mine = isolation.probe_isolation()
        report = {"uid": mine.uid, "runner_pid": mine.runner_pid, "pid": os.getpid(),
                  "level": mine.level, "cgroup": mine.cgroup, "bwrap": str(mine.bwrap)}
        os.write(write_end, json.dumps(report).encode())
        sys.exit(0)  # a runner's own exit: its atexit handlers run
    os.close(write_end)
    runners.append(json.loads(os.read(read_end, 65536)))
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
print(json.dumps({"bwrap": str(proven.bwrap), "bwrap_kept": proven.bwrap.exists(),
                  "runners": runners}))
"""


def test_forked_runners_inherit_the_proof_and_take_their_own_uid_and_cgroup():
    """What the fork server proves before it forks, its runners do not prove again (no trial
    run); each still takes a sandbox uid, a cgroup and a seccomp filter (its pid) of its
    own, and a runner's exit does not remove the bwrap copy the others use."""
    if os.geteuid() != 0:
        pytest.skip("the uid layer needs root")
    shown = subprocess.run(
        [sys.executable, "-c", FORKING_PROCESS], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["bwrap_kept"]
    # Nor does the forking process's own exit: runners it forked may still be running.
    assert Path(report["bwrap"]).is_file()
    for runner in report["runners"]:
        assert runner["level"] == IsolationLevel.NAMESPACED
        assert runner["uid"] is not None and runner["cgroup"]
        assert runner["runner_pid"] == runner["pid"]
        assert runner["bwrap"] == report["bwrap"]


def test_bwrap_is_staged_once_where_only_root_may_write(tmp_path):
    """Staged twice (two runners, two fork servers): the same copy, made once, executable
    by anyone, in folders nobody but root can write or list; a root folder others may
    write in is refused."""
    if os.geteuid() != 0:
        pytest.skip("staging is for a root runner")
    source = packaged_bwrap()
    assert source is not None
    root = tmp_path / "staged"
    first = staged_bwrap(source, root)
    assert staged_bwrap(source, root) == first
    assert first.read_bytes() == source.read_bytes()
    assert [p.name for p in root.iterdir()] == [first.parent.parent.parent.name]
    for folder in (root, first.parent.parent.parent):
        assert folder.stat().st_uid == 0 and folder.stat().st_mode & 0o777 == 0o711
    assert first.stat().st_mode & 0o777 == 0o755
    assert subprocess.run([first, "--version"], capture_output=True).returncode == 0
    root.chmod(0o733)
    with pytest.raises(OSError, match="writable by root alone"):
        staged_bwrap(source, root)
