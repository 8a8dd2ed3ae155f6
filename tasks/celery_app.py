"""The Celery configuration both sides share: the webapp produces on it, the scheduler worker
(tasks.worker) consumes it. Late acks plus reject-on-worker-lost mean a task is only gone
from the broker once a launch really happened; prefetch 1 keeps one worker from hoarding a
burst of submissions (and from holding bulk regrades while submissions arrive)."""

from __future__ import annotations

from typing import Any

from celery import Celery

from tasks.settings import BrokerSettings

SCHEDULE_TASK = "tasks.schedule_submission"
RECONCILE_TASK = "tasks.reconcile"

# Bulk regrades go to QUEUE_REGRADES with this message priority; submissions (and single
# regrades) go to QUEUE_SUBMISSIONS with the default, 0. On Redis, Celery keeps one list
# per queue and priority step and a worker pops them priority first (all priority-0 lists
# of every queue it consumes before any priority-9 list), so a worker never takes a bulk
# regrade while a submission is waiting, however many regrades are queued.
SUBMISSION_PRIORITY = 0
REGRADE_PRIORITY = 9

POLICY: dict[str, Any] = {
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": {"visibility_timeout": 3600},
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "task_ignore_result": True,
    "task_serializer": "json",
    "accept_content": ["json"],
    "worker_prefetch_multiplier": 1,
    "worker_send_task_events": True,
    "task_send_sent_event": True,
    "timezone": "UTC",
}


def worker_queues(settings: BrokerSettings) -> list[str]:
    """What the scheduler worker consumes: submissions first, then bulk regrades."""
    return [settings.queue_submissions, settings.queue_regrades]


def celery_config(settings: BrokerSettings) -> dict[str, Any]:
    return {
        **POLICY,
        "broker_url": settings.redis_url,
        "task_default_queue": settings.queue_submissions,
        "task_routes": {SCHEDULE_TASK: {"queue": settings.queue_submissions}},
    }


def make_celery(settings: BrokerSettings) -> Celery:
    """A Celery app on the configured broker: the webapp's producer, Flower's client."""
    app = Celery("cloudemy", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app
