"""Scheduler dispatch: how fast KubernetesLauncher.launch creates runner Jobs against the
batch/v1 stand-in (tests/fake_kube_api.py, strict validation off), with no Job and with
1,000 Jobs already in flight (MAX_RUNNING_JOBS raised above that).

Goals (issue 14): >= 200 Jobs/s with 1,000 in flight (10 x the kube-controller-manager's
default 20 QPS) from the scheduler as it runs (a Celery worker of concurrency 2: two
processes, each launching one submission at a time with its own watch-fed cache), and a
launch cost flat as in-flight Jobs grow: one process's rate with 1,000 in flight at least
FLAT_RATIO of its rate with none.

Two stand-ins run as processes of their own, one empty and one seeded with 1,000 runner
Jobs by another launcher (as another scheduler would). Launching processes are forked
before anything else starts, as Celery's prefork children are. Rounds alternate between
the two stand-ins and between one and two launching processes, and each round's Jobs are
deleted afterwards (untimed), so the empty stand-in stays near 0 in flight and the other
near 1,000, and machine noise hits every figure alike. A launch is a create of the Job and
one of its token Secret: two API calls.

    .venv/bin/python bench/scheduler_dispatch.py [--rounds 5] [--batch 100] [--report-only]
"""

from __future__ import annotations

import argparse
import multiprocessing
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kubernetes import client  # noqa: E402

from tasks.launchers.job_objects import RUNNER_SELECTOR  # noqa: E402
from tasks.launchers.kubernetes import IN_FLIGHT_FIELDS, KubernetesLauncher  # noqa: E402
from tasks.settings import SchedulerSettings  # noqa: E402

NAMESPACE = "cloudemy"
IN_FLIGHT = 1_000
PROCESSES = 2  # the scheduler worker's default concurrency (`cloudemy worker`)
GOAL_RATE = 200.0  # Jobs/s with IN_FLIGHT in flight, PROCESSES launching
FLAT_RATIO = 0.8  # one process: rate with IN_FLIGHT in flight / rate with none
DEADLINE = 185


@contextmanager
def stand_in() -> Iterator[str]:
    """The stand-in as a process of its own (it would be another machine): its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_kube_api", "--no-validate"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if not url.startswith("http://"):
            raise SystemExit(f"the batch/v1 stand-in did not start (exit {process.wait()})")
        yield url
    finally:
        process.terminate()
        process.wait(10)


def api_client(url: str) -> client.ApiClient:
    configuration = client.Configuration(host=url)
    configuration.retries = False
    return client.ApiClient(configuration)


def launcher(url: str) -> KubernetesLauncher:
    settings = SchedulerSettings.from_env(
        {"REDIS_URL": "redis://127.0.0.1:1/0"},  # required; a Kubernetes launch never uses it
        internal_result_token="b" * 40,
        k8s_namespace=NAMESPACE,
        max_running_jobs=10 * IN_FLIGHT,
    )
    return KubernetesLauncher(settings, api_client(url))


def launch_many(target: KubernetesLauncher, count: int) -> list[str]:
    ids = [uuid.uuid4().hex[:24] for _ in range(count)]
    for sid in ids:
        target.launch(sid, DEADLINE)
    return ids


def worker(commands: Connection) -> None:
    """A scheduler worker process: one launcher per stand-in, launching on command."""
    launchers: dict[str, KubernetesLauncher] = {}
    while (command := commands.recv()) is not None:
        kind, url, count = command
        target = launchers.setdefault(url, launcher(url))
        if kind == "launch":
            commands.send(launch_many(target, count))
        else:  # "count": what this process's cache says is in flight
            commands.send(target.reflector.jobs.count())


class Workers:
    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("fork")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=worker, args=(theirs,), daemon=True)
            process.start()
            self.pipes.append(ours)
            self.processes.append(process)

    def run(self, kind: str, url: str, count: int, processes: int) -> tuple[float, list]:
        """Send the command to the first `processes` workers at once; the wall time until
        all answered, and their answers."""
        started = time.perf_counter()
        for pipe in self.pipes[:processes]:
            pipe.send((kind, url, count))
        answers = [pipe.recv() for pipe in self.pipes[:processes]]
        return time.perf_counter() - started, answers

    def stop(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for process in self.processes:
            process.join(10)


def delete_jobs(batch: client.BatchV1Api, ids: list[str]) -> None:
    for sid in ids:
        batch.delete_namespaced_job(f"runner-{sid}", NAMESPACE, _preload_content=False)


def in_flight(batch: client.BatchV1Api) -> int:
    jobs = batch.list_namespaced_job(
        NAMESPACE, label_selector=RUNNER_SELECTOR, field_selector=IN_FLIGHT_FIELDS
    )
    return len(jobs.items)


def settle(workers: Workers, url: str, expected: int) -> None:
    """Every worker's cache agrees with the API server once the watch caught up."""
    deadline = time.monotonic() + 30
    while True:
        _, counts = workers.run("count", url, 0, PROCESSES)
        if all(count == expected for count in counts):
            return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"the launchers' caches count {counts} Jobs, the API server {expected}"
            )
        time.sleep(0.1)


@dataclass
class Figures:
    seeding: float  # seconds for IN_FLIGHT launches by one launcher
    list_cost: float  # seconds for one LIST of IN_FLIGHT Jobs, deserialized
    first: dict[str, float]  # the first launch of fresh processes, by stand-in
    seconds: dict[tuple[int, str], float]  # by (processes, stand-in)


def measure(
    workers: Workers, empty_url: str, busy_url: str, rounds: int, batch_size: int
) -> Figures:
    empty_batch = client.BatchV1Api(api_client(empty_url))
    busy_batch = client.BatchV1Api(api_client(busy_url))

    seeder = launcher(busy_url)
    started = time.perf_counter()
    launch_many(seeder, IN_FLIGHT)
    seeding = time.perf_counter() - started
    seeder.close()
    assert in_flight(busy_batch) == IN_FLIGHT

    started = time.perf_counter()
    in_flight(busy_batch)  # what every launch paid before the cache
    list_cost = time.perf_counter() - started

    # The first launch of each process: its LIST and its watch.
    first: dict[str, float] = {}
    for name, url, batch in (("0", empty_url, empty_batch), ("busy", busy_url, busy_batch)):
        first[name], answers = workers.run("launch", url, 1, PROCESSES)
        delete_jobs(batch, [sid for ids in answers for sid in ids])

    seconds: dict[tuple[int, str], float] = {}
    for _ in range(rounds):
        for processes in (1, PROCESSES):
            for name, url, batch in (("0", empty_url, empty_batch), ("busy", busy_url, busy_batch)):
                elapsed, answers = workers.run("launch", url, batch_size // processes, processes)
                seconds[processes, name] = seconds.get((processes, name), 0) + elapsed
                delete_jobs(batch, [sid for ids in answers for sid in ids])

    settle(workers, empty_url, 0)
    settle(workers, busy_url, IN_FLIGHT)
    return Figures(seeding, list_cost, first, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100, help="launches per round and figure")
    parser.add_argument("--report-only", action="store_true", help="exit 0 on a miss")
    args = parser.parse_args()

    # Imported before the fork, as a worker should: each of these classes takes seconds to
    # import (kubernetes.client imports them lazily), which a child would pay on its first
    # launch.
    client.BatchV1Api, client.CoreV1Api  # noqa: B018
    with stand_in() as empty_url, stand_in() as busy_url:
        workers = Workers(PROCESSES)  # forked before any thread exists in this process
        try:
            figures = measure(workers, empty_url, busy_url, args.rounds, args.batch)
        finally:
            workers.stop()
    report(figures, args.rounds, args.batch)
    ok = goals_met(figures, args.rounds * args.batch)
    return 0 if ok or args.report_only else 1


def report(figures: Figures, rounds: int, batch: int) -> None:
    launches = rounds * batch
    print(
        "KubernetesLauncher.launch (a Job and its token Secret) against the batch/v1 stand-in, "
        f"strict validation off; {rounds} alternating rounds of {batch} per figure"
    )
    header = ("processes", "in flight", "launches", "seconds", "Jobs/s", "ms/Job")
    print("{:>9} {:>11} {:>9} {:>8} {:>8} {:>7}".format(*header))
    for processes in (1, PROCESSES):
        for name, label in (("0", f"0-{batch}"), ("busy", f"{IN_FLIGHT}-{IN_FLIGHT + batch}")):
            total = figures.seconds[processes, name]
            print(
                f"{processes:9d} {label:>11} {launches:9d} {total:8.2f} "
                f"{launches / total:8.1f} {1000 * total / launches:7.2f}"
            )
    print(
        f"seeding {IN_FLIGHT} Jobs with one launcher (0 -> {IN_FLIGHT}): "
        f"{IN_FLIGHT / figures.seeding:.1f} Jobs/s"
    )
    print(
        f"first launch of {PROCESSES} fresh processes (imports done; their LIST and watch): "
        f"{1000 * figures.first['0']:.0f} ms with 0 in flight, "
        f"{1000 * figures.first['busy']:.0f} ms with {IN_FLIGHT}"
    )
    print(
        f"one LIST of the {IN_FLIGHT} Jobs in flight (what each launch paid before): "
        f"{1000 * figures.list_cost:.0f} ms"
    )


def goals_met(figures: Figures, launches: int) -> bool:
    rate = {key: launches / seconds for key, seconds in figures.seconds.items()}
    flat = rate[1, "busy"] / rate[1, "0"]
    rate_ok = rate[PROCESSES, "busy"] >= GOAL_RATE
    flat_ok = flat >= FLAT_RATIO
    print(
        f"{PROCESSES} processes, {IN_FLIGHT} in flight: {rate[PROCESSES, 'busy']:.1f} Jobs/s, "
        f"goal >= {GOAL_RATE:.0f} -> {'OK' if rate_ok else 'MISS'}"
    )
    print(
        f"launch cost flat: 1 process, rate with {IN_FLIGHT} / with 0 in flight = {flat:.2f} "
        f"({PROCESSES} processes: {rate[PROCESSES, 'busy'] / rate[PROCESSES, '0']:.2f}), "
        f"goal >= {FLAT_RATIO} -> {'OK' if flat_ok else 'MISS'}"
    )
    return rate_ok and flat_ok


if __name__ == "__main__":
    sys.exit(main())
