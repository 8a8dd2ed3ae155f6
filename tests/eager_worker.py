"""The scheduler worker's tasks, run eagerly in a unit test on the test's own settings, with
no scheduler environment: the worker's Celery app is configured from them
(tasks.worker.configure) instead of from celeryconfig, which reads os.environ."""

from __future__ import annotations

from typing import Any

from tasks import worker
from tasks.settings import SchedulerSettings

SECRET = "w" * 40


def scheduler_settings(**overrides: Any) -> SchedulerSettings:
    values: dict[str, Any] = {"internal_result_token": SECRET, "redis_url": "redis://127.0.0.1:1/0"}
    return SchedulerSettings.from_env({}, **(values | overrides))


def run_worker_on(settings: SchedulerSettings) -> None:
    worker.configure(settings)
