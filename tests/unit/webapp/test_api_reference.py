"""Reference solutions (PUT/GET /api/assignments/<id>/reference): graded like a submission
but no student's work, the tests it fails reported as `broken_tests`, and a bulk regrade
checked against it first."""

from __future__ import annotations

import pytest

import webapp.blueprints.regrade as regrade_module
from runner_image.contract import submission_token
from webapp.models import AttemptCounter, Submission

REFERENCE = "a, b = map(int, input().split())\nprint(a + b)\n"


def _error_code(response) -> str:
    return response.get_json()["error"]["code"]


@pytest.fixture
def put_reference(client):
    def _put(who, assignment_id: str, code: str = REFERENCE):
        return client.put(
            f"/api/assignments/{assignment_id}/reference", json={"code": code}, headers=who.headers
        )

    return _put


@pytest.fixture
def get_reference(client):
    def _get(who, assignment_id: str):
        return client.get(f"/api/assignments/{assignment_id}/reference", headers=who.headers)

    return _get


def _report(internal_post, secret, reference: dict, result: dict) -> None:
    submission = reference["submission"]
    token = submission_token(secret, submission["id"], submission["round"])
    body = result | {"round": submission["round"]}
    response = internal_post(submission["id"], "result", body, token=token)
    assert response.status_code == 200, response.get_json()


def _fails_secret(result_body) -> dict:
    """The reference fails the hidden test: that test is broken."""
    return result_body()


def _passes_all(result_body) -> dict:
    base = result_body()
    for row in base["tests"]:
        row.update(verdict="accepted", score=row["max_score"])
    return base | {"score": 100, "verdict": "accepted", "fail_tags": []}


def test_a_reference_is_graded_like_a_submission_but_is_no_students_work(
    put_reference, instructor, assignment, celery
):
    response = put_reference(instructor, assignment["id"])

    assert response.status_code == 202, response.get_json()
    assert response.headers["Location"] == f"/api/assignments/{assignment['id']}/reference"
    shown = response.get_json()
    assert shown["broken_tests"] is None and shown["up_to_date"] is True
    assert shown["submission"]["is_reference"] is True
    assert shown["submission"]["status"] == "queued"
    stored = Submission.objects.get(id=shown["submission"]["id"])
    assert stored.is_reference and stored.attempt == 0 and stored.code == REFERENCE
    assert AttemptCounter.objects.count() == 0  # no attempt reserved
    assert celery.calls[-1]["args"] == [str(stored.id)]
    assert celery.calls[-1]["queue"] == "queue:submissions"


def test_the_tests_the_reference_fails_are_reported(
    put_reference, get_reference, instructor, assignment, internal_post, secret, result_body
):
    reference = put_reference(instructor, assignment["id"]).get_json()
    assert get_reference(instructor, assignment["id"]).get_json()["broken_tests"] is None

    _report(internal_post, secret, reference, _fails_secret(result_body))

    shown = get_reference(instructor, assignment["id"]).get_json()
    assert shown["broken_tests"] == ["secret"]
    assert shown["up_to_date"] is True
    assert shown["submission"]["tests"][1]["stdin"] == "40 2\n"  # the staff's view


def test_a_reference_that_passes_has_no_broken_tests(
    put_reference, get_reference, instructor, assignment, internal_post, secret, result_body
):
    reference = put_reference(instructor, assignment["id"]).get_json()
    _report(internal_post, secret, reference, _passes_all(result_body))

    assert get_reference(instructor, assignment["id"]).get_json()["broken_tests"] == []


def test_an_error_grading_tells_nothing_about_the_tests(
    put_reference, get_reference, instructor, assignment, internal_post, secret
):
    reference = put_reference(instructor, assignment["id"]).get_json()
    _report(internal_post, secret, reference, {"status": "error", "verdict": "internal_error"})

    shown = get_reference(instructor, assignment["id"]).get_json()
    assert shown["submission"]["status"] == "error" and shown["broken_tests"] is None


def test_saving_the_same_code_again_grades_it_again_and_new_code_is_a_new_reference(
    put_reference, instructor, assignment, internal_post, secret, result_body
):
    first = put_reference(instructor, assignment["id"]).get_json()
    in_flight = put_reference(instructor, assignment["id"]).get_json()
    assert in_flight["submission"]["id"] == first["submission"]["id"]
    assert in_flight["submission"]["round"] == 0  # being graded: that grading answers
    _report(internal_post, secret, first, _fails_secret(result_body))

    again = put_reference(instructor, assignment["id"]).get_json()
    assert again["submission"]["id"] == first["submission"]["id"]
    assert again["submission"]["round"] == 1 and again["broken_tests"] is None
    assert again["submission"]["history"][0]["verdict"] == "wrong_answer"

    other = put_reference(instructor, assignment["id"], code=REFERENCE + "# v2\n").get_json()
    assert other["submission"]["id"] != first["submission"]["id"]
    assert Submission.objects(is_reference=True).count() == 2


def test_a_reference_is_in_no_students_list_and_not_in_a_bulk_regrade(
    put_reference, client, student, instructor, assignment, submit, internal_post, secret
):
    reference = put_reference(instructor, assignment["id"]).get_json()
    _report(internal_post, secret, reference, {"status": "error", "verdict": "internal_error"})
    submit(student, assignment["id"])

    listed = client.get(
        f"/api/submissions?assignment_id={assignment['id']}", headers=student.headers
    ).get_json()
    assert [s["is_reference"] for s in listed["items"]] == [False]

    bulk = client.post(
        f"/api/assignments/{assignment['id']}/regrade",
        json={"scope": "all"},
        headers=instructor.headers,
    ).get_json()
    # The student's submission is still queued; the reference, up to date, is not regraded.
    assert (bulk["queued"], bulk["skipped_in_flight"]) == (0, 1)
    assert bulk["reference"]["submission"]["round"] == 0


# --- before a bulk regrade ----------------------------------------------------------------


@pytest.fixture
def graded_submission(submit, internal_post, result_body, student, assignment) -> str:
    submission_id = submit(student, assignment["id"]).get_json()["id"]
    assert internal_post(submission_id, "result", result_body()).status_code == 200
    return submission_id


def test_a_bulk_regrade_is_refused_while_the_current_reference_fails_tests(
    put_reference,
    client,
    instructor,
    assignment,
    internal_post,
    secret,
    result_body,
    graded_submission,
    celery,
):
    reference = put_reference(instructor, assignment["id"]).get_json()
    _report(internal_post, secret, reference, _fails_secret(result_body))
    sent = len(celery.calls)
    path = f"/api/assignments/{assignment['id']}/regrade"

    refused = client.post(path, json={"scope": "all"}, headers=instructor.headers)

    assert refused.status_code == 409 and _error_code(refused) == "reference_fails_tests"
    assert refused.get_json()["error"]["details"] == {
        "broken_tests": ["secret"],
        "reference_id": reference["submission"]["id"],
    }
    assert len(celery.calls) == sent
    assert Submission.objects.get(id=graded_submission).round == 0

    forced = client.post(path, json={"scope": "all", "force": True}, headers=instructor.headers)
    assert forced.status_code == 202
    assert forced.get_json()["queued"] == 1
    assert forced.get_json()["reference"]["broken_tests"] == ["secret"]


def test_a_reference_graded_before_the_tests_changed_is_regraded_first(
    put_reference,
    client,
    instructor,
    assignment,
    internal_post,
    secret,
    result_body,
    graded_submission,
    celery,
):
    reference = put_reference(instructor, assignment["id"]).get_json()
    _report(internal_post, secret, reference, _fails_secret(result_body))
    fixed_tests = [
        {"name": "public", "stdin": "1 2\n", "expected_stdout": "3\n"},
        {"name": "secret", "stdin": "40 2\n", "expected_stdout": "42\n", "hidden": True},
    ]
    client.patch(
        f"/api/assignments/{assignment['id']}",
        json={"tests": fixed_tests},
        headers=instructor.headers,
    )
    sent = len(celery.calls)

    response = client.post(
        f"/api/assignments/{assignment['id']}/regrade",
        json={"scope": "all"},
        headers=instructor.headers,
    )

    assert response.status_code == 202, response.get_json()
    shown = response.get_json()["reference"]
    assert shown["submission"]["round"] == 1 and shown["up_to_date"] is True
    assert shown["broken_tests"] is None  # being graded again
    first, second = celery.calls[sent:]
    assert first["args"] == [reference["submission"]["id"]]
    assert first["queue"] == "queue:submissions"  # ahead of the bulk
    assert second["args"] == [graded_submission] and second["queue"] == "queue:regrades"


# --- who --------------------------------------------------------------------------------


def test_only_staff_read_and_only_editors_set_the_reference(
    put_reference, get_reference, instructor, student, make_instructor, assignment, monkeypatch
):
    assert put_reference(instructor, assignment["id"]).status_code == 202
    for outsider in (student, make_instructor()):
        for response in (
            put_reference(outsider, assignment["id"]),
            get_reference(outsider, assignment["id"]),
        ):
            assert response.status_code == 404 and _error_code(response) == "not_found"
    # Staff who may not edit the assignment (a course's TA): may read, may not set.
    monkeypatch.setattr(regrade_module, "can_edit", lambda user, assignment: False)
    ta_put = put_reference(instructor, assignment["id"], code="print(0)\n")
    assert ta_put.status_code == 403 and _error_code(ta_put) == "forbidden"
    assert get_reference(instructor, assignment["id"]).status_code == 200
    assert Submission.objects(is_reference=True).count() == 1


def test_no_reference_yet_is_404(get_reference, instructor, assignment):
    response = get_reference(instructor, assignment["id"])

    assert response.status_code == 404 and _error_code(response) == "not_found"


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [(" \n", 400, "invalid_body"), ("#" * (64 * 1024 + 1), 413, "code_too_large")],
)
def test_reference_code_is_checked_like_a_submission(
    put_reference, instructor, assignment, code, status, error
):
    response = put_reference(instructor, assignment["id"], code=code)

    assert response.status_code == status and _error_code(response) == error
    assert Submission.objects(is_reference=True).count() == 0
