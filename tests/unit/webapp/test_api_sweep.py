"""POST /internal/sweep: what the pipeline dropped is sent again or ended, never left."""

from __future__ import annotations

from datetime import timedelta

import pytest

from runner_image.contract import RESULT_TOKEN_HEADER, submission_token, sweep_token
from webapp.models import AttemptCounter, Submission, utcnow
from webapp.sweeper import OVERDUE_MARGIN, REQUEUE_AFTER


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


def test_a_lost_task_is_sent_again_once(sweep, submission_id, celery):
    _age(submission_id, enqueued_at=utcnow() - REQUEUE_AFTER - timedelta(seconds=1))

    first = sweep().get_json()
    second = sweep().get_json()

    assert first["requeued"] == [submission_id]
    assert second["requeued"] == []
    assert [call["args"] for call in celery.calls] == [[submission_id], [submission_id]]
    # Sent again as it was first sent: the same runner deadline, sized from the assignment.
    assert celery.calls[1]["kwargs"] == celery.calls[0]["kwargs"]
    assert Submission.objects(id=submission_id).first().status == "queued"


def test_a_recent_queued_submission_is_left_alone(sweep, submission_id, celery):
    assert sweep().get_json() == {"requeued": [], "expired": [], "overdue": []}
    assert len(celery.calls) == 1


def test_a_lost_task_whose_bundle_expired_ends_in_error(sweep, submission_id, fake_redis, student):
    _age(submission_id, enqueued_at=utcnow() - REQUEUE_AFTER - timedelta(seconds=1))
    fake_redis.delete(f"submission:{submission_id}")

    assert sweep().get_json()["expired"] == [submission_id]

    stored = Submission.objects(id=submission_id).first()
    assert stored.status == "error"
    assert "expired" in stored.feedback
    assert AttemptCounter.objects(user_id=stored.user_id).first().used == 0


def test_a_submission_running_past_any_deadline_ends_in_error(app, sweep, submission_id):
    deadline = timedelta(seconds=app.config["SETTINGS"].runner_max_deadline_seconds)
    long_ago = utcnow() - deadline - OVERDUE_MARGIN - timedelta(seconds=1)
    _age(submission_id, status="running", scheduled_at=long_ago, started_at=long_ago)

    assert sweep().get_json()["overdue"] == [submission_id]
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
