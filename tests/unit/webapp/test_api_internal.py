"""The runner's callbacks: per-submission tokens, one result per submission, no going back."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from bson import ObjectId

from runner_image.contract import RESULT_TOKEN_HEADER, submission_token, sweep_token
from webapp.models import Submission


def _error_code(response) -> str:
    return response.get_json()["error"]["code"]


@pytest.fixture
def submission_id(submit, student, assignment) -> str:
    response = submit(student, assignment["id"])
    assert response.status_code == 202
    return response.get_json()["id"]


def _stored(submission_id: str) -> Submission:
    return Submission.objects.get(id=submission_id)


# --- tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("what", ["result", "status"])
@pytest.mark.parametrize("token", ["", "wrong", "t" * 32])
def test_wrong_token_is_401_and_nothing_changes(
    internal_post, result_body, submission_id, what, token
):
    body = result_body() if what == "result" else {"status": "running"}

    response = internal_post(submission_id, what, body, token=token)

    assert response.status_code == 401
    assert _error_code(response) == "invalid_token"
    stored = _stored(submission_id)
    assert stored.status == "queued"
    assert stored.score is None and stored.started_at is None and stored.result_digest is None


def test_missing_token_header_is_401(client, result_body, submission_id):
    response = client.post(f"/internal/submissions/{submission_id}/result", json=result_body())

    assert response.status_code == 401
    assert _stored(submission_id).status == "queued"


def test_token_of_another_submission_is_401(
    internal_post, result_body, submit, student, assignment, secret
):
    victim = submit(student, assignment["id"]).get_json()["id"]
    attacker = submit(student, assignment["id"]).get_json()["id"]

    response = internal_post(
        victim, "result", result_body(), token=submission_token(secret, attacker)
    )

    assert response.status_code == 401
    assert _stored(victim).status == "queued"


def test_the_server_secret_itself_is_not_a_valid_token(
    internal_post, result_body, submission_id, secret
):
    response = internal_post(submission_id, "result", result_body(), token=secret)

    assert response.status_code == 401


def test_the_sweep_token_opens_no_submission(internal_post, result_body, submission_id, secret):
    response = internal_post(submission_id, "result", result_body(), token=sweep_token(secret))

    assert response.status_code == 401
    assert _stored(submission_id).status == "queued"


def test_token_is_checked_before_the_id_is_looked_up(internal_post, result_body):
    """Without a valid token, an unknown id and a known one look the same."""
    response = internal_post(str(ObjectId()), "result", result_body(), token="wrong")

    assert response.status_code == 401


# --- results ------------------------------------------------------------------------------


def test_valid_result_is_stored(internal_post, result_body, submission_id):
    response = internal_post(submission_id, "result", result_body())

    assert response.status_code == 200
    assert response.get_json() == {"stored": True}
    stored = _stored(submission_id)
    assert stored.status == "graded"
    assert stored.verdict == "wrong_answer"
    assert stored.score == 33.3
    assert stored.fail_tags == ["wrong_answer", "partial"]
    assert stored.feedback == "Check the large inputs."
    assert [(t.name, t.verdict, t.hidden) for t in stored.test_results] == [
        ("public", "accepted", False),
        ("secret", "wrong_answer", True),
    ]
    assert stored.metrics["tests_passed"] == 1
    assert stored.finished_at is not None
    assert stored.result_digest


def test_identical_repeat_is_200_and_changes_nothing(internal_post, result_body, submission_id):
    assert internal_post(submission_id, "result", result_body()).status_code == 200
    first = _stored(submission_id)

    response = internal_post(submission_id, "result", result_body())

    assert response.status_code == 200
    assert response.get_json() == {"stored": False}
    again = _stored(submission_id)
    assert again.finished_at == first.finished_at
    assert again.metrics == first.metrics


def test_a_different_second_result_is_409_and_the_first_stays(
    internal_post, result_body, submission_id
):
    assert internal_post(submission_id, "result", result_body()).status_code == 200

    response = internal_post(submission_id, "result", result_body(score=100, verdict="accepted"))

    assert response.status_code == 409
    assert _error_code(response) == "result_conflict"
    stored = _stored(submission_id)
    assert stored.score == 33.3 and stored.verdict == "wrong_answer"


def test_an_error_result_after_a_grade_is_409(internal_post, result_body, submission_id):
    assert internal_post(submission_id, "result", result_body()).status_code == 200

    response = internal_post(
        submission_id, "result", {"status": "error", "verdict": "internal_error"}
    )

    assert response.status_code == 409
    assert _stored(submission_id).status == "graded"


def test_unknown_submission_with_its_valid_token_is_404(internal_post, result_body):
    response = internal_post(str(ObjectId()), "result", result_body())

    assert response.status_code == 404
    assert _error_code(response) == "not_found"
    assert Submission.objects.count() == 0


def test_malformed_id_with_its_valid_token_is_404(internal_post, result_body):
    response = internal_post("not-an-id", "result", result_body())

    assert response.status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "queued"},
        {"status": "running"},
        {"status": "graded", "score": -1},
        {"status": "graded", "tests": [{"verdict": "accepted"}]},
        {"status": "graded", "fail_tags": "wrong_answer"},
        [],
    ],
)
def test_invalid_result_body_is_400_and_nothing_changes(internal_post, submission_id, body):
    response = internal_post(submission_id, "result", body)

    assert response.status_code == 400
    assert _error_code(response) == "invalid_body"
    assert _stored(submission_id).status == "queued"


def test_malformed_json_result_is_400(client, submission_id, secret):
    response = client.post(
        f"/internal/submissions/{submission_id}/result",
        data="{not json",
        content_type="application/json",
        headers={RESULT_TOKEN_HEADER: submission_token(secret, submission_id)},
    )

    assert response.status_code == 400
    assert _error_code(response) == "malformed_json"


def test_result_computes_queue_wait_and_total_ms(internal_post, result_body, submission_id):
    created = _stored(submission_id).created_at
    Submission.objects(id=submission_id).update_one(
        set__created_at=created - timedelta(seconds=5),
        set__status="running",
        set__started_at=created - timedelta(seconds=3),
    )

    assert internal_post(submission_id, "result", result_body()).status_code == 200

    metrics = _stored(submission_id).metrics
    assert metrics["queue_wait_ms"] == 2000
    assert 5000 <= metrics["total_ms"] < 15000
    assert metrics["run_ms_all_tests"] == 23  # the runner's own metrics are kept


def test_result_without_a_start_has_no_queue_wait(internal_post, result_body, submission_id):
    assert internal_post(submission_id, "result", result_body()).status_code == 200

    metrics = _stored(submission_id).metrics
    assert metrics["queue_wait_ms"] is None
    assert metrics["total_ms"] >= 0


def test_result_metrics_cannot_be_overridden_by_the_runner(
    internal_post, result_body, submission_id
):
    body = result_body(metrics={"queue_wait_ms": -1, "total_ms": -1})

    assert internal_post(submission_id, "result", body).status_code == 200

    metrics = _stored(submission_id).metrics
    assert metrics["queue_wait_ms"] is None
    assert metrics["total_ms"] >= 0


# --- status -------------------------------------------------------------------------------


def test_running_moves_queued_to_running_and_sets_started_at(internal_post, submission_id):
    response = internal_post(submission_id, "status", {"status": "running"})

    assert response.status_code == 200
    assert response.get_json() == {"status": "running", "changed": True}
    stored = _stored(submission_id)
    assert stored.status == "running"
    assert stored.started_at is not None


def test_scheduled_then_running(internal_post, submission_id):
    scheduled = internal_post(
        submission_id, "status", {"status": "scheduled", "job_name": "runner-x"}
    )
    assert scheduled.get_json() == {"status": "scheduled", "changed": True}
    assert _stored(submission_id).scheduled_at is not None
    assert _stored(submission_id).job_name == "runner-x"

    running = internal_post(submission_id, "status", {"status": "running"})

    assert running.get_json() == {"status": "running", "changed": True}


def test_scheduled_after_running_does_not_go_back_but_records_the_job(internal_post, submission_id):
    internal_post(submission_id, "status", {"status": "running"})
    started = _stored(submission_id).started_at

    response = internal_post(
        submission_id, "status", {"status": "scheduled", "job_name": f"runner-{submission_id}"}
    )

    assert response.status_code == 200
    assert response.get_json() == {"status": "running", "changed": False}
    stored = _stored(submission_id)
    assert stored.status == "running"
    assert stored.job_name == f"runner-{submission_id}"
    assert stored.started_at == started
    assert stored.scheduled_at is None


def test_running_twice_keeps_the_first_start(internal_post, submission_id):
    internal_post(submission_id, "status", {"status": "running"})
    started = _stored(submission_id).started_at

    response = internal_post(submission_id, "status", {"status": "running"})

    assert response.get_json() == {"status": "running", "changed": False}
    assert _stored(submission_id).started_at == started


def test_running_after_the_result_does_not_reopen(internal_post, result_body, submission_id):
    internal_post(submission_id, "result", result_body())

    response = internal_post(submission_id, "status", {"status": "running"})

    assert response.get_json() == {"status": "graded", "changed": False}
    assert _stored(submission_id).status == "graded"


@pytest.mark.parametrize(
    "body", [{"status": "graded"}, {"status": "queued"}, {}, {"status": "running", "x": 1}]
)
def test_invalid_status_body_is_400(internal_post, submission_id, body):
    response = internal_post(submission_id, "status", body)

    assert response.status_code == 400
    assert _stored(submission_id).status == "queued"


def test_status_for_an_unknown_submission_is_404(internal_post):
    response = internal_post(str(ObjectId()), "status", {"status": "running"})

    assert response.status_code == 404


def test_a_score_above_max_score_is_refused(internal_post, result_body, submission_id):
    response = internal_post(submission_id, "result", result_body(score=150))

    assert response.status_code == 400
    assert _stored(submission_id).status == "queued"


def test_a_result_larger_than_the_public_request_limit_is_accepted(
    app, internal_post, result_body, submission_id
):
    """200 rows of clipped output exceed MAX_REQUEST_BYTES; /internal has its own limit."""
    body = result_body()
    body["tests"][0]["stdout"] = "\ufffd" * 4096
    body["tests"] = [dict(body["tests"][0], name=f"t{i}") for i in range(200)]
    assert len(json.dumps(body)) > app.config["SETTINGS"].max_request_bytes

    response = internal_post(submission_id, "result", body)

    assert response.status_code == 200, response.get_json()


def test_a_stored_result_frees_the_grading_bundle(
    fake_redis, internal_post, result_body, submission_id
):
    assert fake_redis.exists(f"submission:{submission_id}")

    assert internal_post(submission_id, "result", result_body()).status_code == 200

    assert not fake_redis.exists(f"submission:{submission_id}")
