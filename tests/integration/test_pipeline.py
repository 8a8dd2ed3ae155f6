"""A submission travels REST -> MongoDB -> Redis -> Celery worker -> local launcher ->
runner process -> internal callback -> REST, with every part a real process."""

from __future__ import annotations

import http.client
import time

import requests

from cloudemy_dev.demo_data import DEMO_INSTRUCTOR
from runner_image.contract import RESULT_TOKEN_HEADER, submission_token
from tests.integration.conftest import signed_in

SLOW_SUM = (
    "import sys, time\ntime.sleep(0.4)\nprint(sum(int(x) for x in sys.stdin.read().split()[1:]))\n"
)


def create_assignment(instructor, **overrides) -> dict:
    body = {
        "title": "Sum",
        "language": "python",
        "time_limit_ms": 2000,
        "tests": [
            {"name": "small", "stdin": "2\n1 2\n", "expected_stdout": "3\n"},
            {
                "name": "hidden big",
                "stdin": "2\n100 200\n",
                "expected_stdout": "300\n",
                "hidden": True,
            },
        ],
    } | overrides
    response = instructor.post("/api/assignments", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def statuses_until_final(api, submission_id: str, timeout: float = 60) -> tuple[list[str], dict]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        submission = api.get(f"/api/submissions/{submission_id}").json()
        if not seen or seen[-1] != submission["status"]:
            seen.append(submission["status"])
        if submission["status"] in ("graded", "failed", "error"):
            return seen, submission
        time.sleep(0.03)
    raise AssertionError(f"submission {submission_id} not final after {timeout} s: {seen}")


def test_submission_goes_queued_running_graded_with_the_right_score(stack, new_student):
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    assignment = create_assignment(instructor)
    student = new_student()

    response = student.post(
        f"/api/assignments/{assignment['id']}/submissions", json={"code": SLOW_SUM}
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    assert response.headers["Location"] == f"/api/submissions/{response.json()['id']}"

    seen, result = statuses_until_final(student, response.json()["id"])

    # The first poll may already find it scheduled: the worker can be that quick.
    lifecycle = ["queued", "scheduled", "running", "graded"]
    assert seen == sorted(seen, key=lifecycle.index), seen
    assert "running" in seen
    assert seen[-1] == "graded"
    assert result["score"] == 100
    assert result["verdict"] == "accepted"
    assert [t["verdict"] for t in result["tests"]] == ["accepted", "accepted"]
    assert result["job_name"] == f"runner-{result['id']}"
    assert result["metrics"]["tests_passed"] == 2
    assert result["metrics"]["queue_wait_ms"] >= 0
    hidden = result["tests"][1]
    assert hidden["hidden"] is True
    assert "stdin" not in hidden and "expected_stdout" not in hidden and "stdout" not in hidden


def test_wrong_answer_gets_partial_score_and_another_student_gets_404(stack, new_student):
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    assignment = create_assignment(instructor)
    student, other = new_student(), new_student()
    code = "n = input()\nprint(3)\n"  # right for the public test only

    submission_id = student.post(
        f"/api/assignments/{assignment['id']}/submissions", json={"code": code}
    ).json()["id"]
    _, result = statuses_until_final(student, submission_id)

    assert result["status"] == "graded"
    assert result["verdict"] == "wrong_answer"
    assert result["score"] == 50
    assert set(result["fail_tags"]) == {"wrong_answer", "partial"}
    assert other.get(f"/api/submissions/{submission_id}").status_code == 404
    assert instructor.get(f"/api/submissions/{submission_id}").status_code == 200


def test_result_post_with_a_wrong_token_is_refused_and_changes_nothing(stack, new_student):
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    assignment = create_assignment(instructor)
    student = new_student()
    submission_id = student.post(
        f"/api/assignments/{assignment['id']}/submissions", json={"code": SLOW_SUM}
    ).json()["id"]
    _, before = statuses_until_final(student, submission_id)
    forged = {"status": "graded", "score": 0, "verdict": "wrong_answer", "feedback": "forged"}

    for token in ("wrong", submission_token("not-the-server-secret", submission_id)):
        response = requests.post(
            f"{stack.api_url}/internal/submissions/{submission_id}/result",
            json=forged,
            headers={RESULT_TOKEN_HEADER: token},
            timeout=15,
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_token"

    after = student.get(f"/api/submissions/{submission_id}").json()
    assert after == before


def test_a_scoped_token_cannot_touch_another_submission(stack, new_student):
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    assignment = create_assignment(instructor)
    student = new_student()
    first, second = (
        student.post(
            f"/api/assignments/{assignment['id']}/submissions", json={"code": SLOW_SUM}
        ).json()["id"]
        for _ in range(2)
    )
    token_of_first = submission_token(stack.env["INTERNAL_RESULT_TOKEN"], first)

    response = requests.post(
        f"{stack.api_url}/internal/submissions/{second}/status",
        json={"status": "running"},
        headers={RESULT_TOKEN_HEADER: token_of_first},
        timeout=15,
    )

    assert response.status_code == 401
    for submission_id in (first, second):
        assert statuses_until_final(student, submission_id)[1]["status"] == "graded"


def test_bad_input_gets_clear_json_errors_and_nothing_is_stored(stack, new_student):
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    assignment = create_assignment(instructor)
    student = new_student()
    path = f"/api/assignments/{assignment['id']}/submissions"

    cases = [
        (
            student.post(path, data="{not json", headers={"Content-Type": "application/json"}),
            400,
            "malformed_json",
        ),
        (student.post(path, json={}), 400, "invalid_body"),
        (
            student.post(
                "/api/assignments/0123456789abcdef01234567/submissions", json={"code": "print(1)"}
            ),
            404,
            "not_found",
        ),
        (student.post(path, json={"code": "#" * (64 * 1024 + 1)}), 413, "code_too_large"),
        (student.post(path, json={"code": "x = 1\n" * 300_000}), 413, "request_entity_too_large"),
    ]

    for response, status, code in cases:
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()["error"]["code"] == code
    assert student.get("/api/submissions").json()["total"] == 0


def test_an_idle_keep_alive_connection_still_serves_the_next_request(stack):
    """A client that keeps its connection (a browser, a pool) and sends its next request a
    few seconds later gets an answer, not a connection closed under it: gunicorn's default
    closes idle connections after 2 s."""
    host, port = stack.api_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for pause in (0, 3):
            time.sleep(pause)
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200
    finally:
        connection.close()
