"""The fault-injection suite: the real stack (redis-server, the webapp under gunicorn, a
Celery worker, the reconciler, runner processes through the local launcher), faults done to
it for real (SIGKILL, restarts, a backend made unreachable, a hanging runner, forged
tokens), and a table of what came out, printed at the end of the run.

The deadlines, the sweep period and its thresholds are shortened through their settings so
that recovery happens within the run; how many submissions each scenario sends is
FAULTS_SUBMISSIONS (the worker-kill scenario: FAULTS_WORKER_KILL_SUBMISSIONS), how many
forged tokens FAULTS_TOKENS. See docs/reliability.md."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator

import pytest

from cloudemy_dev.devstack import dev_stack, free_port
from tests.faults.harness import (
    DEADLINE_SECONDS,
    REQUEUE_AFTER_SECONDS,
    SWEEP_GRACE_SECONDS,
    SWEEP_PERIOD_SECONDS,
    TABLE,
    FaultStack,
    Gate,
    RedisServer,
)
from tests.suite_guard import cannot_run, report_not_run

SUITE = "fault-injection"


@pytest.fixture(scope="session")
def faults(tmp_path_factory) -> Iterator[FaultStack]:
    if shutil.which("redis-server") is None:
        cannot_run(SUITE, "redis-server is not installed (apt-get install redis-server)")
    workdir = tmp_path_factory.mktemp("faults")
    (workdir / "redis").mkdir()
    redis_server = RedisServer(workdir / "redis", aof=True)
    redis_server.start()
    port = free_port()
    gate = Gate(port)
    metrics_token = secrets.token_hex(32)
    env = {
        "MONGO_URI": "mongomock://localhost",
        "DB_NAME": "faults",
        "BACKEND_INTERNAL_URL": gate.url,
        "METRICS_TOKEN": metrics_token,
        "RATE_LIMITS_ENABLED": "false",
        "RUNNER_MIN_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
        "RUNNER_MAX_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
        "RECONCILE_INTERVAL_SECONDS": str(SWEEP_PERIOD_SECONDS),
        "SWEEP_GRACE_SECONDS": str(SWEEP_GRACE_SECONDS),
        "SWEEP_REQUEUE_AFTER_SECONDS": str(REQUEUE_AFTER_SECONDS),
        "CLOUDEMY_DEMO_SEED": "1",
    }
    try:
        with dev_stack(
            port=port, redis_url=redis_server.url, extra_env=env, log_dir=workdir
        ) as stack:
            yield FaultStack(stack, redis_server, gate, metrics_token)
    finally:
        gate.close()
        redis_server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    report_not_run(terminalreporter, SUITE)
    if not TABLE:
        return
    terminalreporter.write_sep("=", "fault injection")
    header = f"{'scenario':<44} {'submitted':>9} {'final':>6} {'lost':>5} {'dup':>4} {'drain s':>8}"
    terminalreporter.write_line(header)
    for row in TABLE:
        drain = f"{row.drain_seconds:.1f}" if row.drain_seconds is not None else "-"
        terminalreporter.write_line(
            f"{row.scenario:<44} {row.submitted:>9} {row.final:>6} {row.lost:>5} "
            f"{row.duplicated:>4} {drain:>8}  {row.notes}"
        )
