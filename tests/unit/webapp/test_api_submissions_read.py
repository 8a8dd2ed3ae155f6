"""GET /api/submissions[/<id>]: who may read what, and hidden tests stay hidden."""

from __future__ import annotations

import pytest

from webapp.models import Assignment


def _error_code(response) -> str:
    return response.get_json()["error"]["code"]


@pytest.fixture
def submission(submit, student, assignment):
    response = submit(student, assignment["id"])
    assert response.status_code == 202
    return response.get_json()


@pytest.fixture
def graded(submission, internal_post, result_body):
    response = internal_post(submission["id"], "result", result_body())
    assert response.status_code == 200, response.get_json()
    return submission


def test_owner_reads_their_submission(client, student, submission):
    response = client.get(f"/api/submissions/{submission['id']}", headers=student.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == submission["id"]
    assert body["status"] == "queued"
    assert body["code"] == submission["code"]


def test_another_student_gets_404_never_403(client, register, submission):
    intruder = register()

    response = client.get(f"/api/submissions/{submission['id']}", headers=intruder.headers)

    assert response.status_code == 404
    assert _error_code(response) == "not_found"
    assert submission["code"] not in response.get_data(as_text=True)


def test_another_instructor_gets_404(client, make_instructor, submission):
    other = make_instructor()

    response = client.get(f"/api/submissions/{submission['id']}", headers=other.headers)

    assert response.status_code == 404


@pytest.mark.parametrize("submission_id", ["65a000000000000000000000", "nope"])
def test_unknown_or_malformed_submission_is_404(client, student, submission_id):
    response = client.get(f"/api/submissions/{submission_id}", headers=student.headers)

    assert response.status_code == 404
    assert _error_code(response) == "not_found"


def test_reading_requires_a_token(client, submission):
    assert client.get(f"/api/submissions/{submission['id']}").status_code == 401


def test_the_assignments_instructor_sees_hidden_test_details(client, instructor, graded):
    response = client.get(f"/api/submissions/{graded['id']}", headers=instructor.headers)

    assert response.status_code == 200
    tests = {t["name"]: t for t in response.get_json()["tests"]}
    secret = tests["secret"]
    assert secret["hidden"] is True
    assert secret["stdin"] == "40 2\n"
    assert secret["expected_stdout"] == "42\n"
    assert secret["stdout"] == "41\n"
    assert secret["message"] == "expected 42"
    assert (secret["time_ms"], secret["memory_kb"]) == (11, 5120)
    metrics = response.get_json()["metrics"]
    assert (metrics["run_ms_all_tests"], metrics["max_rss_kb_all_tests"]) == (23, 5120)


def test_student_sees_hidden_results_without_inputs_or_outputs(client, student, graded):
    response = client.get(f"/api/submissions/{graded['id']}", headers=student.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "graded"
    assert body["score"] == 33.3
    tests = {t["name"]: t for t in body["tests"]}
    assert tests["secret"] == {
        "name": "secret",
        "verdict": "wrong_answer",
        "score": 0,
        "max_score": 66.7,
        "time_ms": None,
        "memory_kb": None,
        "hidden": True,
    }
    # A hidden test's time and memory could spell out its input: students see neither,
    # and their aggregates cover the public tests only.
    assert body["metrics"]["run_ms"] == 12 and body["metrics"]["max_rss_kb"] == 4000
    assert "run_ms_all_tests" not in body["metrics"]
    assert "max_rss_kb_all_tests" not in body["metrics"]
    public = tests["public"]
    assert public["stdin"] == "1 2\n"
    assert public["expected_stdout"] == "3\n"
    assert public["stdout"] == "3\n"
    text = response.get_data(as_text=True)
    assert "40 2" not in text and "42\\n" not in text and "41\\n" not in text


def test_student_list_hides_hidden_test_data_too(client, student, graded, assignment):
    for query in ("", f"?assignment_id={assignment['id']}"):
        response = client.get(f"/api/submissions{query}", headers=student.headers)

        assert response.status_code == 200
        text = response.get_data(as_text=True)
        assert graded["id"] in text
        assert "40 2" not in text and "42\\n" not in text and "41\\n" not in text
        assert "5120" not in text and "_all_tests" not in text


def test_a_test_made_hidden_after_grading_is_not_revealed(
    client, student, instructor, graded, assignment
):
    tests = [
        {"name": "public", "stdin": "7 7\n", "expected_stdout": "14\n", "hidden": True},
        {"name": "secret", "stdin": "40 2\n", "expected_stdout": "42\n", "hidden": True},
    ]
    patched = client.patch(
        f"/api/assignments/{assignment['id']}", json={"tests": tests}, headers=instructor.headers
    )
    assert patched.status_code == 200

    text = client.get(f"/api/submissions/{graded['id']}", headers=student.headers).get_data(
        as_text=True
    )

    assert "7 7" not in text and "14\\n" not in text


def test_list_shows_only_the_callers_own(client, submit, register, assignment):
    alice, bob = register(), register()
    mine = {submit(alice, assignment["id"]).get_json()["id"] for _ in range(2)}
    submit(bob, assignment["id"])

    body = client.get("/api/submissions", headers=alice.headers).get_json()

    assert body["total"] == 2
    assert {s["id"] for s in body["items"]} == mine
    assert {s["user_id"] for s in body["items"]} == {alice.id}


def test_student_list_filtered_by_assignment(
    client, submit, student, instructor, create_assignment
):
    first, second = create_assignment(instructor), create_assignment(instructor)
    wanted = submit(student, first["id"]).get_json()["id"]
    submit(student, second["id"])

    body = client.get(
        f"/api/submissions?assignment_id={first['id']}", headers=student.headers
    ).get_json()

    assert [s["id"] for s in body["items"]] == [wanted]
    assert body["total"] == 1


def test_instructor_with_assignment_id_sees_all_for_their_assignment(
    client, submit, register, instructor, create_assignment
):
    mine, theirs_assignment = create_assignment(instructor), create_assignment(instructor)
    alice, bob = register(), register()
    expected = {
        submit(alice, mine["id"]).get_json()["id"],
        submit(bob, mine["id"]).get_json()["id"],
    }
    submit(alice, theirs_assignment["id"])

    body = client.get(
        f"/api/submissions?assignment_id={mine['id']}", headers=instructor.headers
    ).get_json()

    assert body["total"] == 2
    assert {s["id"] for s in body["items"]} == expected


def test_instructor_without_assignment_id_sees_only_their_own(
    client, submit, student, instructor, assignment
):
    submit(student, assignment["id"])

    body = client.get("/api/submissions", headers=instructor.headers).get_json()

    assert body == {"items": [], "total": 0, "limit": 20, "offset": 0}


def test_another_instructor_cannot_list_someone_elses_assignment(
    client, submit, student, make_instructor, assignment
):
    submit(student, assignment["id"])
    other = make_instructor()

    body = client.get(
        f"/api/submissions?assignment_id={assignment['id']}", headers=other.headers
    ).get_json()

    assert body["total"] == 0


def test_student_cannot_list_others_by_assignment_id(client, submit, register, assignment):
    alice, bob = register(), register()
    submit(alice, assignment["id"])

    body = client.get(
        f"/api/submissions?assignment_id={assignment['id']}", headers=bob.headers
    ).get_json()

    assert body["total"] == 0


def test_list_with_malformed_assignment_id_is_404(client, student):
    response = client.get("/api/submissions?assignment_id=nope", headers=student.headers)

    assert response.status_code == 404


def test_list_pagination(client, submit, student, assignment):
    for _ in range(3):
        submit(student, assignment["id"])

    body = client.get("/api/submissions?limit=2&offset=1", headers=student.headers).get_json()

    assert body["total"] == 3
    assert len(body["items"]) == 2
    assert client.get("/api/submissions?limit=0", headers=student.headers).status_code == 400


def test_submission_of_a_deleted_assignment_is_still_readable_by_its_owner(
    client, student, submission
):
    Assignment.objects(id=submission["assignment_id"]).delete()

    response = client.get(f"/api/submissions/{submission['id']}", headers=student.headers)

    assert response.status_code == 200
