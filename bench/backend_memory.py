"""Memory of a backend pod: the gunicorn master and its workers, as the kernel charges a
container for them (the sum of their proportional set sizes: a page shared after the fork
counts once), idle after start and after a burst of API calls. The goal is the issue 13
sizing rule: an idle pod stays under 80 % of its 128Mi request, the HPA's memory target, so
an idle deployment never scales out.

`cloudemy serve` is measured idle (its MongoDB is never reached while idle); the burst runs
against the dev stack's backend (the same app factory and gunicorn settings on the
in-process MongoDB stand-in, one worker), since no MongoDB server is installed here. The
burst comes from 8 students at once, each signing in first, as many as the worker has
threads: what a thread keeps after serving a request shows up once per thread. With
`--read-only` the burst creates no documents, so what the stand-in's database grows by is
left out: that is the production figure, where the data is in MongoDB.

    .venv/bin/python bench/backend_memory.py [--read-only] [--report-only]

BENCH_MEMORY_REQUESTS sets the burst's size (API calls in all, default 600)."""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from stack_client import machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cloudemy_dev.demo_data import DEMO_ASSIGNMENT_TITLE, DEMO_STUDENT, SOLUTIONS
from cloudemy_dev.devstack import free_port, private_redis, stop_process, wait_until

REQUEST_MIB = 128
GOAL_MIB = 0.8 * REQUEST_MIB
BURST = int(os.environ.get("BENCH_MEMORY_REQUESTS", "600"))
STUDENTS = 8


def pss_mib(pid: int) -> float:
    """PSS of `pid` and its descendants, in MiB."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += int(rollup.split("\nPss:")[1].split()[0])
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError):
            continue
    return total / 1024


def start(argv: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(
            lambda: requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).ok,
            180,
            "the backend",
            [process],
        )
    except BaseException:
        stop_process(process)
        raise
    time.sleep(2)  # let the worker settle after its first request
    return process


def student(api: str, count: int, create: bool) -> None:
    """What a student does: sign in, list assignments, submit (unless not `create`: then one
    submission, to read), read their submissions."""
    session = requests.Session()
    login = session.post(
        f"{api}/api/auth/login",
        json={"email": DEMO_STUDENT["email"], "password": DEMO_STUDENT["password"]},
        timeout=15,
    )
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    items = session.get(f"{api}/api/assignments", timeout=15).json()["items"]
    assignment = next(a["id"] for a in items if a["title"] == DEMO_ASSIGNMENT_TITLE)
    ids: list[str] = []
    for index in range(count):
        kind = index % 4
        if kind == 0 and (create or not ids):
            response = session.post(
                f"{api}/api/assignments/{assignment}/submissions",
                json={"code": SOLUTIONS["correct"]},
                timeout=15,
            )
            ids.append(response.json()["id"])
        elif kind in (0, 1):
            session.get(f"{api}/api/assignments", timeout=15)
        elif kind == 2:
            session.get(f"{api}/api/submissions/{ids[-1]}", timeout=15)
        else:
            session.get(f"{api}/api/submissions?limit=50", timeout=15)


def burst(api: str, count: int, create: bool) -> None:
    """`count` API calls from STUDENTS students at once."""
    with ThreadPoolExecutor(STUDENTS) as pool:
        calls = [pool.submit(student, api, count // STUDENTS, create) for _ in range(STUDENTS)]
        for call in calls:
            call.result()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--read-only", action="store_true", help="a burst that creates nothing")
    parser.add_argument("--report-only", action="store_true", help="exit 0 on a miss")
    args = parser.parse_args()
    kind = "read-only API calls" if args.read_only else "API calls"
    rows = []
    with private_redis() as redis_url:
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "INTERNAL_RESULT_TOKEN": secrets.token_hex(32),
            "SECRET_KEY": secrets.token_hex(32),
            "RATE_LIMITS_ENABLED": "false",
            "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "1"),
        }
        port = free_port()
        serve = start(
            [sys.executable, "-m", "webapp.cli", "serve", "--host", "127.0.0.1"],
            {**env, "PORT": str(port), "MONGO_URI": f"mongodb://127.0.0.1:{free_port()}"},
            port,
        )
        rows.append(("cloudemy serve, idle", pss_mib(serve.pid)))
        stop_process(serve)

        port = free_port()
        dev = start(
            [sys.executable, "-m", "cloudemy_dev.embedded", "--bind", f"127.0.0.1:{port}"],
            {**env, "MONGO_URI": "mongomock://localhost"},
            port,
        )
        rows.append(("dev backend, idle", pss_mib(dev.pid)))
        burst(f"http://127.0.0.1:{port}", BURST, create=not args.read_only)
        rows.append((f"dev backend, after {BURST} {kind}", pss_mib(dev.pid)))
        time.sleep(5)
        rows.append(("dev backend, idle again", pss_mib(dev.pid)))
        stop_process(dev)
    print(f"machine: {machine()}")
    print(
        f"WEB_CONCURRENCY={env['WEB_CONCURRENCY']}, {STUDENTS} students at once; "
        f"goal: an idle pod under {GOAL_MIB:.0f} MiB"
    )
    for what, mib in rows:
        print(f"  {what:<50} {mib:6.1f} MiB  ({100 * mib / REQUEST_MIB:3.0f} % of 128Mi)")
    idle_after_load = rows[-1][1]
    met = rows[0][1] < GOAL_MIB and idle_after_load < GOAL_MIB
    print("goal met" if met else "goal MISSED")
    return 0 if met or args.report_only else 1


if __name__ == "__main__":
    sys.exit(main())
