"""POST /api/assignments/<id>/submissions: what is saved, queued and refused."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
import redis
from bson import ObjectId
from kombu.exceptions import OperationalError

from runner_image.contract import Bundle, bundle_key
from tasks.launchers.deadline import runner_deadline_seconds
from webapp.attempts import reserve_attempt
from webapp.errors import ApiError
from webapp.models import Assignment, AttemptCounter, Submission, utcnow

QUEUE = "queue:submissions"
TASK = "tasks.schedule_submission"


def _error_code(response) -> str:
    return response.get_json()["error"]["code"]


def _assert_nothing_stored(fake_redis, celery) -> None:
    assert Submission.objects.count() == 0
    assert fake_redis.keys("submission:*") == []
    assert celery.calls == []


def test_submit_is_202_queued_with_location(submit, student, assignment):
    response = submit(student, assignment["id"])

    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert response.headers["Location"] == f"/api/submissions/{body['id']}"
    assert body["assignment_id"] == assignment["id"]
    assert body["user_id"] == student.id
    assert body["language"] == "python"
    assert body["attempt"] == 1
    assert body["max_score"] == 100
    assert body["score"] is None and body["tests"] == [] and body["finished_at"] is None
    stored = Submission.objects.get(id=body["id"])
    assert stored.status == "queued"
    assert str(stored.user_id) == student.id


def test_submit_stores_the_grading_bundle_in_redis(submit, student, assignment, fake_redis):
    submission_id = submit(student, assignment["id"]).get_json()["id"]

    raw = fake_redis.get(f"submission:{submission_id}")
    assert raw is not None
    bundle = json.loads(raw)
    assert bundle["submission_id"] == submission_id
    assert bundle["assignment_id"] == assignment["id"]
    assert bundle["language"] == "python"
    assert "print(a + b)" in bundle["code"]
    assert bundle["time_limit_ms"] == 2000 and bundle["memory_limit_mb"] == 256
    assert bundle["feedback"]["rubric"] == "Use clear names."
    assert [
        (t["name"], t["stdin"], t["expected_stdout"], t["hidden"]) for t in bundle["tests"]
    ] == [
        ("public", "1 2\n", "3\n", False),
        ("secret", "40 2\n", "42\n", True),
    ]
    ttl = fake_redis.ttl(f"submission:{submission_id}")
    assert 0 < ttl <= 24 * 3600
    # It is the contract's bundle, as the runner will parse it.
    parsed = Bundle.model_validate_json(fake_redis.get(bundle_key(submission_id)))
    assert parsed.feedback.rubric_weight == 0.1 and parsed.feedback.llm is False
    assert parsed.assignment.title == "Sum two numbers"


def test_submit_sends_exactly_one_task(submit, student, assignment, celery, settings):
    submission_id = submit(student, assignment["id"]).get_json()["id"]

    assert len(celery.calls) == 1
    call = celery.calls[0]
    assert call["name"] == TASK
    assert call["args"] == [submission_id]
    assert call["kwargs"] == {"deadline_seconds": runner_deadline_seconds(2, 2000, settings)}
    assert call["queue"] == QUEUE


def test_the_runner_deadline_is_sized_from_the_assignment(
    submit, student, instructor, create_assignment, celery, settings
):
    """Many slow tests get a longer deadline than the fixture's two quick ones, within
    RUNNER_MIN/MAX_DEADLINE_SECONDS; the task carries it to the launcher."""
    many = [{"name": f"t{i}", "stdin": f"{i} 1\n", "expected_stdout": "x\n"} for i in range(40)]
    quick = create_assignment(instructor)
    slow = create_assignment(instructor, tests=many, time_limit_ms=5000)

    submit(student, quick["id"])
    submit(student, slow["id"])

    quick_deadline, slow_deadline = (call["kwargs"]["deadline_seconds"] for call in celery.calls)
    assert quick_deadline == runner_deadline_seconds(2, 2000, settings)
    assert slow_deadline == runner_deadline_seconds(40, 5000, settings)
    assert isinstance(slow_deadline, int)
    assert (
        settings.runner_min_deadline_seconds
        <= quick_deadline
        < slow_deadline
        <= settings.runner_max_deadline_seconds
    )


def test_the_response_never_reveals_hidden_tests(submit, student, assignment):
    text = submit(student, assignment["id"]).get_data(as_text=True)

    assert "40 2" not in text and "42\\n" not in text


def test_instructor_may_submit_to_test_an_assignment(submit, instructor, assignment):
    response = submit(instructor, assignment["id"])

    assert response.status_code == 202


def test_attempts_are_numbered(submit, student, assignment):
    attempts = [submit(student, assignment["id"]).get_json()["attempt"] for _ in range(3)]

    assert attempts == [1, 2, 3]


def test_submit_requires_a_token(client, assignment, fake_redis, celery):
    response = client.post(f"/api/assignments/{assignment['id']}/submissions", json={"code": "x"})

    assert response.status_code == 401
    _assert_nothing_stored(fake_redis, celery)


@pytest.mark.parametrize("assignment_id", ["65a000000000000000000000", "not-an-id", "1"])
def test_unknown_or_malformed_assignment_is_404(submit, student, fake_redis, celery, assignment_id):
    response = submit(student, assignment_id)

    assert response.status_code == 404
    assert _error_code(response) == "not_found"
    _assert_nothing_stored(fake_redis, celery)


def test_unpublished_assignment_is_404_for_students(
    submit, student, instructor, create_assignment, fake_redis, celery
):
    draft = create_assignment(instructor, published=False)

    response = submit(student, draft["id"])

    assert response.status_code == 404
    _assert_nothing_stored(fake_redis, celery)


def test_code_over_64_kib_is_413_code_too_large(submit, student, assignment, fake_redis, celery):
    response = submit(student, assignment["id"], code="#" * (64 * 1024 + 1))

    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "code_too_large"
    assert error["details"] == {"limit_bytes": 65536, "size_bytes": 65537}
    _assert_nothing_stored(fake_redis, celery)


def test_code_of_exactly_64_kib_is_accepted(submit, student, assignment):
    response = submit(student, assignment["id"], code="#" * (64 * 1024))

    assert response.status_code == 202


def test_code_limit_counts_utf8_bytes_not_characters(submit, student, assignment):
    response = submit(student, assignment["id"], code="#" + "é" * (32 * 1024))

    assert response.status_code == 413
    assert _error_code(response) == "code_too_large"


def test_body_over_max_request_bytes_is_a_413_json_error(
    client, student, assignment, fake_redis, celery
):
    payload = json.dumps({"code": "#" * (1024 * 1024 + 10)})

    response = client.post(
        f"/api/assignments/{assignment['id']}/submissions",
        data=payload,
        content_type="application/json",
        headers=student.headers,
    )

    assert response.status_code == 413
    assert response.is_json
    assert set(response.get_json()["error"]) == {"code", "message", "details"}
    _assert_nothing_stored(fake_redis, celery)


def test_malformed_json_is_400_and_nothing_stored(client, student, assignment, fake_redis, celery):
    response = client.post(
        f"/api/assignments/{assignment['id']}/submissions",
        data='{"code": "print(1)"',
        content_type="application/json",
        headers=student.headers,
    )

    assert response.status_code == 400
    assert _error_code(response) == "malformed_json"
    _assert_nothing_stored(fake_redis, celery)


@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "code"), ({"language": "python"}, "code"), ({"code": 42}, "code")],
)
def test_missing_or_mistyped_code_is_400(
    client, student, assignment, fake_redis, celery, payload, field
):
    response = client.post(
        f"/api/assignments/{assignment['id']}/submissions", json=payload, headers=student.headers
    )

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_body"
    assert field in [e["field"] for e in error["details"]["errors"]]
    _assert_nothing_stored(fake_redis, celery)


def test_blank_code_is_400(submit, student, assignment, fake_redis, celery):
    response = submit(student, assignment["id"], code="  \n\t")

    assert response.status_code == 400
    assert _error_code(response) == "invalid_body"
    _assert_nothing_stored(fake_redis, celery)


def test_language_mismatch_is_422(submit, student, assignment, fake_redis, celery):
    response = submit(student, assignment["id"], language="java")

    assert response.status_code == 422
    assert _error_code(response) == "language_mismatch"
    _assert_nothing_stored(fake_redis, celery)


def test_matching_language_is_accepted(submit, student, assignment):
    assert submit(student, assignment["id"], language="python").status_code == 202


def test_past_due_is_422_past_due(
    submit, student, instructor, create_assignment, fake_redis, celery
):
    due = (utcnow() - timedelta(minutes=1)).isoformat() + "Z"
    late = create_assignment(instructor, due_at=due, allow_past_due=True)

    response = submit(student, late["id"])

    assert response.status_code == 422
    assert _error_code(response) == "past_due"
    _assert_nothing_stored(fake_redis, celery)


def test_before_the_due_date_is_accepted(submit, student, instructor, create_assignment):
    due = (utcnow() + timedelta(hours=1)).isoformat() + "Z"
    open_one = create_assignment(instructor, due_at=due)

    assert submit(student, open_one["id"]).status_code == 202


def test_max_attempts_is_409_attempts_exhausted(
    submit, student, instructor, create_assignment, celery
):
    limited = create_assignment(instructor, max_attempts=2)
    assert submit(student, limited["id"]).status_code == 202
    assert submit(student, limited["id"]).status_code == 202

    response = submit(student, limited["id"])

    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "attempts_exhausted"
    assert error["details"] == {"max_attempts": 2}
    assert Submission.objects.count() == 2
    assert len(celery.calls) == 2


def test_attempts_are_counted_per_student(submit, register, instructor, create_assignment):
    limited = create_assignment(instructor, max_attempts=1)
    first, second = register(), register()

    assert submit(first, limited["id"]).status_code == 202
    assert submit(second, limited["id"]).status_code == 202
    assert submit(first, limited["id"]).status_code == 409


def test_queue_down_is_503_and_the_submission_ends_in_error(
    submit, student, assignment, celery, fake_redis
):
    celery.error = OperationalError("Error 111 connecting to 127.0.0.1:6379")

    response = submit(student, assignment["id"])

    assert response.status_code == 503
    assert _error_code(response) == "queue_unavailable"
    [stored] = Submission.objects
    assert stored.status == "error"
    assert stored.verdict == "internal_error"
    assert "does not count" in stored.feedback
    assert stored.finished_at is not None
    assert Submission.objects(status="queued").count() == 0
    assert AttemptCounter.objects(user_id=stored.user_id).get().used == 0
    assert fake_redis.keys("submission:*") == []  # nobody will read the bundle


def test_redis_down_is_503_and_no_task_is_sent(make_app, student, assignment, celery):
    class DownRedis:
        def set(self, *args, **kwargs):
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1")

        delete = publish = set

    client = make_app(redis=DownRedis()).test_client()

    response = client.post(
        f"/api/assignments/{assignment['id']}/submissions",
        json={"code": "print(1)"},
        headers=student.headers,
    )

    assert response.status_code == 503
    assert _error_code(response) == "queue_unavailable"
    assert celery.calls == []
    stored = Submission.objects.get()
    assert stored.status == "error"
    assert AttemptCounter.objects(user_id=stored.user_id).get().used == 0


def test_a_failed_enqueue_does_not_use_up_an_attempt(
    submit, student, instructor, create_assignment, celery
):
    limited = create_assignment(instructor, max_attempts=1)
    celery.error = OperationalError("broker down")
    assert submit(student, limited["id"]).status_code == 503

    celery.error = None
    response = submit(student, limited["id"])

    assert response.status_code == 202
    assert response.get_json()["attempt"] == 1


def test_submission_stores_the_assignment_max_score(submit, student, instructor, create_assignment):
    ten = create_assignment(instructor, max_score=10)

    body = submit(student, ten["id"]).get_json()

    assert body["max_score"] == 10
    assert Assignment.objects.get(id=ten["id"]).max_score == 10


def test_parallel_reservations_cannot_pass_max_attempts(app, instructor, create_assignment):
    """The check and the count are one atomic update: racing submissions get 2, not more."""
    limited = create_assignment(instructor, max_attempts=2)
    assignment = Assignment.objects(id=limited["id"]).first()
    user_id = ObjectId()
    outcomes: list[int | str] = []

    def reserve() -> None:
        try:
            outcomes.append(reserve_attempt(assignment, user_id))
        except ApiError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=reserve) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(o for o in outcomes if isinstance(o, int)) == [1, 2]
    assert outcomes.count("attempts_exhausted") == 10


def test_an_error_result_gives_the_attempt_back(
    submit, student, instructor, create_assignment, internal_post
):
    limited = create_assignment(instructor, max_attempts=1)
    first = submit(student, limited["id"]).get_json()["id"]
    assert submit(student, limited["id"]).status_code == 409

    platform_failure = {"status": "error", "verdict": "internal_error", "feedback": "runner lost"}
    assert internal_post(first, "result", platform_failure).status_code == 200

    again = submit(student, limited["id"])
    assert again.status_code == 202
    assert again.get_json()["attempt"] == 1
