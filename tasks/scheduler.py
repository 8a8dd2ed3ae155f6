"""The scheduler task: one per submission, hands it to the configured launcher."""

from __future__ import annotations

import logging

from runner_image.callback import CallbackError, InternalApiClient, error_result
from tasks.celery_app import SCHEDULE_TASK, celery_app
from tasks.launchers import LaunchError, make_launcher
from webapp.config import Settings
from webapp.security import result_token_for

log = logging.getLogger(__name__)

MAX_LAUNCH_RETRIES = 5


def _backend(settings: Settings, submission_id: str) -> InternalApiClient:
    return InternalApiClient(
        settings.backend_internal_url,
        result_token_for(settings.internal_result_token, submission_id),
        retries=3,
    )


@celery_app.task(name=SCHEDULE_TASK, bind=True, acks_late=True)
def schedule_submission(self, submission_id: str) -> str | None:
    settings = Settings.from_env()
    backend = _backend(settings, submission_id)
    try:
        try:
            job_name = make_launcher(settings).launch(submission_id)
        except LaunchError as exc:
            if self.request.retries < MAX_LAUNCH_RETRIES:
                log.warning("launch of %s failed, retrying: %s", submission_id, exc)
                raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
            log.error("giving up on launching %s: %s", submission_id, exc)
            backend.post_result(submission_id, error_result(f"no runner could be started ({exc})"))
            return None
        backend.post_status(submission_id, "scheduled", job_name=job_name)
        return job_name
    except CallbackError as exc:
        log.error("backend did not take the update for %s: %s", submission_id, exc)
        raise
    finally:
        backend.close()
