"""Due dates over the API: due_in_past, late windows and penalties, per-student extensions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from webapp.models import Assignment, Extension, Submission, utcnow


def _at(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat() + "Z"


def _code(response) -> str:
    return response.get_json()["error"]["code"]


LATE_WINDOW = {
    "due_at": _at(timedelta(minutes=-90)),
    "late_until": _at(timedelta(days=1)),
    "late_penalty": {"percent": 10, "per": "hour"},
    "allow_past_due": True,
}


@pytest.fixture
def late_window(create_assignment, instructor):
    """Due 90 minutes ago (two started hours: 20 % off), open a day more."""
    return create_assignment(instructor, **LATE_WINDOW)


def test_a_due_date_in_the_past_is_422_unless_allowed(client, instructor, assignment_body):
    body = assignment_body(due_at=_at(timedelta(minutes=-1)))
    refused = client.post("/api/assignments", json=body, headers=instructor.headers)
    assert refused.status_code == 422
    assert _code(refused) == "due_in_past"
    assert Assignment.objects.count() == 0

    allowed = client.post(
        "/api/assignments", json=body | {"allow_past_due": True}, headers=instructor.headers
    )
    assert allowed.status_code == 201
    assert "allow_past_due" not in allowed.get_json()


def test_deadlines_and_penalty_are_returned(late_window):
    assert late_window["late_until"].endswith("Z")
    assert late_window["late_penalty"] == {"percent": 10.0, "per": "hour"}
    assert late_window["counts"] == "best"


@pytest.mark.parametrize(
    "dates",
    [
        {"due_at": _at(timedelta(days=2)), "late_until": _at(timedelta(days=1))},
        {"late_until": _at(timedelta(days=1))},
        {"due_at": _at(timedelta(days=1)), "late_penalty": {"percent": 5, "per": "day"}},
    ],
)
def test_inconsistent_dates_are_422_invalid_deadline(client, instructor, assignment_body, dates):
    response = client.post(
        "/api/assignments", json=assignment_body(**dates), headers=instructor.headers
    )
    assert response.status_code == 422
    assert _code(response) == "invalid_deadline"


@pytest.mark.parametrize(
    "penalty",
    [
        {"percent": 0, "per": "hour"},
        {"percent": 101, "per": "hour"},
        {"percent": 10, "per": "week"},
        {"percent": 10, "per": "hour", "cap": 50},
    ],
)
def test_a_malformed_penalty_is_400(client, instructor, assignment_body, penalty):
    body = assignment_body(
        due_at=_at(timedelta(days=1)), late_until=_at(timedelta(days=2)), late_penalty=penalty
    )
    response = client.post("/api/assignments", json=body, headers=instructor.headers)
    assert response.status_code == 400
    assert _code(response) == "invalid_body"


def test_patch_checks_the_dates_it_changes(client, instructor, late_window):
    url = f"/api/assignments/{late_window['id']}"
    # The due date is already past: changing something else is fine.
    assert (
        client.patch(url, json={"title": "Renamed"}, headers=instructor.headers).status_code == 200
    )
    past = client.patch(url, json={"due_at": _at(timedelta(hours=-3))}, headers=instructor.headers)
    assert past.status_code == 422 and _code(past) == "due_in_past"
    allowed = client.patch(
        url,
        json={"due_at": _at(timedelta(hours=-3)), "allow_past_due": True},
        headers=instructor.headers,
    )
    assert allowed.status_code == 200
    orphan = client.patch(url, json={"late_until": None}, headers=instructor.headers)
    assert orphan.status_code == 422 and _code(orphan) == "invalid_deadline"
    cleared = client.patch(
        url, json={"late_until": None, "late_penalty": None}, headers=instructor.headers
    )
    assert cleared.status_code == 200
    assert cleared.get_json()["late_until"] is None and cleared.get_json()["late_penalty"] is None
    assert (
        client.patch(url, json={"counts": "last"}, headers=instructor.headers).get_json()["counts"]
        == "last"
    )


def test_a_late_submission_is_accepted_marked_late_and_penalised(
    submit, student, late_window, internal_post, result_body, client
):
    response = submit(student, late_window["id"])
    assert response.status_code == 202
    created = response.get_json()
    assert created["late"] is True and created["penalty_percent"] == 20.0
    assert created["score"] is None and created["raw_score"] is None

    stored = internal_post(created["id"], "result", result_body(score=80.0))
    assert stored.status_code == 200

    shown = client.get(f"/api/submissions/{created['id']}", headers=student.headers).get_json()
    assert (shown["score"], shown["raw_score"], shown["penalty"]) == (60.0, 80.0, 20.0)
    assert Submission.objects.get(id=created["id"]).score == 60.0


def test_the_penalty_never_takes_more_than_the_raw_score(
    submit, student, late_window, internal_post, result_body, client
):
    submission_id = submit(student, late_window["id"]).get_json()["id"]
    internal_post(submission_id, "result", result_body(score=5.0))
    shown = client.get(f"/api/submissions/{submission_id}", headers=student.headers).get_json()
    assert (shown["score"], shown["raw_score"], shown["penalty"]) == (0.0, 5.0, 5.0)


def test_an_on_time_submission_has_no_penalty(
    submit, student, assignment, internal_post, result_body, client
):
    created = submit(student, assignment["id"]).get_json()
    assert created["late"] is False and created["penalty_percent"] == 0.0
    internal_post(created["id"], "result", result_body())
    shown = client.get(f"/api/submissions/{created['id']}", headers=student.headers).get_json()
    assert (shown["score"], shown["raw_score"], shown["penalty"]) == (33.3, 33.3, 0.0)


def test_after_the_late_window_is_422_past_due(submit, student, create_assignment, instructor):
    closed = create_assignment(
        instructor,
        due_at=_at(timedelta(days=-2)),
        late_until=_at(timedelta(days=-1)),
        allow_past_due=True,
    )
    response = submit(student, closed["id"])
    assert response.status_code == 422
    assert _code(response) == "past_due"
    assert response.get_json()["error"]["details"]["late_until"] == closed["late_until"]
    assert Submission.objects.count() == 0


@pytest.fixture
def closed(create_assignment, instructor):
    """Due an hour ago, no late window, a penalty-free assignment."""
    return create_assignment(instructor, due_at=_at(timedelta(hours=-1)), allow_past_due=True)


def _extension_url(assignment: dict, user_id: str) -> str:
    return f"/api/assignments/{assignment['id']}/extensions/{user_id}"


def test_an_extension_lets_its_student_submit_on_time(
    client, submit, instructor, student, register, closed
):
    assert submit(student, closed["id"]).status_code == 422
    due = _at(timedelta(days=1))
    put = client.put(
        _extension_url(closed, student.id), json={"due_at": due}, headers=instructor.headers
    )
    assert put.status_code == 200
    body = put.get_json()
    assert body["user_id"] == student.id and body["email"] == student.email
    assert body["due_at"] == due
    assert body["late_until"] is None and body["granted_by"] == instructor.id

    made = submit(student, closed["id"])
    assert made.status_code == 202 and made.get_json()["late"] is False
    # Only that student.
    assert submit(register(), closed["id"]).status_code == 422

    listed = client.get(f"/api/assignments/{closed['id']}/extensions", headers=instructor.headers)
    assert listed.status_code == 200
    assert [e["user_id"] for e in listed.get_json()["items"]] == [student.id]
    assert listed.get_json()["total"] == 1

    assert (
        client.delete(_extension_url(closed, student.id), headers=instructor.headers).status_code
        == 204
    )
    assert Extension.objects.count() == 0
    assert submit(student, closed["id"]).status_code == 422
    again = client.delete(_extension_url(closed, student.id), headers=instructor.headers)
    assert again.status_code == 404


def test_a_second_put_replaces_the_extension(client, instructor, student, closed):
    url = _extension_url(closed, student.id)
    client.put(url, json={"due_at": _at(timedelta(days=1))}, headers=instructor.headers)
    later = client.put(
        url,
        json={"due_at": _at(timedelta(days=2)), "late_until": _at(timedelta(days=3))},
        headers=instructor.headers,
    )
    assert later.status_code == 200 and later.get_json()["late_until"] is not None
    assert Extension.objects.count() == 1


def test_the_late_penalty_counts_from_the_extended_due_date(
    client, submit, instructor, student, create_assignment
):
    assignment = create_assignment(
        instructor,
        due_at=_at(timedelta(hours=-5)),
        late_until=_at(timedelta(days=1)),
        late_penalty={"percent": 10, "per": "hour"},
        allow_past_due=True,
    )
    client.put(
        _extension_url(assignment, student.id),
        json={"due_at": _at(timedelta(minutes=-90))},
        headers=instructor.headers,
    )
    made = submit(student, assignment["id"]).get_json()
    assert made["late"] is True and made["penalty_percent"] == 20.0


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"due_at": "2031-01-02T00:00:00Z", "late_until": "2031-01-01T00:00:00Z"}, 400),
        ({"late_until": "2031-01-01T00:00:00Z"}, 400),
        ({"due_at": "2031-01-02T00:00:00Z", "extra": 1}, 400),
    ],
)
def test_a_bad_extension_body_is_400(client, instructor, student, closed, body, status):
    response = client.put(_extension_url(closed, student.id), json=body, headers=instructor.headers)
    assert response.status_code == status
    assert Extension.objects.count() == 0


def test_an_extension_for_no_account_or_no_due_date_is_refused(
    client, instructor, student, assignment
):
    body = {"due_at": _at(timedelta(days=1))}
    unknown = client.put(
        _extension_url(assignment, "0" * 24), json=body, headers=instructor.headers
    )
    assert unknown.status_code == 404
    no_due = client.put(
        _extension_url(assignment, student.id), json=body, headers=instructor.headers
    )
    assert no_due.status_code == 422 and _code(no_due) == "invalid_deadline"


def test_only_staff_manage_extensions(
    client, student, make_instructor, closed, create_assignment, instructor
):
    body = {"due_at": _at(timedelta(days=1))}
    url = _extension_url(closed, student.id)
    # A student sees the assignment: 403. Their own extension is not theirs to grant.
    assert client.put(url, json=body, headers=student.headers).status_code == 403
    assert (
        client.get(
            f"/api/assignments/{closed['id']}/extensions", headers=student.headers
        ).status_code
        == 403
    )
    assert client.delete(url, headers=student.headers).status_code == 403
    # Another instructor's draft is invisible: 404.
    draft = create_assignment(instructor, published=False, due_at=_at(timedelta(days=1)))
    other = make_instructor()
    assert (
        client.put(_extension_url(draft, student.id), json=body, headers=other.headers).status_code
        == 404
    )
    assert (
        client.get(f"/api/assignments/{draft['id']}/extensions", headers=other.headers).status_code
        == 404
    )
    assert Extension.objects.count() == 0
