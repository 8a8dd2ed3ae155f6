"""Nothing lost: finds the submissions the pipeline dropped and moves them on, from what
MongoDB holds (the truth) rather than what Redis still has. Run by POST /internal/sweep,
which the reconciler calls every RECONCILE_INTERVAL_SECONDS.

- `queued` SWEEP_REQUEUE_AFTER_SECONDS after its task was sent (a broker lost the task:
  Redis restarted without its append-only file, a worker was killed holding it, the webapp
  died between saving and sending): sent again. Launching is idempotent, so a duplicate
  costs nothing.
- named in the Redis set UNREPORTED_KEY: its runner exited unable to report (the backend
  was unreachable) or to read its bundle, as its launcher or the reconciler saw. It gets a
  fresh runner at once, up to SWEEP_MAX_RELAUNCHES times.
- `scheduled` or `running` SWEEP_GRACE_SECONDS past RUNNER_MAX_DEADLINE_SECONDS: its runner
  is gone without a result, and nobody could say so (the mark above was lost with Redis, or
  the runner died with its launcher). It gets a fresh runner, up to SWEEP_MAX_RELAUNCHES
  times; then it ends in `error`.

Each acts on the submission's current grading round (its bundle, its queue, its token).
Either way a bundle that Redis lost is rebuilt from MongoDB first. Each step claims its
submission with a conditional update, so two replicas' sweeps never both act on one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from bson import ObjectId
from kombu.exceptions import KombuError
from mongoengine.queryset.visitor import Q
from redis.exceptions import RedisError

from runner_image.contract import OPEN_STATUSES, UNREPORTED_KEY, Result, Status, bundle_key
from webapp.grading import build_bundle, send_grading_task
from webapp.lifecycle import store_result
from webapp.models import Assignment, Submission, utcnow
from webapp.services import Services
from webapp.settings import WebappSettings


@dataclass
class SweepReport:
    requeued: list[str] = field(default_factory=list)
    relaunched: list[str] = field(default_factory=list)
    # Bundles Redis had lost, rebuilt from MongoDB before their task was sent again.
    rebuilt: list[str] = field(default_factory=list)
    # Could not be graded any more (their assignment was deleted): ended in `error`.
    expired: list[str] = field(default_factory=list)
    # Past their deadline with every fresh runner spent: ended in `error`.
    overdue: list[str] = field(default_factory=list)


def sweep(settings: WebappSettings, services: Services) -> SweepReport:
    report = SweepReport()
    _relaunch_unreported(settings, services, report)
    _requeue_lost_tasks(settings, services, report)
    _relaunch_or_end_overdue(settings, services, report)
    return report


def _relaunch_unreported(settings: WebappSettings, services: Services, report: SweepReport) -> None:
    for raw in services.redis.smembers(UNREPORTED_KEY):
        submission_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        submission = (
            Submission.objects(id=submission_id).first()
            if ObjectId.is_valid(submission_id)
            else None
        )
        if (
            submission is not None
            and submission.status in OPEN_STATUSES
            and submission.relaunches < settings.sweep_max_relaunches
        ):
            _relaunch(submission, settings, services, report)
        # Done, or nothing more to do now: the overdue pass ends what is left.
        services.redis.srem(UNREPORTED_KEY, raw)


def _assignment_or_end(
    submission: Submission, services: Services, report: SweepReport
) -> Assignment | None:
    """The submission's assignment; a submission whose assignment was deleted ends."""
    assignment = Assignment.objects(id=submission.assignment_id).first()
    if assignment is None:
        _end(services, submission, "its assignment was deleted before it was graded", report)
    return assignment


def _requeue_lost_tasks(settings: WebappSettings, services: Services, report: SweepReport) -> None:
    now = utcnow()
    stale_since = now - timedelta(seconds=settings.sweep_requeue_after_seconds)
    for submission in Submission.objects(status=Status.QUEUED, enqueued_at__lt=stale_since):
        assignment = _assignment_or_end(submission, services, report)
        if assignment is None:
            continue
        claimed = Submission.objects(
            id=submission.id,
            round=submission.round,
            status=Status.QUEUED,
            enqueued_at=submission.enqueued_at,
        ).update_one(set__enqueued_at=now)
        if not claimed:  # another replica's sweep got there first
            continue
        _restore_bundle(submission, assignment, settings, services, report)
        send_grading_task(submission, assignment, services, settings)
        report.requeued.append(str(submission.id))


def _relaunch_or_end_overdue(
    settings: WebappSettings, services: Services, report: SweepReport
) -> None:
    now = utcnow()
    cutoff = now - timedelta(
        seconds=settings.runner_max_deadline_seconds + settings.sweep_grace_seconds
    )
    late = Submission.objects(
        Q(status__in=[Status.SCHEDULED, Status.RUNNING])
        & (Q(scheduled_at__lt=cutoff) | Q(scheduled_at=None, started_at__lt=cutoff))
    )
    for submission in late:
        if submission.relaunches >= settings.sweep_max_relaunches:
            reason = "the grading did not finish in time"
            store_result(services.redis, submission, Result.error(reason, submission.round))
            report.overdue.append(str(submission.id))
            continue
        _relaunch(submission, settings, services, report)


def _relaunch(
    submission: Submission, settings: WebappSettings, services: Services, report: SweepReport
) -> None:
    """A fresh runner (attempt relaunches + 2), claimed first so that it is sent once; the
    fresh runner gets a full deadline before the overdue pass looks at it again."""
    assignment = _assignment_or_end(submission, services, report)
    if assignment is None:
        return
    unclaimed = Submission.objects(
        id=submission.id,
        round=submission.round,
        status__in=list(OPEN_STATUSES),
        relaunches=submission.relaunches,
    )
    if not unclaimed.update_one(inc__relaunches=1, set__scheduled_at=utcnow()):
        return
    try:
        _restore_bundle(submission, assignment, settings, services, report)
        send_grading_task(
            submission, assignment, services, settings, attempt=submission.relaunches + 2
        )
    except (RedisError, KombuError, OSError):
        # Not sent: give the claim back, so that the next pass tries again.
        Submission.objects(id=submission.id, relaunches=submission.relaunches + 1).update_one(
            set__relaunches=submission.relaunches, set__scheduled_at=submission.scheduled_at
        )
        raise
    report.relaunched.append(str(submission.id))


def _restore_bundle(
    submission: Submission,
    assignment: Assignment,
    settings: WebappSettings,
    services: Services,
    report: SweepReport,
) -> None:
    """The bundle is built from MongoDB alone, so a Redis that lost it loses nothing."""
    rebuilt = services.redis.set(
        bundle_key(submission.id, submission.round),
        build_bundle(submission, assignment).model_dump_json(),
        ex=settings.bundle_ttl_seconds,
        nx=True,
    )
    if rebuilt:
        report.rebuilt.append(str(submission.id))


def _end(services: Services, submission: Submission, reason: str, report: SweepReport) -> None:
    store_result(services.redis, submission, Result.error(reason, submission.round))
    report.expired.append(str(submission.id))
