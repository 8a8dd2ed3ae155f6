"""Hostile submissions: each must end contained, with the right verdict, no process left
behind, and nothing secret in what is reported. Every change must keep this suite green."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.runner_harness import assert_contained

# Root and the namespaced level, or the suite fails under CI / is skipped loudly (conftest.py).
pytestmark = pytest.mark.usefixtures("namespaced_sandbox")

SECRET_ANSWER = "hidden-answer-5f1c2e9b"
ONE_TEST = [{"name": "only", "stdin": "", "expected_stdout": "done\n"}]


def test_fork_bomb_is_contained(run_submission):
    code = (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    run = run_submission(code, ONE_TEST)
    assert run.verdicts() == ["time_limit_exceeded"]
    assert_contained(run)


@pytest.mark.parametrize(
    "code",
    [
        "x = bytearray(4 * 1024 ** 3)\n",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n",
    ],
    ids=["one-huge-allocation", "gradual-growth"],
)
def test_memory_hog_gets_memory_limit_exceeded(run_submission, code):
    run = run_submission(code, ONE_TEST, memory_limit_mb=64)
    assert run.verdicts() == ["memory_limit_exceeded"]
    assert run.result["fail_tags"] == ["memory_limit_exceeded"]
    assert_contained(run)


def test_infinite_loop_gets_time_limit_exceeded(run_submission):
    run = run_submission("while True:\n    pass\n", ONE_TEST, time_limit_ms=500)
    assert run.verdicts() == ["time_limit_exceeded"]
    assert_contained(run)


def test_sleeping_children_that_ignore_sigterm_are_killed(run_submission):
    code = (
        "import os, signal, sys, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "        time.sleep(1000)\n"
        "time.sleep(1000)\n"
    )
    started = time.monotonic()
    run = run_submission(code, ONE_TEST, time_limit_ms=300)
    assert run.verdicts() == ["time_limit_exceeded"]
    assert time.monotonic() - started < 30
    assert_contained(run)


def test_stdout_flood_gets_output_limit_exceeded(run_submission):
    code = "import sys\nchunk = 'x' * 65536\nfor _ in range(16384):\n    sys.stdout.write(chunk)\n"
    run = run_submission(code, ONE_TEST, time_limit_ms=5000)
    assert run.verdicts() == ["output_limit_exceeded"]
    assert len(run.result["tests"][0]["stdout"]) <= 64 * 1024
    assert_contained(run)


def test_huge_file_is_refused_by_the_file_size_limit(run_submission):
    code = (
        "with open('big.bin', 'wb') as f:\n"
        "    for _ in range(2048):\n"
        "        f.write(b'0' * 1024 * 1024)\n"
    )
    run = run_submission(code, ONE_TEST, time_limit_ms=5000)
    assert run.verdicts() == ["runtime_error"]
    assert "File too large" in run.result["tests"][0]["message"]
    assert_contained(run)


def test_redis_on_loopback_is_unreachable(run_submission, redis_url):
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    code = (
        "import socket\n"
        "try:\n"
        f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "    s.sendall(b'KEYS *\\r\\n')\n"
        "    print(s.recv(65536).decode())\n"
        "except OSError as exc:\n"
        "    print('blocked', type(exc).__name__)\n"
    )
    run = run_submission(
        code, [{"name": "t", "stdin": "", "expected_stdout": SECRET_ANSWER, "hidden": True}]
    )
    assert run.verdicts() == ["wrong_answer"]
    assert run.result["tests"][0]["stdout"].startswith("blocked")
    assert_contained(run)


def test_no_socket_can_reach_outside(run_submission):
    """Checked without sending a packet anywhere: internet, Unix and netlink sockets cannot
    even be created (so not even the interfaces can be listed)."""
    code = (
        "import socket\n"
        "for family in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX, socket.AF_NETLINK):\n"
        "    try:\n"
        "        socket.socket(family, socket.SOCK_DGRAM).close()\n"
        "        print('socket created')\n"
        "    except OSError as exc:\n"
        "        print('refused', exc.errno)\n"
        "try:\n"
        "    print(sorted(name for _, name in socket.if_nameindex()))\n"
        "except OSError as exc:\n"
        "    print('interfaces refused', exc.errno)\n"
    )
    run = run_submission(code, ONE_TEST)
    stdout = run.result["tests"][0]["stdout"]
    assert stdout.splitlines() == ["refused 13"] * 4 + ["interfaces refused 13"]
    assert_contained(run)


def test_secrets_are_not_in_the_environment_or_the_parents(run_submission):
    code = (
        "import os\n"
        "print(sorted(os.environ))\n"
        "for pid in [os.getppid()] + [p for p in os.listdir('/proc') if p.isdigit()]:\n"
        "    for name in ('environ', 'cmdline', 'mem'):\n"
        "        try:\n"
        "            with open(f'/proc/{pid}/{name}', 'rb') as f:\n"
        "                print(f.read(100000))\n"
        "        except OSError:\n"
        "            pass\n"
    )
    run = run_submission(code, ONE_TEST)
    stdout = run.result["tests"][0]["stdout"]
    # PWD is bubblewrap's (/work); nothing of the runner's environment is there.
    assert stdout.splitlines()[0] == "['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']"
    assert_contained(run)


def test_parent_cannot_be_killed(run_submission):
    """In its PID namespace the program's parent is the namespace's init, which a signal
    from inside cannot kill; the runner is not even visible. Either way the runner lives
    on and reports."""
    code = (
        "import os, signal\n"
        "for target in (os.getppid(), -os.getpgid(os.getppid()), -1):\n"
        "    try:\n"
        "        os.kill(target, signal.SIGKILL)\n"
        "        print('killed', target)\n"
        "    except OSError as exc:\n"
        "        print('refused', exc.errno)\n"
        "print('done')\n"
    )
    run = run_submission(code, ONE_TEST)
    assert run.verdicts() == ["wrong_answer"]
    assert run.result["tests"][0]["stdout"].splitlines()[-1] == "done"
    assert_contained(run)


def test_planted_symlinks_are_never_followed(run_submission, tmp_path: Path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    os.chmod(tmp_path, 0o755)
    code = (
        "import os\n"
        f"os.symlink({str(victim)!r}, 'victim-link')\n"
        "os.symlink('/etc', 'etc-link')\n"
        "os.remove('main.py')\n"
        "os.symlink('/etc/passwd', 'main.py')\n"
        "print('done')\n"
    )
    run = run_submission(code, [*ONE_TEST, {"name": "second", "stdin": "", "expected_stdout": "x"}])
    assert run.verdicts()[0] == "accepted"
    assert (victim / "keep.txt").read_text() == "precious"
    assert Path("/etc/passwd").exists()
    assert_contained(run)


def test_hidden_expected_outputs_are_nowhere_in_reach(run_submission):
    code = (
        "import os, sys, time\n"
        "secret_found = []\n"
        "deadline = time.time() + 1.5\n"
        "roots = [os.getcwd(), '/tmp', '/var/tmp', '/dev/shm', os.path.expanduser('~')]\n"
        "for root in roots:\n"
        "    for folder, _, files in os.walk(root):\n"
        "        for name in files:\n"
        "            if time.time() > deadline: break\n"
        "            try:\n"
        "                with open(os.path.join(folder, name), 'rb') as f:\n"
        "                    data = f.read(1 << 20)\n"
        "            except OSError:\n"
        "                continue\n"
        "            for line in data.splitlines():\n"
        "                if line.startswith(b'hidden-answer-'):\n"
        "                    secret_found.append(line.decode(errors='replace'))\n"
        "print(secret_found[0] if secret_found else 'nothing found')\n"
    )
    tests = [
        {"name": "public", "stdin": "", "expected_stdout": "x"},
        {"name": "secret", "stdin": "", "expected_stdout": SECRET_ANSWER, "hidden": True},
    ]
    run = run_submission(code, tests, time_limit_ms=3000)
    assert run.verdicts() == ["wrong_answer", "wrong_answer"]
    assert SECRET_ANSWER not in json.dumps(run.result["tests"])
    assert_contained(run)
