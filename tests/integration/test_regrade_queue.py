"""Bulk regrades never go ahead of submissions: tasks published by the webapp's own
producer code (webapp.grading.send_grading_task) to a private redis-server, consumed by the
real scheduler worker (`cloudemy worker`, both queues) launching Kubernetes Jobs on the
local batch/v1 stand-in (tests/fake_kube_api.py), whose record gives the launch order."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from bson import ObjectId

from cloudemy_dev.devstack import private_redis, stop_process, wait_until
from tasks.celery_app import make_celery
from tests.fake_internal_api import FakeInternalApi
from tests.fake_kube_api import fake_kube_api
from webapp.grading import send_grading_task
from webapp.models import Assignment, Submission
from webapp.settings import WebappSettings

SECRET = "q" * 40
NAMESPACE = "cloudemy"
REGRADES = 6
# More than one: a worker alternating between its queues (Celery's default round robin)
# would take a regrade second; priorities keep every submission ahead.
SUBMISSIONS = 3


def test_the_worker_takes_a_submission_before_bulk_regrades_queued_earlier(tmp_path):
    backend = FakeInternalApi()
    with private_redis() as redis_url, fake_kube_api() as api:
        settings = WebappSettings.from_env(
            {},
            mongo_uri="mongomock://localhost",
            secret_key="k" * 32,
            internal_result_token=SECRET,
            redis_url=redis_url,
        )
        producer = make_celery(settings)
        services = SimpleNamespace(celery=producer)
        assignment = Assignment(tests=[{"name": "t"}], time_limit_ms=1000)
        regrades = [Submission(id=ObjectId(), round=1, low_priority=True) for _ in range(REGRADES)]
        submissions = [Submission(id=ObjectId()) for _ in range(SUBMISSIONS)]
        # The bulk regrade first, then students submit: all waiting before a worker runs.
        for queued in (*regrades, *submissions):
            send_grading_task(queued, assignment, services, settings)
        producer.close()
        env = {
            "PATH": "/usr/bin:/bin",
            "REDIS_URL": redis_url,
            "INTERNAL_RESULT_TOKEN": SECRET,
            "RUNNER_LAUNCHER": "kubernetes",
            "KUBECONFIG": str(api.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE)),
            "K8S_NAMESPACE": NAMESPACE,
            "BACKEND_INTERNAL_URL": backend.url,
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "webapp.cli", "worker", "--concurrency", "1"],
            env=env,
            stdout=(tmp_path / "worker.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: len(api.recorded("POST", "secrets")) == REGRADES + SUBMISSIONS,
                90,
                "every launch",
                [worker],
            )
        finally:
            stop_process(worker)
            backend.stop()

    launched = [post.body["metadata"]["name"] for post in api.recorded("POST", "jobs")]
    assert launched[:SUBMISSIONS] == [f"runner-{s.id}" for s in submissions]
    assert sorted(launched[SUBMISSIONS:]) == sorted(f"runner-{r.id}-r1" for r in regrades)
    scheduled = [post["path"] for post in backend.posts[:SUBMISSIONS]]
    assert scheduled == [f"/internal/submissions/{s.id}/status" for s in submissions]
