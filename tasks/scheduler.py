"""The scheduler task: one per grading round of a submission (round 0 when it is
submitted, one more per regrade), hands it to the configured launcher.

Two kinds of "not now": a LaunchError (API server down, 5xx, timeout...) is retried with
exponential backoff MAX_LAUNCH_RETRIES times, then the submission ends in `error`; a
LaunchDeferred (MAX_RUNNING_JOBS reached, 429) is retried after its countdown for as long as
it takes and never spends that budget. Failures are counted in the task's `failures`
argument, not in Celery's retry counter, which counts deferrals too.

A task for a round that is no longer open (a regrade has replaced it: 409 `stale_round`)
is refused by the backend when it reports: that is the end of it, not a failure.
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
from tasks.celery_app import REGRADE_PRIORITY, SCHEDULE_TASK
from tasks.launchers import LaunchDeferred, LaunchError, make_launcher
from tasks.settings import SchedulerSettings
from tasks.worker import celery_app, worker_settings

log = logging.getLogger(__name__)

MAX_LAUNCH_RETRIES = 5


def backend_for(
    settings: SchedulerSettings, submission_id: str, grading_round: int = 0
) -> InternalApiClient:
    return InternalApiClient(
        settings.backend_internal_url,
        submission_token(
            settings.internal_result_token.get_secret_value(), submission_id, grading_round
        ),
        retries=3,
    )


def _retry_options(settings: SchedulerSettings, low_priority: bool) -> dict[str, object]:
    """A retried task goes back where it came from: a bulk regrade stays behind submissions."""
    if not low_priority:
        return {"queue": settings.queue_submissions}
    return {"queue": settings.queue_regrades, "priority": REGRADE_PRIORITY}


@celery_app.task(name=SCHEDULE_TASK, bind=True, acks_late=True, max_retries=None)
def schedule_submission(
    self,
    submission_id: str,
    deadline_seconds: int | None = None,
    failures: int = 0,
    grading_round: int = 0,
    low_priority: bool = False,
    attempt: int = 1,
) -> str | None:
    """`deadline_seconds`: how long its runner may take, sized by the webapp from the
    assignment; a task sent without it gets the longest deadline. `grading_round`: which
    grading of the submission (a task from before rounds is round 0). `low_priority`: a bulk
    regrade, which leaves launch capacity to submissions. `attempt` > 1: the backend's sweep
    asks for a fresh runner, the earlier one never having reported."""
    settings = worker_settings()
    deadline = deadline_seconds or settings.runner_max_deadline_seconds
    backend = backend_for(settings, submission_id, grading_round)
    retry_kwargs = {
        "deadline_seconds": deadline_seconds,
        "grading_round": grading_round,
        "low_priority": low_priority,
        "attempt": attempt,
    }
    retry_options = _retry_options(settings, low_priority)
    label = f"{submission_id} round {grading_round}"
    try:
        try:
            job_name = make_launcher(settings).launch(
                submission_id,
                deadline,
                grading_round=grading_round,
                low_priority=low_priority,
                attempt=attempt,
            )
        except LaunchDeferred as exc:
            log.info("launch of %s deferred %.0f s: %s", label, exc.countdown, exc)
            raise self.retry(
                exc=exc,
                countdown=exc.countdown,
                kwargs=retry_kwargs | {"failures": failures},
                **retry_options,
            ) from exc
        except LaunchError as exc:
            if failures < MAX_LAUNCH_RETRIES:
                log.warning("launch of %s failed, retrying: %s", label, exc)
                raise self.retry(
                    exc=exc,
                    countdown=2**failures,
                    kwargs=retry_kwargs | {"failures": failures + 1},
                    **retry_options,
                ) from exc
            log.error("giving up on launching %s: %s", label, exc)
            backend.post_result(
                submission_id,
                Result.error(f"no runner could be started ({exc})", grading_round),
            )
            return None
        backend.post_status(submission_id, Status.SCHEDULED, job_name=job_name)
        return job_name
    except CallbackError as exc:
        if exc.status_code == 409:
            # Already final, or a regrade has replaced this round (`stale_round`).
            log.info("%s is no longer open; nothing more to do: %s", label, exc)
            return None
        log.error("backend did not take the update for %s: %s", label, exc)
        raise
    finally:
        backend.close()
