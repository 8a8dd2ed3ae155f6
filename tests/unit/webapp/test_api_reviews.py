"""A score the model weighs on is provisional: the student sees the tests' part only, until
the course's staff confirm or override the model's rubric score; the statistics then say
how far staff agreed with the model."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from tests.unit.webapp.conftest import graded_result
from webapp.models import Submission
from webapp.reviews import review_agreement

RUBRIC = "Explain the algorithm in a comment; name things clearly."


def _provisional(tests_score: float, rubric_score: float, **overrides: Any) -> dict[str, Any]:
    return graded_result(
        score=tests_score + rubric_score,
        tests_score=tests_score,
        rubric_score=rubric_score,
        score_state="provisional",
        metrics={"tests_score": tests_score, "rubric_score": rubric_score, "llm_detail": "x"},
        **overrides,
    )


@pytest.fixture
def rubric_heavy(create_assignment, instructor) -> dict[str, Any]:
    """Half the score from the rubric: above 0.3, so provisional."""
    return create_assignment(
        instructor, feedback={"llm": True, "rubric": RUBRIC, "rubric_weight": 0.5}
    )


@pytest.fixture
def provisional_submission(submit, internal_post, student, rubric_heavy) -> dict[str, Any]:
    submission = submit(student, rubric_heavy["id"]).get_json()
    stored = internal_post(submission["id"], "result", _provisional(30.0, 40.0))
    assert stored.status_code == 200, stored.get_json()
    return submission


def test_an_assignment_graded_by_its_rubric_alone_needs_no_tests(
    client, instructor, assignment_body
):
    alone = {"llm": True, "rubric": RUBRIC, "rubric_weight": 1.0}
    created = client.post(
        "/api/assignments",
        json=assignment_body(tests=[], feedback=alone),
        headers=instructor.headers,
    )
    refused = client.post(
        "/api/assignments",
        json=assignment_body(tests=[], feedback=alone | {"rubric_weight": 0.9}),
        headers=instructor.headers,
    )

    assert created.status_code == 201, created.get_json()
    assert created.get_json()["tests"] == []
    assert refused.status_code == 400
    assert refused.get_json()["error"]["details"]["errors"][0]["field"] == "tests"


def test_the_student_sees_the_tests_part_and_the_rest_pending(
    client, student, instructor, provisional_submission
):
    url = f"/api/submissions/{provisional_submission['id']}"

    mine = client.get(url, headers=student.headers).get_json()
    staff = client.get(url, headers=instructor.headers).get_json()

    assert (mine["score_state"], mine["tests_score"]) == ("provisional", 30.0)
    assert (mine["score"], mine["raw_score"], mine["rubric_score"]) == (None, None, None)
    assert "rubric_score" not in mine["metrics"] and "llm_detail" not in mine["metrics"]
    assert (staff["score"], staff["rubric_score"], staff["score_state"]) == (
        70.0,
        40.0,
        "provisional",
    )


def test_staff_confirm_the_model_and_the_score_becomes_final(
    client, student, instructor, provisional_submission, rubric_heavy
):
    sid = provisional_submission["id"]
    queue = client.get(f"/api/assignments/{rubric_heavy['id']}/reviews", headers=instructor.headers)

    reviewed = client.post(f"/api/submissions/{sid}/review", json={}, headers=instructor.headers)
    again = client.post(f"/api/submissions/{sid}/review", json={}, headers=instructor.headers)
    mine = client.get(f"/api/submissions/{sid}", headers=student.headers).get_json()

    assert [s["id"] for s in queue.get_json()["items"]] == [sid]
    assert reviewed.status_code == 200, reviewed.get_json()
    assert reviewed.get_json()["review"]["action"] == "confirmed"
    assert (mine["score"], mine["rubric_score"], mine["score_state"]) == (70.0, 40.0, "final")
    assert "review" not in mine
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "not_provisional")
    emptied = client.get(
        f"/api/assignments/{rubric_heavy['id']}/reviews", headers=instructor.headers
    )
    assert emptied.get_json()["items"] == []


def test_an_override_changes_the_score_and_the_agreement_figures(
    client, instructor, provisional_submission, rubric_heavy
):
    sid = provisional_submission["id"]

    too_high = client.post(
        f"/api/submissions/{sid}/review", json={"rubric_score": 50.5}, headers=instructor.headers
    )
    overridden = client.post(
        f"/api/submissions/{sid}/review",
        json={"rubric_score": 10.0, "note": "no explanation given"},
        headers=instructor.headers,
    )
    stats = client.get(f"/api/assignments/{rubric_heavy['id']}/stats", headers=instructor.headers)

    assert (too_high.status_code, too_high.get_json()["error"]["code"]) == (
        422,
        "rubric_score_too_high",
    )
    body = overridden.get_json()
    assert (body["score"], body["rubric_score"], body["review"]["action"]) == (
        40.0,
        10.0,
        "overridden",
    )
    assert body["review"]["model_rubric_score"] == 40.0
    agreement = stats.get_json()["review"]
    assert agreement == {
        "pending": 0,
        "reviewed": 1,
        "confirmed": 0,
        "overridden": 1,
        "confirmed_share": 0.0,
        "mean_change": -30.0,
        "mean_abs_change": 30.0,
    }


def test_only_the_courses_staff_review(
    client, student, make_instructor, provisional_submission, rubric_heavy
):
    sid = provisional_submission["id"]
    stranger = make_instructor()

    by_student = client.post(f"/api/submissions/{sid}/review", json={}, headers=student.headers)
    by_stranger = client.post(f"/api/submissions/{sid}/review", json={}, headers=stranger.headers)
    queue = client.get(f"/api/assignments/{rubric_heavy['id']}/reviews", headers=student.headers)

    assert by_student.status_code == 403
    assert by_stranger.status_code == 404
    assert queue.status_code == 403


def test_a_final_score_from_the_tests_needs_no_review(
    client, submit, internal_post, student, instructor, assignment
):
    submission = submit(student, assignment["id"]).get_json()
    internal_post(submission["id"], "result", graded_result())

    shown = client.get(f"/api/submissions/{submission['id']}", headers=student.headers).get_json()
    review = client.post(
        f"/api/submissions/{submission['id']}/review", json={}, headers=instructor.headers
    )

    assert (shown["score"], shown["score_state"]) == (33.3, "final")
    assert review.status_code == 409


def test_a_tag_can_only_be_linked_to_tests_the_assignment_has(client, instructor, assignment_body):
    feedback = {"llm": True, "tags": ["overflow"], "tag_tests": {"overflow": ["secret", "nope"]}}

    created = client.post(
        "/api/assignments", json=assignment_body(feedback=feedback), headers=instructor.headers
    )
    linked = client.post(
        "/api/assignments",
        json=assignment_body(feedback=feedback | {"tag_tests": {"overflow": ["secret"]}}),
        headers=instructor.headers,
    )
    renamed = client.patch(
        f"/api/assignments/{linked.get_json()['id']}",
        json={"tests": [{"name": "other", "stdin": "", "expected_stdout": ""}]},
        headers=instructor.headers,
    )

    assert created.status_code == 400
    assert "nope" in created.get_json()["error"]["details"]["errors"][0]["message"]
    assert linked.status_code == 201
    assert renamed.status_code == 400 and "secret" in renamed.get_json()["error"]["message"]


def test_the_agreement_figures_count_reviewed_submissions_only(app, database):
    """Unreviewed submissions hold `review: null` (a regrade puts it back to null): the
    figures are those of the reviewed ones."""
    assignment_id = ObjectId()
    reviews = [
        None,
        None,
        {"rubric_score": 40.0, "model_rubric_score": 40.0},
        {"rubric_score": 10.0, "model_rubric_score": 40.0},
    ]
    with app.app_context():
        for review in reviews:
            Submission(
                assignment_id=assignment_id,
                user_id=ObjectId(),
                language="python",
                code="print(1)\n",
                attempt=1,
                max_score=100.0,
                review=review,
            ).save()
        unreviewed = Submission.objects(assignment_id=assignment_id, review=None).count()
        agreement = review_agreement(assignment_id)

    assert unreviewed == 2
    assert (agreement.reviewed, agreement.confirmed, agreement.overridden) == (2, 1, 1)
    assert (agreement.mean_change, agreement.mean_abs_change) == (-15.0, 15.0)
