"""Nothing lost: finds the submissions the pipeline dropped and moves them on. A submission
still `queued` long after it was sent (a broker lost the task, the webapp died between
saving and sending) is sent again, for its current grading round and on the queue that
round was sent to; launching is idempotent, so a duplicate costs nothing.
One `scheduled` or `running` past any runner's deadline ends in `error`. Triggered by
POST /internal/sweep, which the reconciler calls on every pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from mongoengine.queryset.visitor import Q

from runner_image.contract import Result, Status, bundle_key
from webapp.grading import send_grading_task
from webapp.lifecycle import store_result
from webapp.models import Assignment, Submission, utcnow
from webapp.services import Services
from webapp.settings import WebappSettings

REQUEUE_AFTER = timedelta(minutes=10)
# Past the longest deadline a runner Job can have, plus time to start and report.
OVERDUE_MARGIN = timedelta(minutes=10)


@dataclass
class SweepReport:
    requeued: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)


def sweep(settings: WebappSettings, services: Services) -> SweepReport:
    now = utcnow()
    report = SweepReport()
    stale = Submission.objects(status=Status.QUEUED, enqueued_at__lt=now - REQUEUE_AFTER)
    for submission in stale:
        assignment = Assignment.objects(id=submission.assignment_id).first()
        bundle = bundle_key(submission.id, submission.round)
        if assignment is not None and services.redis.exists(bundle):
            claimed = Submission.objects(
                id=submission.id,
                round=submission.round,
                status=Status.QUEUED,
                enqueued_at=submission.enqueued_at,
            ).update_one(set__enqueued_at=now)
            if claimed:  # another replica's sweep did not get there first
                send_grading_task(submission, assignment, services, settings)
                report.requeued.append(str(submission.id))
        else:
            reason = "its grading data expired before a runner picked it up"
            store_result(services.redis, submission, Result.error(reason, submission.round))
            report.expired.append(str(submission.id))
    cutoff = now - timedelta(seconds=settings.runner_max_deadline_seconds) - OVERDUE_MARGIN
    late = Submission.objects(
        Q(status__in=[Status.SCHEDULED, Status.RUNNING])
        & (Q(scheduled_at__lt=cutoff) | Q(scheduled_at=None, started_at__lt=cutoff))
    )
    for submission in late:
        reason = "the grading did not finish in time"
        store_result(services.redis, submission, Result.error(reason, submission.round))
        report.overdue.append(str(submission.id))
    return report
