"""The scheduler task: one per submission, hands it to the configured launcher.

Two kinds of "not now": a LaunchError (API server down, 5xx, timeout...) is retried with
exponential backoff MAX_LAUNCH_RETRIES times, then the submission ends in `error`; a
LaunchDeferred (MAX_RUNNING_JOBS reached, 429) is retried after its countdown for as long as
it takes and never spends that budget. Failures are counted in the task's `failures`
argument, not in Celery's retry counter, which counts deferrals too.
"""

from __future__ import annotations

import logging

from runner_image.contract import (
    CallbackError,
    InternalApiClient,
    Result,
    Status,
    submission_token,
)
from tasks.celery_app import SCHEDULE_TASK
from tasks.launchers import LaunchDeferred, LaunchError, make_launcher
from tasks.settings import SchedulerSettings
from tasks.worker import celery_app, worker_settings

log = logging.getLogger(__name__)

MAX_LAUNCH_RETRIES = 5


def backend_for(settings: SchedulerSettings, submission_id: str) -> InternalApiClient:
    return InternalApiClient(
        settings.backend_internal_url,
        submission_token(settings.internal_result_token.get_secret_value(), submission_id),
        retries=3,
    )


@celery_app.task(name=SCHEDULE_TASK, bind=True, acks_late=True, max_retries=None)
def schedule_submission(
    self,
    submission_id: str,
    deadline_seconds: int | None = None,
    failures: int = 0,
    attempt: int = 1,
) -> str | None:
    """`deadline_seconds`: how long its runner may take, sized by the webapp from the
    assignment; a task sent without it gets the longest deadline. `attempt` > 1: the
    backend's sweep asks for a fresh runner, the earlier one never having reported."""
    settings = worker_settings()
    deadline = deadline_seconds or settings.runner_max_deadline_seconds
    backend = backend_for(settings, submission_id)
    retry_kwargs = {"deadline_seconds": deadline_seconds, "attempt": attempt}
    try:
        try:
            job_name = make_launcher(settings).launch(submission_id, deadline, attempt)
        except LaunchDeferred as exc:
            log.info("launch of %s deferred %.0f s: %s", submission_id, exc.countdown, exc)
            raise self.retry(
                exc=exc, countdown=exc.countdown, kwargs=retry_kwargs | {"failures": failures}
            ) from exc
        except LaunchError as exc:
            if failures < MAX_LAUNCH_RETRIES:
                log.warning("launch of %s failed, retrying: %s", submission_id, exc)
                raise self.retry(
                    exc=exc,
                    countdown=2**failures,
                    kwargs=retry_kwargs | {"failures": failures + 1},
                ) from exc
            log.error("giving up on launching %s: %s", submission_id, exc)
            backend.post_result(submission_id, Result.error(f"no runner could be started ({exc})"))
            return None
        backend.post_status(submission_id, Status.SCHEDULED, job_name=job_name)
        return job_name
    except CallbackError as exc:
        log.error("backend did not take the update for %s: %s", submission_id, exc)
        raise
    finally:
        backend.close()
