"""The Celery application: the webapp produces on it, the scheduler worker consumes it."""

from __future__ import annotations

from celery import Celery

from webapp.config import Settings

SCHEDULE_TASK = "tasks.schedule_submission"


def make_celery(settings: Settings) -> Celery:
    app = Celery("cloudemy", set_as_current=False)
    app.config_from_object("celeryconfig")
    app.conf.broker_url = settings.redis_url
    app.conf.task_default_queue = settings.queue_submissions
    app.conf.task_routes = {SCHEDULE_TASK: {"queue": settings.queue_submissions}}
    return app


celery_app = make_celery(Settings.from_env())
celery_app.conf.include = ["tasks.scheduler", "tasks.reconcile"]
