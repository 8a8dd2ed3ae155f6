"""`cloudemy flower` against a private Redis with the scheduler worker running: its API
(behind basic auth) lists the worker, and, task events being on, the scheduler's tasks."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cloudemy_dev.devstack import free_port, private_redis, stop_process, wait_until
from tasks.celery_app import SCHEDULE_TASK, make_celery
from tasks.settings import BrokerSettings
from tests.fake_internal_api import FakeInternalApi
from tests.fake_kube_api import fake_kube_api

pytestmark = pytest.mark.integration

AUTH = ("admin", "flower-test-password")


@pytest.fixture
def flower(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Flower's URL and the broker's, with a scheduler worker (kubernetes launcher against
    the fake API, so its tasks succeed) running."""
    backend = FakeInternalApi()
    with private_redis() as redis_url, fake_kube_api() as api:
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "RUNNER_LAUNCHER": "kubernetes",
            "KUBECONFIG": str(api.write_kubeconfig(tmp_path / "kubeconfig")),
            "BACKEND_INTERNAL_URL": backend.url,
            "INTERNAL_RESULT_TOKEN": "t" * 32,
            "FLOWER_BASIC_AUTH": ":".join(AUTH),
        }
        # As manifests/flower.yaml runs it: the broker and the queue, no scheduler secret.
        scheduler_only = ("INTERNAL_RESULT_TOKEN", "BACKEND_INTERNAL_URL", "KUBECONFIG")
        flower_env = {k: v for k, v in env.items() if k not in scheduler_only}
        port = free_port()
        log = (tmp_path / "processes.log").open("ab")
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "webapp.cli", "worker", "--concurrency", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            ),
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "webapp.cli",
                    "flower",
                    "--port",
                    str(port),
                    "--address",
                    "127.0.0.1",
                ],
                env=flower_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            ),
        ]
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: requests.get(f"{url}/healthcheck", timeout=2).ok, 30, "flower")
            yield url, redis_url
        finally:
            for process in processes:
                stop_process(process)
            log.close()
            backend.stop()


def _workers(url: str) -> dict:
    response = requests.get(f"{url}/api/workers", params={"refresh": "1"}, auth=AUTH, timeout=10)
    response.raise_for_status()
    return response.json()


def test_flower_lists_the_worker_and_shows_the_schedulers_tasks(flower) -> None:
    url, redis_url = flower

    assert requests.get(f"{url}/api/workers", timeout=10).status_code == 401
    wait_until(lambda: any(n.startswith("scheduler@") for n in _workers(url)), 30, "the worker")
    (worker,) = [w for n, w in _workers(url).items() if n.startswith("scheduler@")]
    assert {"tasks.schedule_submission", "tasks.reconcile"} <= set(worker["registered"])
    # Submissions, and bulk regrades behind them (lower priority).
    assert {q["name"] for q in worker["active_queues"]} == {"queue:submissions", "queue:regrades"}

    submission_id = uuid.uuid4().hex[:24]
    producer = make_celery(BrokerSettings.from_env({"REDIS_URL": redis_url}))
    producer.send_task(
        SCHEDULE_TASK,
        args=[submission_id],
        kwargs={"deadline_seconds": 185},
        queue="queue:submissions",
    )
    producer.close()

    def succeeded() -> bool:
        tasks = requests.get(f"{url}/api/tasks", auth=AUTH, timeout=10).json()
        return any(
            t["name"] == SCHEDULE_TASK and submission_id in t["args"] and t["state"] == "SUCCESS"
            for t in tasks.values()
        )

    wait_until(succeeded, 30, "the scheduler's task in Flower")
