"""The scheduler worker's Celery configuration (loaded by tasks.worker, so by `cloudemy
worker`, `celery -A tasks.worker` and Flower). The environment is read here, once, through
the scheduler's settings; the Celery policy itself is in tasks/celery_app.py."""

from tasks.celery_app import celery_config
from tasks.settings import SchedulerSettings

scheduler_settings = SchedulerSettings.from_env()

globals().update(celery_config(scheduler_settings))
