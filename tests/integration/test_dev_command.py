"""`cloudemy dev` as a user runs it: it refuses a busy port at once, runs every part of the
stack (the reconciler too: its sweeps recover what the pipeline drops, see tests/faults),
and whatever ends it (Ctrl-C, SIGTERM, SIGHUP, even SIGKILL) leaves no process of its stack
behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudemy_dev.devstack import free_port


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = {int(c) for c in (task / "children").read_text().split()}
            except OSError:
                continue
            pending.extend(children - found)
            found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _start_dev(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "webapp.cli", "dev", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "REDIS_URL"},
    )
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if "Cloudemy is running" in line:
            return process
        if time.monotonic() > deadline:
            break
    process.kill()
    raise AssertionError("cloudemy dev did not come up")


def test_a_busy_port_is_refused_at_once():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        completed = subprocess.run(
            [sys.executable, "-m", "webapp.cli", "dev", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert completed.returncode != 0
    assert time.monotonic() - started < 5  # the bound
    assert f"port {port} is already in use" in completed.stderr


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_ending_cloudemy_dev_leaves_no_process_of_its_stack(stop):
    dev = _start_dev(free_port())
    stack = _descendants(dev.pid)
    commands = [_command_line(pid) for pid in stack]
    assert any("redis-server" in command for command in commands), commands
    assert any("cloudemy_dev.embedded" in command for command in commands), commands
    assert any("webapp.cli worker" in command for command in commands), commands
    assert any("webapp.cli reconcile" in command for command in commands), commands

    dev.send_signal(stop)
    dev.wait(60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in stack):
        time.sleep(0.2)

    assert [pid for pid in stack if _alive(pid)] == []
