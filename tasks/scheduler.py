"""The scheduler task: one per submission, hands it to the configured launcher.

Two kinds of "not now": a LaunchError (API server down, 5xx, timeout...) is retried with
exponential backoff MAX_LAUNCH_RETRIES times, then the submission ends in `error`; a
LaunchDeferred (MAX_RUNNING_JOBS reached, 429) is retried after its countdown for as long as
it takes and never spends that budget. Failures are counted in the task's `failures`
argument, not in Celery's retry counter, which counts deferrals too.
"""

from __future__ import annotations

import logging

from runner_image.callback import CallbackError, InternalApiClient, error_result
from tasks.celery_app import SCHEDULE_TASK, celery_app
from tasks.launchers import LaunchDeferred, LaunchError, make_launcher
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


@celery_app.task(name=SCHEDULE_TASK, bind=True, acks_late=True, max_retries=None)
def schedule_submission(self, submission_id: str, failures: int = 0) -> str | None:
    settings = Settings.from_env()
    backend = _backend(settings, submission_id)
    try:
        try:
            job_name = make_launcher(settings).launch(submission_id)
        except LaunchDeferred as exc:
            log.info("launch of %s deferred %.0f s: %s", submission_id, exc.countdown, exc)
            raise self.retry(
                exc=exc, countdown=exc.countdown, kwargs={"failures": failures}
            ) from exc
        except LaunchError as exc:
            if failures < MAX_LAUNCH_RETRIES:
                log.warning("launch of %s failed, retrying: %s", submission_id, exc)
                raise self.retry(
                    exc=exc, countdown=2**failures, kwargs={"failures": failures + 1}
                ) from exc
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
