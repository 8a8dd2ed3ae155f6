"""Celery settings for the scheduler worker and the webapp's producer.

Late acks plus reject-on-worker-lost mean a task is only gone from the broker once a
launch really happened; prefetch 1 keeps one worker from hoarding a burst of submissions.
"""

from webapp.config import Settings

_settings = Settings.from_env()

broker_url = _settings.redis_url
broker_connection_retry_on_startup = True
broker_transport_options = {"visibility_timeout": 3600}
task_default_queue = _settings.queue_submissions
task_acks_late = True
task_reject_on_worker_lost = True
task_ignore_result = True
task_serializer = "json"
accept_content = ["json"]
worker_prefetch_multiplier = 1
worker_send_task_events = True
task_send_sent_event = True
timezone = "UTC"
