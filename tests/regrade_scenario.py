"""The issue's regrade scenario against a running stack, over its public and internal HTTP
APIs: N submissions graded against a broken hidden test, the reference solution reporting
that test, the test fixed, one bulk regrade, every score updated with the old result in
history, and a late result of the earlier round refused.

Shared by tests/integration/test_regrade.py (a small N) and bench/regrade.py (200)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import requests

from cloudemy_dev.demo_data import DEMO_INSTRUCTOR
from cloudemy_dev.devstack import DevStack
from runner_image.contract import RESULT_TOKEN_HEADER, submission_token
from tests.integration.conftest import Api, register_student, signed_in

SUM = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()[1:]))\n"
SMALL = {"name": "small", "stdin": "2\n1 2\n", "expected_stdout": "3\n"}
BROKEN = {"name": "hidden big", "stdin": "2\n100 200\n", "expected_stdout": "301\n", "hidden": True}
FIXED = BROKEN | {"expected_stdout": "300\n"}
# Submissions per student: under the per-account submit limit (RATE_LIMIT_SUBMIT, 30/minute).
PER_STUDENT = 25
FINAL = ("graded", "failed", "error")
BULK_REQUEST_TIMEOUT = 120  # seconds; gunicorn's own worker timeout is 60


@dataclass
class Timings:
    graded_seconds: float  # N first gradings (and the reference), from the first submit
    regraded_seconds: float  # N regrades (and the reference), from the bulk request
    bulk_request_seconds: float  # the bulk regrade request itself (queues N rounds)


def _all_submissions(instructor: Api, assignment_id: str) -> list[dict[str, Any]]:
    """Every submission of the assignment, as its instructor sees it (reference included)."""
    items: list[dict[str, Any]] = []
    while True:
        page = instructor.get(
            "/api/submissions",
            params={"assignment_id": assignment_id, "limit": 100, "offset": len(items)},
        )
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        if len(items) >= body["total"] or not body["items"]:
            return items


def _wait_all_final(
    instructor: Api, assignment_id: str, count: int, grading_round: int, timeout: float
) -> list[dict[str, Any]]:
    """Polls until `count` submissions (the reference included) are final in `grading_round`."""
    deadline = time.monotonic() + timeout
    while True:
        items = _all_submissions(instructor, assignment_id)
        done = [s for s in items if s["round"] == grading_round and s["status"] in FINAL]
        if len(done) == count:
            return items
        if time.monotonic() > deadline:
            states = sorted({(s["round"], s["status"]) for s in items})
            raise AssertionError(
                f"{len(done)} of {count} final in round {grading_round} after {timeout} s: {states}"
            )
        time.sleep(0.25)


def run_regrade_scenario(stack: DevStack, count: int, timeout: float) -> Timings:
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    created = instructor.post(
        "/api/assignments",
        json={
            "title": "Sum with a broken hidden test",
            "language": "python",
            "tests": [SMALL, BROKEN],
            "feedback": {"llm": False},
        },
    )
    assert created.status_code == 201, created.text
    assignment_id = created.json()["id"]
    reference_path = f"/api/assignments/{assignment_id}/reference"

    started = time.monotonic()
    assert instructor.request("PUT", reference_path, json={"code": SUM}).status_code == 202
    students = [register_student(stack) for _ in range(math.ceil(count / PER_STUDENT))]
    submitted: dict[str, Api] = {}
    for index in range(count):
        student = students[index // PER_STUDENT]
        answer = student.post(f"/api/assignments/{assignment_id}/submissions", json={"code": SUM})
        assert answer.status_code == 202, answer.text
        submitted[answer.json()["id"]] = student
    items = _wait_all_final(instructor, assignment_id, count + 1, 0, timeout)
    graded_seconds = time.monotonic() - started

    first = {s["id"]: s for s in items if not s["is_reference"]}
    assert set(first) == set(submitted)
    assert {(s["status"], s["score"]) for s in first.values()} == {("graded", 50)}
    reference = instructor.get(reference_path).json()
    assert reference["broken_tests"] == ["hidden big"], reference
    assert reference["up_to_date"] is True
    regrade_path = f"/api/assignments/{assignment_id}/regrade"
    refused = instructor.post(regrade_path, json={"scope": "all"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["details"]["broken_tests"] == ["hidden big"]

    fixed = instructor.request(
        "PATCH", f"/api/assignments/{assignment_id}", json={"tests": [SMALL, FIXED]}
    )
    assert fixed.status_code == 200, fixed.text
    assert instructor.get(reference_path).json()["up_to_date"] is False

    started = time.monotonic()
    # One request queues every round: it takes longer than a single call as classes grow.
    bulk = instructor.session.post(
        f"{stack.api_url}{regrade_path}", json={"scope": "all"}, timeout=BULK_REQUEST_TIMEOUT
    )
    bulk_request_seconds = time.monotonic() - started
    assert bulk.status_code == 202, bulk.text
    assert (bulk.json()["queued"], bulk.json()["skipped_in_flight"]) == (count, 0)
    assert bulk.json()["reference"]["submission"]["round"] == 1  # regraded first
    items = _wait_all_final(instructor, assignment_id, count + 1, 1, timeout)
    regraded_seconds = time.monotonic() - started

    for submission in (s for s in items if not s["is_reference"]):
        before = first[submission["id"]]
        assert (submission["status"], submission["score"]) == ("graded", 100), submission
        assert [t["verdict"] for t in submission["tests"]] == ["accepted", "accepted"]
        assert submission["attempt"] == before["attempt"]  # no attempt used
        assert submission["job_name"] == f"runner-{submission['id']}-r1"
        (old,) = submission["history"]
        assert (old["round"], old["status"], old["score"]) == (0, "graded", 50)
        assert old["finished_at"] == before["finished_at"]
        assert [t["verdict"] for t in old["tests"]] == ["accepted", "wrong_answer"]
    assert instructor.get(reference_path).json()["broken_tests"] == []

    # A late result of round 0, with round 0's token, cannot overwrite round 1's.
    late_id = next(iter(submitted))
    late = requests.post(
        f"{stack.api_url}/internal/submissions/{late_id}/result",
        json={"status": "failed", "verdict": "wrong_answer", "score": 0, "round": 0},
        headers={
            RESULT_TOKEN_HEADER: submission_token(stack.env["INTERNAL_RESULT_TOKEN"], late_id)
        },
        timeout=15,
    )
    assert late.status_code == 409, late.text
    assert late.json()["error"]["code"] == "stale_round"
    seen = submitted[late_id].get(f"/api/submissions/{late_id}").json()
    assert (seen["round"], seen["score"], seen["status"]) == (1, 100, "graded")
    assert seen["history"][0]["score"] == 50 and "instructor_tags" not in seen["history"][0]
    return Timings(graded_seconds, regraded_seconds, bulk_request_seconds)
