"""The event stream over the real chain: the client follows a submission from the moment
it is queued until it is graded, pushed by the lifecycle through Redis pub/sub from the
runner's callbacks, with no polling."""

from __future__ import annotations

import json

from cloudemy_dev.demo_data import DEMO_INSTRUCTOR
from tests.integration.conftest import signed_in
from tests.integration.test_pipeline import SLOW_SUM, create_assignment


def _follow(student, submission_id: str) -> list[tuple[str, dict]]:
    events = []
    with student.session.get(
        f"{student.base_url}/api/submissions/{submission_id}/events", stream=True, timeout=90
    ) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
    return events


def test_a_student_follows_a_submission_to_its_grade_without_polling(stack, new_student):
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    assignment = create_assignment(instructor)
    student = new_student()
    submitted = student.post(
        f"/api/assignments/{assignment['id']}/submissions", json={"code": SLOW_SUM}
    )
    assert submitted.status_code == 202, submitted.text

    events = _follow(student, submitted.json()["id"])

    statuses = [data["status"] for name, data in events if name == "status"]
    assert statuses[-1] == "graded"
    assert "running" in statuses  # the runner sleeps 0.4 s per test: seen while it runs
    order = ["queued", "scheduled", "running", "graded"]
    assert [order.index(s) for s in statuses] == sorted(order.index(s) for s in statuses)
    final = [data for name, data in events if name == "status"][-1]
    assert final["score"] == 100
    assert events[-1] == ("end", {"status": "graded"})
