"""POST /internal/sweep: what the pipeline dropped is sent again or ended, never left."""

from __future__ import annotations

from datetime import timedelta

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from runner_image.contract import (
    RESULT_TOKEN_HEADER,
    UNREPORTED_KEY,
    Bundle,
    bundle_key,
    submission_token,
    sweep_token,
)
from webapp.models import Assignment, AttemptCounter, Submission, utcnow


@pytest.fixture
def sweep(client, secret):
    def run(token: str | None = None):
        return client.post(
            "/internal/sweep", headers={RESULT_TOKEN_HEADER: token or sweep_token(secret)}
        )

    return run


@pytest.fixture
def submission_id(submit, student, assignment) -> str:
    response = submit(student, assignment["id"])
    assert response.status_code == 202
    return response.get_json()["id"]


def _age(submission_id: str, **fields) -> None:
    Submission.objects(id=submission_id).update_one(**{f"set__{k}": v for k, v in fields.items()})


@pytest.fixture
def requeue_after(settings) -> timedelta:
    return timedelta(seconds=settings.sweep_requeue_after_seconds)


@pytest.fixture
def overdue(settings) -> timedelta:
    """How long past being scheduled a submission counts as overdue."""
    return timedelta(seconds=settings.runner_max_deadline_seconds + settings.sweep_grace_seconds)


EMPTY_REPORT = {"requeued": [], "relaunched": [], "rebuilt": [], "expired": [], "overdue": []}


def test_a_lost_task_is_sent_again_once(sweep, submission_id, celery, requeue_after):
    _age(submission_id, enqueued_at=utcnow() - requeue_after - timedelta(seconds=1))

    first = sweep().get_json()
    second = sweep().get_json()

    assert first["requeued"] == [submission_id]
    assert second["requeued"] == []
    assert [call["args"] for call in celery.calls] == [[submission_id], [submission_id]]
    # Sent again as it was first sent: the same runner deadline, sized from the assignment.
    assert celery.calls[1]["kwargs"] == celery.calls[0]["kwargs"]
    assert Submission.objects(id=submission_id).first().status == "queued"


def test_a_recent_queued_submission_is_left_alone(sweep, submission_id, celery):
    assert sweep().get_json() == EMPTY_REPORT
    assert len(celery.calls) == 1


def test_a_lost_task_whose_bundle_redis_lost_is_rebuilt_from_mongodb_and_sent_again(
    sweep, submission_id, fake_redis, celery, requeue_after
):
    """Redis restarted without its append-only file: queue and bundles gone."""
    original = fake_redis.get(bundle_key(submission_id))
    _age(submission_id, enqueued_at=utcnow() - requeue_after - timedelta(seconds=1))
    fake_redis.delete(bundle_key(submission_id))

    report = sweep().get_json()

    assert report["rebuilt"] == [submission_id]
    assert report["requeued"] == [submission_id]
    assert Bundle.model_validate_json(fake_redis.get(bundle_key(submission_id))) == (
        Bundle.model_validate_json(original)
    )
    assert fake_redis.ttl(bundle_key(submission_id)) > 0
    assert [call["args"] for call in celery.calls] == [[submission_id], [submission_id]]
    assert Submission.objects(id=submission_id).first().status == "queued"


def test_a_bundle_still_in_redis_is_not_rewritten(sweep, submission_id, fake_redis, requeue_after):
    _age(submission_id, enqueued_at=utcnow() - requeue_after - timedelta(seconds=1))
    fake_redis.set(bundle_key(submission_id), "kept as it is")

    assert sweep().get_json()["rebuilt"] == []
    assert fake_redis.get(bundle_key(submission_id)) == b"kept as it is"


def test_a_submission_whose_runner_never_reported_gets_one_fresh_runner(
    sweep, submission_id, fake_redis, celery, overdue
):
    """Its runner could not reach the backend (or found no bundle) and exited: a fresh
    runner, attempt 2, with its bundle rebuilt; the status does not move backwards."""
    long_ago = utcnow() - overdue - timedelta(seconds=1)
    _age(submission_id, status="running", scheduled_at=long_ago, started_at=long_ago)
    fake_redis.delete(bundle_key(submission_id))

    report = sweep().get_json()

    assert report["relaunched"] == [submission_id]
    assert report["rebuilt"] == [submission_id]
    assert report["overdue"] == []
    assert celery.calls[-1]["args"] == [submission_id]
    assert celery.calls[-1]["kwargs"] == celery.calls[0]["kwargs"] | {"attempt": 2}
    stored = Submission.objects(id=submission_id).first()
    assert stored.status == "running"
    assert stored.relaunches == 1
    assert stored.scheduled_at > long_ago
    # The fresh runner has its full deadline: the next pass leaves it alone.
    assert sweep().get_json() == EMPTY_REPORT


def test_a_submission_overdue_again_after_its_fresh_runner_ends_in_error(
    sweep, submission_id, celery, overdue, student
):
    long_ago = utcnow() - overdue - timedelta(seconds=1)
    _age(submission_id, status="running", scheduled_at=long_ago, started_at=long_ago)
    assert sweep().get_json()["relaunched"] == [submission_id]
    _age(submission_id, scheduled_at=long_ago)

    assert sweep().get_json()["overdue"] == [submission_id]

    stored = Submission.objects(id=submission_id).first()
    assert stored.status == "error"
    assert "did not finish in time" in stored.feedback
    assert AttemptCounter.objects(user_id=stored.user_id).first().used == 0
    assert len(celery.calls) == 2  # the first send and the one fresh runner


def test_without_fresh_runners_an_overdue_submission_ends_in_error(
    make_app, settings_with, submission_id, secret, overdue
):
    client = make_app(settings_with(sweep_max_relaunches=0)).test_client()
    long_ago = utcnow() - overdue - timedelta(seconds=1)
    _age(submission_id, status="scheduled", scheduled_at=long_ago)

    response = client.post("/internal/sweep", headers={RESULT_TOKEN_HEADER: sweep_token(secret)})

    assert response.get_json()["overdue"] == [submission_id]
    assert Submission.objects(id=submission_id).first().status == "error"


def test_a_fresh_runner_that_could_not_be_sent_is_tried_again_next_pass(
    sweep, submission_id, celery, overdue
):
    long_ago = utcnow() - overdue - timedelta(seconds=1)
    _age(submission_id, status="running", scheduled_at=long_ago, started_at=long_ago)
    celery.error = RedisConnectionError("broker down")

    assert sweep().status_code == 503
    stored = Submission.objects(id=submission_id).first()
    assert (stored.status, stored.relaunches, stored.scheduled_at) == ("running", 0, long_ago)

    celery.error = None
    assert sweep().get_json()["relaunched"] == [submission_id]


def test_a_submission_whose_assignment_was_deleted_ends_in_error(
    sweep, submission_id, requeue_after
):
    _age(submission_id, enqueued_at=utcnow() - requeue_after - timedelta(seconds=1))
    Assignment.objects(id=Submission.objects(id=submission_id).first().assignment_id).delete()

    assert sweep().get_json()["expired"] == [submission_id]
    assert Submission.objects(id=submission_id).first().status == "error"


def test_a_running_submission_within_its_deadline_is_left_alone(sweep, submission_id):
    _age(submission_id, status="running", scheduled_at=utcnow(), started_at=utcnow())

    assert sweep().get_json()["overdue"] == []


def test_sweep_needs_its_own_token(sweep, submission_id, secret):
    assert sweep(token="wrong").status_code == 401
    assert sweep(token=secret).status_code == 401
    assert sweep(token=submission_token(secret, submission_id)).status_code == 401
    # The sweep token is no longer the submission token of a submission named "sweep".
    assert sweep(token=submission_token(secret, "sweep")).status_code == 401
    assert sweep().status_code == 200


def test_a_runner_marked_unreported_gets_a_fresh_runner_at_the_next_pass(
    sweep, submission_id, fake_redis, celery
):
    """Its launcher saw it exit unable to report: no need to wait for the deadline."""
    _age(submission_id, status="running", scheduled_at=utcnow(), started_at=utcnow())
    fake_redis.sadd(UNREPORTED_KEY, submission_id)

    report = sweep().get_json()

    assert report["relaunched"] == [submission_id]
    assert celery.calls[-1]["kwargs"]["attempt"] == 2
    assert fake_redis.smembers(UNREPORTED_KEY) == set()
    assert Submission.objects(id=submission_id).first().relaunches == 1
    assert sweep().get_json() == EMPTY_REPORT


def test_an_unreported_mark_of_a_final_or_spent_submission_is_dropped(
    sweep, submission_id, fake_redis, celery, settings
):
    _age(submission_id, status="running", relaunches=settings.sweep_max_relaunches)
    fake_redis.sadd(UNREPORTED_KEY, submission_id, "not-an-id", "65a0000000000000000000ff")

    assert sweep().get_json()["relaunched"] == []
    assert fake_redis.smembers(UNREPORTED_KEY) == set()
    assert len(celery.calls) == 1
