"""Regrades (POST /api/submissions/<id>/regrade, POST /api/assignments/<id>/regrade): a new
grading round of the same submission, its own token, the old result in history, no attempt
used, no double queueing, bulk regrades behind submissions; and who may ask."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from kombu.exceptions import OperationalError

from runner_image.contract import Bundle, bundle_key, submission_token
from tasks.celery_app import REGRADE_PRIORITY
from webapp import lifecycle
from webapp.blueprints.llm_gateway import budget_key
from webapp.models import AttemptCounter, Submission, utcnow

QUEUE = "queue:submissions"
REGRADES = "queue:regrades"


def _error_code(response) -> str:
    return response.get_json()["error"]["code"]


def _stored(submission_id: str) -> Submission:
    return Submission.objects.get(id=submission_id)


@pytest.fixture
def graded(submit, internal_post, result_body, student, assignment):
    """A submission of `student`, graded (round 0) with the fixture result."""

    def _graded(who=student, assignment_id: str | None = None, **result) -> str:
        response = submit(who, assignment_id or assignment["id"])
        assert response.status_code == 202, response.get_json()
        submission_id = response.get_json()["id"]
        stored = internal_post(submission_id, "result", result_body(**result))
        assert stored.status_code == 200, stored.get_json()
        return submission_id

    return _graded


@pytest.fixture
def regrade(client):
    def _regrade(who, submission_id: str):
        return client.post(f"/api/submissions/{submission_id}/regrade", headers=who.headers)

    return _regrade


@pytest.fixture
def bulk(client):
    def _bulk(who, assignment_id: str, **body):
        return client.post(
            f"/api/assignments/{assignment_id}/regrade",
            json={"scope": "all"} | body,
            headers=who.headers,
        )

    return _bulk


# --- one submission -----------------------------------------------------------------------


def test_a_regrade_starts_round_1_with_the_old_result_in_history(
    graded, regrade, instructor, celery, fake_redis
):
    submission_id = graded()
    before = _stored(submission_id)

    response = regrade(instructor, submission_id)

    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"] == f"/api/submissions/{submission_id}"
    shown = response.get_json()
    assert shown["status"] == "queued" and shown["round"] == 1
    assert shown["score"] is None and shown["tests"] == [] and shown["finished_at"] is None
    (old,) = shown["history"]
    assert old["round"] == 0
    assert old["status"] == "graded" and old["verdict"] == "wrong_answer"
    assert old["score"] == 33.3
    assert old["fail_tags"] == ["wrong_answer", "partial"]
    assert old["feedback"] == "Check the large inputs."
    assert old["metrics"]["tests_passed"] == 1
    assert old["finished_at"] is not None
    assert [(t["name"], t["verdict"], t["score"]) for t in old["tests"]] == [
        ("public", "accepted", 33.3),
        ("secret", "wrong_answer", 0),
    ]
    stored = _stored(submission_id)
    assert stored.round == 1 and stored.status == "queued"
    assert stored.history[0]["finished_at"] == before.finished_at
    assert stored.history[0]["result_digest"] == before.result_digest
    # The same pipeline: a bundle of the round's own, a task that names the round.
    bundle = Bundle.model_validate_json(fake_redis.get(bundle_key(submission_id, 1)))
    assert bundle.round == 1 and bundle.submission_id == submission_id
    call = celery.calls[-1]
    assert call["args"] == [submission_id]
    assert call["kwargs"]["grading_round"] == 1
    assert call["queue"] == QUEUE and "priority" not in call["options"]


def test_a_regrade_uses_no_attempt(graded, regrade, instructor, student, assignment, secret):
    submission_id = graded()
    counter = AttemptCounter.objects.get(assignment_id=assignment["id"], user_id=student.id)
    assert counter.used == 1

    assert regrade(instructor, submission_id).status_code == 202
    assert AttemptCounter.objects.get(id=counter.id).used == 1
    assert _stored(submission_id).attempt == 1


def test_a_regrade_ending_in_error_gives_back_no_attempt(
    graded, regrade, instructor, student, assignment, internal_post, secret
):
    """Round 0's error gives its attempt back; a regrade took none, so gives none back."""
    submission_id = graded()
    assert regrade(instructor, submission_id).status_code == 202

    response = internal_post(
        submission_id,
        "result",
        {"status": "error", "verdict": "internal_error", "round": 1},
        token=submission_token(secret, submission_id, 1),
    )

    assert response.status_code == 200
    assert _stored(submission_id).status == "error"
    assert AttemptCounter.objects.get(assignment_id=assignment["id"], user_id=student.id).used == 1


def test_the_new_rounds_result_replaces_the_current_one(
    graded, regrade, instructor, internal_post, result_body, secret
):
    submission_id = graded()
    regrade(instructor, submission_id)
    token = submission_token(secret, submission_id, 1)

    assert (
        internal_post(submission_id, "status", {"status": "running"}, token=token).status_code
        == 200
    )
    fixed = result_body(score=100, verdict="accepted", fail_tags=[], round=1)
    response = internal_post(submission_id, "result", fixed, token=token)

    assert response.status_code == 200 and response.get_json() == {"stored": True}
    stored = _stored(submission_id)
    assert (stored.status, stored.score, stored.verdict, stored.round) == (
        "graded",
        100,
        "accepted",
        1,
    )
    assert [entry["score"] for entry in stored.history] == [33.3]
    assert stored.metrics["queue_wait_ms"] >= 0  # from the round's start, not the submission's


def test_a_late_result_of_the_earlier_round_is_refused_and_changes_nothing(
    graded, regrade, instructor, internal_post, result_body, secret
):
    submission_id = graded()
    regrade(instructor, submission_id)
    before = _stored(submission_id)

    for what, body in (
        ("result", result_body(score=100, verdict="accepted")),
        ("status", {"status": "running"}),
    ):
        response = internal_post(submission_id, what, body)  # round 0's token
        assert response.status_code == 409, response.get_json()
        assert _error_code(response) == "stale_round"
        assert response.get_json()["error"]["details"] == {"round": 0, "current_round": 1}

    after = _stored(submission_id)
    assert after.status == "queued" and after.round == 1 and after.started_at is None
    assert after.history == before.history


def test_a_token_of_a_round_not_started_is_401(graded, internal_post, result_body, secret):
    submission_id = graded()

    response = internal_post(
        submission_id,
        "result",
        result_body(round=1),
        token=submission_token(secret, submission_id, 1),
    )

    assert response.status_code == 401


def test_a_result_must_name_the_round_of_its_token(
    graded, regrade, instructor, internal_post, result_body, secret
):
    submission_id = graded()
    regrade(instructor, submission_id)

    response = internal_post(
        submission_id,
        "result",
        result_body(round=0),
        token=submission_token(secret, submission_id, 1),
    )

    assert response.status_code == 400
    assert _stored(submission_id).status == "queued"


def test_a_result_checked_before_a_regrade_and_stored_after_it_is_stale(
    graded, regrade, instructor, result_body, fake_redis
):
    """The store is conditional on the round, so a regrade starting between the token check
    and the update cannot be overwritten."""
    from runner_image.contract import Result

    submission_id = graded()
    as_checked = _stored(submission_id)  # round 0, as the internal API read it
    regrade(instructor, submission_id)

    outcome = lifecycle.store_result(fake_redis, as_checked, Result.model_validate(result_body()))

    assert outcome is lifecycle.StoreOutcome.STALE
    assert _stored(submission_id).status == "queued"


def test_a_regrade_grades_out_of_the_assignments_current_max_score(
    graded, regrade, client, instructor, assignment, internal_post, result_body, secret
):
    submission_id = graded()
    patched = client.patch(
        f"/api/assignments/{assignment['id']}", json={"max_score": 200}, headers=instructor.headers
    )
    assert patched.status_code == 200

    assert regrade(instructor, submission_id).get_json()["max_score"] == 200
    response = internal_post(
        submission_id,
        "result",
        result_body(score=150, max_score=200, round=1),
        token=submission_token(secret, submission_id, 1),
    )
    assert response.status_code == 200


def test_the_llm_gateway_takes_the_current_rounds_token_with_a_budget_of_its_own(
    graded, regrade, instructor, client, secret, fake_redis
):
    submission_id = graded()
    regrade(instructor, submission_id)

    def ask(token: str):
        return client.post(
            f"/internal/llm/{submission_id}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {token}"},
        )

    stale = ask(submission_token(secret, submission_id))
    assert stale.status_code == 409 and _error_code(stale) == "stale_round"
    # The round's own token passes the check: with no provider configured, that is the
    # gateway's 503 `llm_not_configured`, not a refusal of the token.
    current = ask(submission_token(secret, submission_id, 1))
    assert current.status_code == 503
    assert current.get_json()["error"]["code"] == "llm_not_configured"
    assert budget_key(submission_id, 1) == f"llm-calls:{submission_id}:r1"
    assert budget_key(submission_id) == f"llm-calls:{submission_id}"


# --- dedup --------------------------------------------------------------------------------


def test_a_submission_still_being_graded_is_not_regraded(
    submit, regrade, instructor, student, assignment, celery
):
    submission_id = submit(student, assignment["id"]).get_json()["id"]
    sent = len(celery.calls)

    response = regrade(instructor, submission_id)

    assert response.status_code == 409
    assert _error_code(response) == "regrade_in_flight"
    assert response.get_json()["error"]["details"] == {"round": 0, "status": "queued"}
    assert len(celery.calls) == sent


def test_repeating_a_regrade_while_it_is_in_flight_queues_once(
    graded, regrade, instructor, celery, fake_redis
):
    submission_id = graded()
    sent = len(celery.calls)

    answers = [regrade(instructor, submission_id) for _ in range(3)]

    assert [a.status_code for a in answers] == [202, 409, 409]
    assert answers[1].get_json()["error"]["details"] == {"round": 1, "status": "queued"}
    assert len(celery.calls) == sent + 1
    stored = _stored(submission_id)
    assert stored.round == 1 and len(stored.history) == 1
    assert not fake_redis.exists(bundle_key(submission_id, 2))


def test_two_racing_regrades_start_one_round(graded, fake_redis):
    """Both read the final submission; the conditional update lets one through."""
    submission_id = graded()
    first_read, second_read = _stored(submission_id), _stored(submission_id)

    won = lifecycle.start_round(fake_redis, first_read, 100.0)
    lost = lifecycle.start_round(fake_redis, second_read, 100.0)

    assert won is not None and won.round == 1
    assert lost is None
    assert len(_stored(submission_id).history) == 1


def test_with_the_queue_down_the_previous_result_stays(graded, make_app, celery, instructor, login):
    submission_id = graded()
    before = _stored(submission_id)
    celery.error = OperationalError("broker down")

    response = (
        make_app()
        .test_client()
        .post(f"/api/submissions/{submission_id}/regrade", headers=instructor.headers)
    )

    assert response.status_code == 503
    assert _error_code(response) == "queue_unavailable"
    after = _stored(submission_id)
    assert (after.round, after.status, after.score, after.history) == (0, "graded", 33.3, [])
    assert after.tests == before.tests and after.finished_at == before.finished_at
    assert after.result_digest == before.result_digest


# --- who may regrade ----------------------------------------------------------------------


def test_the_submissions_own_student_is_403_and_others_404(
    graded, regrade, student, register, make_instructor
):
    submission_id = graded()

    own = regrade(student, submission_id)
    assert own.status_code == 403 and _error_code(own) == "forbidden"
    for outsider in (register(), make_instructor()):
        response = regrade(outsider, submission_id)
        assert response.status_code == 404 and _error_code(response) == "not_found"
    assert regrade(student, "0123456789abcdef01234567").status_code == 404
    assert regrade(student, "not-an-id").status_code == 404
    assert _stored(submission_id).round == 0


def test_bulk_regrade_by_a_student_or_another_instructor_is_404(
    graded, bulk, student, make_instructor, assignment
):
    graded()

    for outsider in (student, make_instructor()):
        response = bulk(outsider, assignment["id"])
        assert response.status_code == 404 and _error_code(response) == "not_found"
    assert Submission.objects(round__gt=0).count() == 0


def test_regrades_are_rate_limited_per_account(make_app, settings_with, graded, instructor):
    client = make_app(settings=settings_with(rate_limit_regrade="2/minute")).test_client()
    ids = [graded() for _ in range(3)]

    codes = [
        client.post(f"/api/submissions/{i}/regrade", headers=instructor.headers).status_code
        for i in ids
    ]

    assert codes == [202, 202, 429]
    assert _stored(ids[2]).round == 0


# --- students' view -----------------------------------------------------------------------


def test_a_student_sees_the_round_and_history_without_staff_only_fields(
    graded, regrade, instructor, student, client, internal_post, result_body, secret
):
    submission_id = graded(instructor_tags=["suspected_injection"])
    regrade(instructor, submission_id)

    shown = client.get(f"/api/submissions/{submission_id}", headers=student.headers).get_json()

    assert shown["round"] == 1
    (old,) = shown["history"]
    assert "instructor_tags" not in old and "instructor_tags" not in shown
    assert "run_ms_all_tests" not in old["metrics"] and old["metrics"]["run_ms"] == 12
    public, hidden = old["tests"]
    assert public["stdin"] == "1 2\n"
    assert hidden["hidden"] is True
    assert hidden["time_ms"] is None and hidden["memory_kb"] is None
    assert "stdin" not in hidden and "expected_stdout" not in hidden and "stdout" not in hidden
    staff = client.get(f"/api/submissions/{submission_id}", headers=instructor.headers).get_json()
    assert staff["history"][0]["instructor_tags"] == ["suspected_injection"]
    assert staff["history"][0]["tests"][1]["stdin"] == "40 2\n"


def test_history_keeps_verdicts_not_program_output(graded, regrade, instructor):
    submission_id = graded()
    regrade(instructor, submission_id)

    (entry,) = _stored(submission_id).history

    assert all("stdout" not in row and "message" not in row for row in entry["tests"])
    assert entry["tests"][1]["memory_kb"] == 5120


# --- bulk ---------------------------------------------------------------------------------


def test_bulk_regrade_all_queues_every_final_submission_behind_submissions(
    graded, submit, bulk, instructor, register, assignment, celery
):
    students = [register() for _ in range(3)]
    done = [graded(who) for who in students] + [graded(students[0])]
    in_flight = submit(students[1], assignment["id"]).get_json()["id"]
    sent = len(celery.calls)

    response = bulk(instructor, assignment["id"])

    assert response.status_code == 202, response.get_json()
    assert response.get_json() == {
        "queued": 4,
        "skipped_in_flight": 1,
        "skipped_ids": [in_flight],
        "reference": None,
    }
    calls = celery.calls[sent:]
    assert sorted(c["args"][0] for c in calls) == sorted(done)
    for call in calls:
        assert call["queue"] == REGRADES
        assert call["options"]["priority"] == REGRADE_PRIORITY
        assert call["kwargs"]["grading_round"] == 1 and call["kwargs"]["low_priority"] is True
    assert {_stored(i).round for i in done} == {1}
    assert _stored(in_flight).round == 0


def test_bulk_regrade_latest_takes_each_students_latest_submission(
    graded, bulk, instructor, register, assignment
):
    ana, ben = register(), register()
    ana_first, ana_last = graded(ana), graded(ana)
    ben_only = graded(ben)

    response = bulk(instructor, assignment["id"], scope="latest")

    assert response.get_json()["queued"] == 2
    assert [_stored(i).round for i in (ana_first, ana_last, ben_only)] == [0, 1, 1]


def test_a_second_bulk_regrade_while_the_first_is_in_flight_queues_nothing(
    graded, bulk, instructor, assignment, celery
):
    ids = [graded() for _ in range(2)]
    assert bulk(instructor, assignment["id"]).get_json()["queued"] == 2
    sent = len(celery.calls)

    again = bulk(instructor, assignment["id"]).get_json()

    assert again["queued"] == 0 and sorted(again["skipped_ids"]) == sorted(ids)
    assert len(celery.calls) == sent


def test_bulk_regrade_only_touches_its_own_assignment(
    graded, bulk, instructor, create_assignment, assignment
):
    other = create_assignment(instructor)
    here, there = graded(), graded(assignment_id=other["id"])

    bulk(instructor, assignment["id"])

    assert (_stored(here).round, _stored(there).round) == (1, 0)


@pytest.mark.parametrize(
    "body", [{"scope": "some"}, {"scope": "all", "extra": 1}, {}, {"scope": "all", "force": "x"}]
)
def test_a_bad_bulk_body_is_400(client, instructor, assignment, body):
    response = client.post(
        f"/api/assignments/{assignment['id']}/regrade", json=body, headers=instructor.headers
    )

    assert response.status_code == 400 and _error_code(response) == "invalid_body"


def test_the_broker_failing_mid_bulk_is_503_with_the_count_queued(
    graded, make_app, celery, instructor, assignment
):
    ids = [graded() for _ in range(2)]

    class _FailsSecond:
        calls: list = []

        def send_task(self, *args, **kwargs):
            if self.calls:
                raise OperationalError("broker gone")
            self.calls.append(args)

    response = (
        make_app(celery=_FailsSecond())
        .test_client()
        .post(
            f"/api/assignments/{assignment['id']}/regrade",
            json={"scope": "all"},
            headers=instructor.headers,
        )
    )

    assert response.status_code == 503
    assert response.get_json()["error"]["details"] == {"queued": 1}
    assert sorted(_stored(i).round for i in ids) == [0, 1]  # the second kept its result


def test_the_sweeper_resends_a_stale_regrade_round_on_its_own_queue(
    graded, bulk, instructor, assignment, celery, client, secret, settings
):
    from runner_image.contract import RESULT_TOKEN_HEADER, sweep_token

    submission_id = graded()
    bulk(instructor, assignment["id"])
    Submission.objects(id=submission_id).update_one(
        set__enqueued_at=utcnow()
        - timedelta(seconds=settings.sweep_requeue_after_seconds)
        - timedelta(minutes=1)
    )
    sent = len(celery.calls)

    response = client.post("/internal/sweep", headers={RESULT_TOKEN_HEADER: sweep_token(secret)})

    assert response.get_json()["requeued"] == [submission_id]
    (call,) = celery.calls[sent:]
    assert call["queue"] == REGRADES and call["kwargs"]["grading_round"] == 1


def test_a_regrade_bundle_holds_the_fixed_tests(
    graded, bulk, client, instructor, assignment, fake_redis
):
    submission_id = graded()
    fixed = [
        {"name": "public", "stdin": "1 2\n", "expected_stdout": "3\n"},
        {"name": "secret", "stdin": "40 2\n", "expected_stdout": "42\n", "hidden": True},
        {"name": "new", "stdin": "0 0\n", "expected_stdout": "0\n"},
    ]
    patched = client.patch(
        f"/api/assignments/{assignment['id']}", json={"tests": fixed}, headers=instructor.headers
    )
    assert patched.status_code == 200

    bulk(instructor, assignment["id"])

    raw = json.loads(fake_redis.get(bundle_key(submission_id, 1)))
    assert [t["name"] for t in raw["tests"]] == ["public", "secret", "new"]
    assert raw["round"] == 1
    # Round 0's bundle was discarded when its result was stored.
    assert not fake_redis.exists(bundle_key(submission_id))
