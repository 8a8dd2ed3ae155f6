"""What the end-to-end benchmarks share (not a benchmark itself): a dev stack as `cloudemy
dev` runs it (gunicorn, a Celery worker with the local launcher, redis-server, mongomock)
with the rate limits raised, a client of its public API, the bare floor (the solution run
by the sandbox's own interpreter, as the runner's python language runs it), and the
memory of the stack's long-running processes, read from /proc."""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from cloudemy_dev.demo_data import DEMO_INSTRUCTOR
from cloudemy_dev.devstack import DevStack, dev_stack
from runner_image.contract import FINAL_STATUSES
from runner_image.sandbox.languages import LANGUAGES, SANDBOX_PATH

SOLUTION = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()[1:]))\n"
# A class pressing submit from one address, and each student more than 30 times a minute:
# the limits (tested in tests/unit/webapp) would refuse the benchmark, not the platform.
BENCH_LIMITS = {
    name: "1000000/minute"
    for name in (
        "RATE_LIMIT_LOGIN",
        "RATE_LIMIT_REGISTER",
        "RATE_LIMIT_SUBMIT",
        "RATE_LIMIT_SUBMIT_PER_ADDRESS",
        "RATE_LIMIT_JOIN",
    )
}
TIMEOUT = 30


def machine() -> str:
    """One line saying what the figures were measured on."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{time.strftime('%Y-%m-%d %H:%M')} | {os.cpu_count()} cores {model} | "
        f"kernel {platform.release()} | Python {platform.python_version()} | load {load}"
    )


def test_case(i: int) -> dict[str, Any]:
    numbers = list(range(1, i + 4))
    return {
        "name": f"t{i}",
        "stdin": f"{len(numbers)}\n{' '.join(map(str, numbers))}\n",
        "expected_stdout": f"{sum(numbers)}\n",
    }


# --------------------------------------------------------------------------- the floor


def sandbox_python() -> list[str]:
    """The runner's python command for a run: the sandbox's python3 (found on the sandbox's
    PATH, not this shell's, where it may be a pyenv shim costing 120 ms), with its flags."""
    argv = list(LANGUAGES["python"].run_argv)
    found = shutil.which(argv[0], path=SANDBOX_PATH)
    if found is None:
        raise SystemExit(f"no {argv[0]} on the sandbox's PATH ({SANDBOX_PATH})")
    return [found, *argv[1:]]


@contextmanager
def solution_dir() -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="cloudemy-bench-"))
    (workdir / LANGUAGES["python"].source_file).write_text(SOLUTION)
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir)


def bare_run(workdir: Path, stdin: str) -> float:
    """One run of the solution as a bare process: seconds."""
    started = time.perf_counter()
    subprocess.run(
        sandbox_python(),
        input=stdin.encode(),
        cwd=workdir,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def bare_runs(stdins: Sequence[str], parallel: int) -> float:
    """The same runs as bare processes, `parallel` at a time: wall seconds for all."""
    with solution_dir() as workdir, ThreadPoolExecutor(parallel) as pool:
        started = time.perf_counter()
        list(pool.map(lambda stdin: bare_run(workdir, stdin), stdins))
        return time.perf_counter() - started


# --------------------------------------------------------------------------- the stack


@contextmanager
def bench_stack() -> Iterator[DevStack]:
    """The dev stack, with its logs kept in a temporary folder (printed on a failure)."""
    log_dir = Path(tempfile.mkdtemp(prefix="cloudemy-bench-logs-"))
    try:
        with dev_stack(
            extra_env={"MONGO_URI": "mongomock://localhost", "DB_NAME": "bench", **BENCH_LIMITS},
            log_dir=log_dir,
        ) as stack:
            yield stack
    except BaseException:
        print(f"(the stack's logs are kept in {log_dir})")
        raise
    shutil.rmtree(log_dir, ignore_errors=True)


class Api:
    """One signed-in user of the public REST API (a session: one connection, kept alive)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, expect: int, **kwargs: Any) -> requests.Response:
        answer = self.session.request(method, f"{self.base_url}{path}", timeout=TIMEOUT, **kwargs)
        if answer.status_code != expect:
            raise SystemExit(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer

    def submit(self, assignment_id: str) -> str:
        answer = self.call(
            "POST", f"/api/assignments/{assignment_id}/submissions", 202, json={"code": SOLUTION}
        )
        return answer.json()["id"]

    def wait_final(self, submission_id: str) -> dict[str, Any]:
        """Follow the submission's event stream (as a UI would) until its final state."""
        with self.session.get(
            f"{self.base_url}/api/submissions/{submission_id}/events",
            stream=True,
            timeout=TIMEOUT,
        ) as answer:
            answer.raise_for_status()
            event = None
            for line in answer.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "end":
                    return json.loads(line.removeprefix("data: "))
        raise SystemExit(f"the event stream of {submission_id} ended before a final state")


def sign_in(stack: DevStack, email: str, password: str) -> Api:
    answer = requests.post(
        f"{stack.api_url}/api/auth/login",
        json={"email": email, "password": password},
        timeout=TIMEOUT,
    )
    if answer.status_code != 200:
        raise SystemExit(f"login of {email}: {answer.status_code} {answer.text[:300]}")
    return Api(stack.api_url, answer.json()["access_token"])


def new_students(stack: DevStack, count: int) -> list[Api]:
    def one(_: int) -> Api:
        email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
        answer = requests.post(
            f"{stack.api_url}/api/auth/register",
            json={"email": email, "password": "bench password", "name": "Bench Student"},
            timeout=TIMEOUT,
        )
        if answer.status_code != 201:
            raise SystemExit(f"register: {answer.status_code} {answer.text[:300]}")
        student = sign_in(stack, email, "bench password")
        student.call("POST", "/api/courses/join", 200, json={"join_code": join_code})
        return student

    join_code = default_course_join_code(instructor(stack))
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def default_course_join_code(teacher: Api) -> str:
    """The demo instructor's default course, where assignments posted without a
    `course_id` go: students see them once they have joined it."""
    courses = teacher.call("GET", "/api/courses", 200).json()["items"]
    return next(course["join_code"] for course in courses if course["is_default"])


def instructor(stack: DevStack) -> Api:
    return sign_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])


def new_assignment(teacher: Api, tests: int) -> str:
    answer = teacher.call(
        "POST",
        "/api/assignments",
        201,
        json={
            "title": f"Bench: sum ({tests} tests)",
            "language": "python",
            "time_limit_ms": 2000,
            "tests": [test_case(i) for i in range(tests)],
        },
    )
    return answer.json()["id"]


def submissions_of(teacher: Api, assignment_id: str) -> list[dict[str, Any]]:
    """Every submission of the assignment, as its instructor sees them."""
    found: list[dict[str, Any]] = []
    while True:
        page = teacher.call(
            "GET",
            "/api/submissions",
            200,
            params={"assignment_id": assignment_id, "limit": 100, "offset": len(found)},
        ).json()
        found += page["items"]
        if len(found) >= page["total"] or not page["items"]:
            return found


def is_final(submission: dict[str, Any]) -> bool:
    return submission["status"] in FINAL_STATUSES


def moment(iso: str) -> float:
    """A server timestamp as time.time() seconds (the server is this machine)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# --------------------------------------------------------------------------- memory


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _describe(pid: int) -> tuple[str, int] | None:
    """(command line, RSS in KiB) of a process, or None if it is gone."""
    try:
        argv = (Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"))[:-1]
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    rss = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")]
    if not rss:  # a zombie, or a kernel thread
        return None
    return " ".join(a.decode(errors="replace") for a in argv), rss[0]


def long_running(stack: DevStack) -> dict[str, int]:
    """RSS (KiB) of the stack's long-running processes by role: the gunicorn master and its
    workers, the Celery worker, its pool processes and their runner fork servers, the
    reconciler, redis-server. Runners (one per submission, short-lived) are not counted."""
    tree = _children()
    found: dict[str, int] = {}
    webapp, worker = stack.parts["webapp"], stack.parts["worker"]
    pool = sorted(tree.get(worker.pid, []))
    roles = [("gunicorn main", webapp.pid), ("celery main", worker.pid)]
    roles += [(f"gunicorn worker {n}", pid) for n, pid in enumerate(tree.get(webapp.pid, []), 1)]
    roles += [(f"celery pool process {n}", pid) for n, pid in enumerate(pool, 1)]
    roles += [
        (f"runner fork server {n}", pid)
        for n, pid in enumerate(sorted(c for parent in pool for c in tree.get(parent, [])), 1)
    ]
    roles.append(("reconciler", stack.parts["reconciler"].pid))
    for name, pid in roles:
        described = _describe(pid)
        if described is not None:
            found[name] = described[1]
    port = stack.redis_url.rsplit(":", 1)[1].split("/")[0]
    for pids in tree.values():
        for pid in pids:
            described = _describe(pid)
            if described and "redis-server" in described[0] and f":{port}" in described[0]:
                found["redis-server"] = described[1]
    return found
