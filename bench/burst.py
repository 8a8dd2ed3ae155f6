"""A class submitting at once, through the public API of a dev stack (`cloudemy dev`:
gunicorn, a Celery worker with the local launcher, redis-server, mongomock): a burst of 40
and one of 200 submissions of a Python solution with 5 tests each (40 students, each
sending one submission, then five), and what the stack's processes weigh.

Three measures, each against a floor measured side by side in the same run:
- all final: from the first submit call to the last result (its `finished_at`), against
  the same runs (5 per submission) as bare processes by the sandbox's own interpreter, as
  many at a time as there are cores; and submissions/s;
- the submit call during the burst: latency (p50, max) and throughput, against a trivial
  endpoint of the same server (`GET /healthz`, the same number of calls from the same
  40 clients, just before the burst);
- memory: the resident size of each long-running process (gunicorn master and workers,
  Celery worker and pool processes, redis-server) at rest and after the bursts.

Goals (issue 14): all final within 3 x the bare floor for both bursts, 0 lost; submit call
p50 <= 50 ms during the burst and >= 50 % of the trivial endpoint's throughput. Memory has
no goal: it is reported.

    .venv/bin/python bench/burst.py [--sizes 40 200] [--report-only]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests
from stack_client import (
    Api,
    bare_runs,
    bench_stack,
    instructor,
    is_final,
    long_running,
    machine,
    moment,
    new_assignment,
    new_students,
    percentile,
    submissions_of,
    test_case,
)

TESTS = 5
CLIENTS = 40
GOAL_FLOOR_RATIO = 3.0
GOAL_SUBMIT_P50_MS = 50.0
GOAL_THROUGHPUT_SHARE = 0.5
FINAL_TIMEOUT_SECONDS = 300.0


@dataclass
class Calls:
    """Timed calls from CLIENTS threads released together."""

    latencies: list[float] = field(default_factory=list)
    started: float = 0.0  # time.time() of the release
    seconds: float = 0.0  # from the release to the last answer

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds


def together(work: list[list[Callable[[], object]]]) -> Calls:
    """Each list of calls on its own thread, all released at once; every call timed."""
    calls, lock, barrier = Calls(), threading.Lock(), threading.Barrier(len(work) + 1)

    def client(jobs: list[Callable[[], object]]) -> None:
        barrier.wait()
        for job in jobs:
            began = time.perf_counter()
            job()
            with lock:
                calls.latencies.append(time.perf_counter() - began)

    threads = [threading.Thread(target=client, args=(jobs,)) for jobs in work]
    for thread in threads:
        thread.start()
    calls.started = time.time()
    began = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    calls.seconds = time.perf_counter() - began
    return calls


def healthz_calls(base_url: str, count: int) -> Calls:
    sessions = [requests.Session() for _ in range(CLIENTS)]

    def call(session: requests.Session) -> None:
        if not session.get(f"{base_url}/healthz", timeout=30).ok:
            raise SystemExit("GET /healthz failed")

    return together(
        [[lambda s=s: call(s)] * (count // CLIENTS) for s in sessions]  # type: ignore[misc]
    )


@dataclass
class Burst:
    size: int
    submits: Calls
    all_final: float  # seconds from the first submit call to the last result
    statuses: dict[str, int]
    lost: int
    floor: float  # seconds for the same runs as bare processes
    healthz: Calls


def wait_until_final(teacher: Api, assignment: str, size: int) -> None:
    """Until `size` submissions are final, by the assignment's counters, as an instructor's
    dashboard would watch them, once a second: listing every submission each time, or
    polling faster, would load the server being measured. The timings come from each
    submission's own `finished_at`, so polling less often changes none of them."""
    deadline = time.monotonic() + FINAL_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        counts = teacher.call("GET", f"/api/assignments/{assignment}/stats", 200).json()
        submissions = counts["submissions"]
        if submissions["total"] - submissions["in_progress"] >= size:
            return
        time.sleep(1)


def burst(stack, teacher: Api, students: list[Api], size: int) -> Burst:
    assignment = new_assignment(teacher, tests=TESTS)
    per_student = size // len(students)
    healthz = healthz_calls(stack.api_url, size)
    submits = together(
        [[lambda s=s: s.submit(assignment)] * per_student for s in students]  # type: ignore[misc]
    )
    wait_until_final(teacher, assignment, size)
    shown = submissions_of(teacher, assignment)
    final = [s for s in shown if is_final(s) and s.get("finished_at")]
    statuses: dict[str, int] = {}
    for submission in shown:
        statuses[submission["status"]] = statuses.get(submission["status"], 0) + 1
    last = max((moment(s["finished_at"]) for s in final), default=time.time())
    stdins = [test_case(i)["stdin"] for i in range(TESTS)] * size
    floor = bare_runs(stdins, parallel=os.cpu_count() or 1)
    return Burst(
        size=size,
        submits=submits,
        all_final=last - submits.started,
        statuses=statuses,
        lost=size - len(final),
        floor=floor,
        healthz=healthz,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[40, 200])
    parser.add_argument("--report-only", action="store_true", help="exit 0 on a miss")
    args = parser.parse_args()
    if any(size % CLIENTS for size in args.sizes):
        raise SystemExit(f"burst sizes must be multiples of {CLIENTS}")

    with bench_stack() as stack:
        teacher = instructor(stack)
        students = new_students(stack, CLIENTS)
        warm_up = new_assignment(teacher, tests=1)
        students[0].wait_final(students[0].submit(warm_up))
        at_rest = long_running(stack)
        bursts = [burst(stack, teacher, students, size) for size in args.sizes]
        time.sleep(1)  # the last runners exit
        after = long_running(stack)

    ok = True
    print(f"bursts of Python submissions with {TESTS} tests each, {CLIENTS} clients")
    print(f"machine: {machine()}")
    print(
        f"{'burst':>5} {'all final s':>11} {'bare floor s':>12} {'x floor':>8} "
        f"{'subm/s':>7} {'lost':>5}  statuses"
    )
    for b in bursts:
        ratio = b.all_final / b.floor
        ok &= ratio <= GOAL_FLOOR_RATIO and b.lost == 0
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(b.statuses.items()))
        print(
            f"{b.size:5d} {b.all_final:11.1f} {b.floor:12.2f} {ratio:8.1f} "
            f"{b.size / b.all_final:7.2f} {b.lost:5d}  {statuses}"
        )
    print(f"goal: all final within {GOAL_FLOOR_RATIO:g} x the bare floor, 0 lost")
    print()
    print(
        f"{'burst':>5} {'submit p50 ms':>13} {'max ms':>7} {'submit/s':>9} "
        f"{'healthz p50 ms':>14} {'healthz/s':>10} {'share':>6}"
    )
    for b in bursts:
        p50 = 1000 * percentile(b.submits.latencies, 0.5)
        share = b.submits.per_second / b.healthz.per_second
        ok &= p50 <= GOAL_SUBMIT_P50_MS and share >= GOAL_THROUGHPUT_SHARE
        print(
            f"{b.size:5d} {p50:13.0f} {1000 * max(b.submits.latencies):7.0f} "
            f"{b.submits.per_second:9.1f} {1000 * percentile(b.healthz.latencies, 0.5):14.0f} "
            f"{b.healthz.per_second:10.1f} {share:6.2f}"
        )
    print(
        f"goal: submit p50 <= {GOAL_SUBMIT_P50_MS:.0f} ms and >= "
        f"{GOAL_THROUGHPUT_SHARE:.0%} of /healthz's throughput"
    )
    print()
    print(f"{'process':28} {'RSS at rest MiB':>15} {'after MiB':>10}")
    for name in sorted(set(at_rest) | set(after)):
        rest, later = at_rest.get(name), after.get(name)
        print(
            f"{name:28} {rest / 1024 if rest else float('nan'):15.1f} "
            f"{later / 1024 if later else float('nan'):10.1f}"
        )
    total_rest, total_after = sum(at_rest.values()) / 1024, sum(after.values()) / 1024
    print(f"{'total':28} {total_rest:15.1f} {total_after:10.1f}")
    print("-> " + ("OK" if ok else "MISS"))
    return 0 if ok or args.report_only else 1


if __name__ == "__main__":
    sys.exit(main())
