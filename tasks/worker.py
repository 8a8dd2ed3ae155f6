"""The scheduler worker's Celery app. Its configuration, and the settings its tasks use,
come from celeryconfig, loaded when the app is first configured (not at import, so the
webapp and the tests can import task names without a scheduler environment), or from
settings given to `configure`."""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init

from tasks.celery_app import celery_config
from tasks.launchers import make_launcher
from tasks.settings import SchedulerSettings

celery_app = Celery(
    "cloudemy", set_as_current=False, include=["tasks.scheduler", "tasks.reconcile"]
)
celery_app.config_from_object("celeryconfig")


def configure(settings: SchedulerSettings) -> None:
    """Configure the worker from `settings` instead of the environment (tests, embedding)."""
    celery_app.config_from_object(
        {**celery_config(settings), "scheduler_settings": settings}, force=True
    )


def worker_settings() -> SchedulerSettings:
    return celery_app.conf.scheduler_settings


@worker_process_init.connect
def warm_up_launcher(**_: object) -> None:
    """Each pool process makes its launcher as it starts, not at its first task, so the
    first submission does not wait for the runner's imports."""
    make_launcher(worker_settings()).warm_up()
