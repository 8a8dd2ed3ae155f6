"""Two courses, each with its own people: an owner, a TA, students who joined by code or
were enrolled by roster CSV before they had an account. Every cross-course and cross-role
call gets 404 (or 403 where the caller can already see the object)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.unit.webapp.conftest import Account, _assignment_body, graded_result
from webapp.courses import migrate_assignments_into_courses
from webapp.models import Assignment, Course, Membership, Submission


def _ok(response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _code(response) -> str:
    return response.get_json()["error"]["code"]


@dataclass
class World:
    owner_a: Account
    owner_b: Account
    ta: Account
    joined_a: Account  # by join code
    rostered_a: Account  # by roster CSV, registered afterwards
    student_b: Account
    course_a: dict
    course_b: dict
    assignment_a: dict
    draft_a: dict
    assignment_b: dict


@pytest.fixture
def world(client: FlaskClient, make_instructor, register_outsider) -> World:
    owner_a, owner_b = make_instructor(), make_instructor()
    course_a = _ok(client.post("/api/courses", json={"title": "A"}, headers=owner_a.headers), 201)
    course_b = _ok(client.post("/api/courses", json={"title": "B"}, headers=owner_b.headers), 201)

    ta = register_outsider(name="Tess TA")
    _ok(
        client.post(
            f"/api/courses/{course_a['id']}/staff",
            json={"email": ta.email, "role": "ta"},
            headers=owner_a.headers,
        )
    )
    joined_a = register_outsider(name="Jo Joined")
    _ok(
        client.post(
            "/api/courses/join",
            json={"join_code": course_a["join_code"].lower()},
            headers=joined_a.headers,
        )
    )
    roster = "Email,Name\nrosie@example.org,Rosie Roster\n"
    enrolled = _ok(
        client.post(
            f"/api/courses/{course_a['id']}/roster", json={"csv": roster}, headers=ta.headers
        )
    )
    assert enrolled == {"enrolled": [], "pending": ["rosie@example.org"], "already": []}
    rostered_a = register_outsider(email="rosie@example.org", name="Rosie Roster")
    student_b = register_outsider(name="Bo B")
    _ok(
        client.post(
            "/api/courses/join",
            json={"join_code": course_b["join_code"]},
            headers=student_b.headers,
        )
    )

    def post(owner: Account, course: dict, **overrides: Any) -> dict:
        body = _assignment_body(course_id=course["id"], **overrides)
        return _ok(client.post("/api/assignments", json=body, headers=owner.headers), 201)

    return World(
        owner_a,
        owner_b,
        ta,
        joined_a,
        rostered_a,
        student_b,
        course_a,
        course_b,
        post(owner_a, course_a, title="A1"),
        post(owner_a, course_a, title="A draft", published=False),
        post(owner_b, course_b, title="B1"),
    )


def _titles(client: FlaskClient, who: Account) -> set[str]:
    return {a["title"] for a in client.get("/api/assignments", headers=who.headers).json["items"]}


def test_each_role_lists_exactly_its_courses_assignments(client, world: World):
    assert _titles(client, world.joined_a) == {"A1"}
    assert _titles(client, world.rostered_a) == {"A1"}
    assert _titles(client, world.student_b) == {"B1"}
    assert _titles(client, world.ta) == {"A1", "A draft"}
    assert _titles(client, world.owner_a) == {"A1", "A draft"}
    assert _titles(client, world.owner_b) == {"B1"}


@pytest.mark.parametrize("who", ["student_b", "owner_b"])
def test_another_courses_people_get_404_for_everything_of_course_a(
    client, world: World, submit, who: str
):
    caller: Account = getattr(world, who)
    a_id, course_id = world.assignment_a["id"], world.course_a["id"]
    submission = _ok(submit(world.joined_a, a_id), 202)

    calls = [
        client.get(f"/api/assignments/{a_id}", headers=caller.headers),
        client.patch(f"/api/assignments/{a_id}", json={"title": "x"}, headers=caller.headers),
        client.post(
            f"/api/assignments/{a_id}/submissions", json={"code": "x"}, headers=caller.headers
        ),
        client.get(f"/api/submissions/{submission['id']}", headers=caller.headers),
        client.get(f"/api/courses/{course_id}", headers=caller.headers),
        client.get(f"/api/courses/{course_id}/students", headers=caller.headers),
        client.post(f"/api/courses/{course_id}/join-code", headers=caller.headers),
        client.post(
            "/api/assignments",
            json=_assignment_body(course_id=course_id),
            headers=caller.headers,
        ),
    ]

    assert [r.status_code for r in calls] == [404] * len(calls)


def test_a_student_never_sees_a_draft_of_their_own_course(client, world: World):
    response = client.get(f"/api/assignments/{world.draft_a['id']}", headers=world.joined_a.headers)
    assert response.status_code == 404


def test_a_ta_reads_everything_but_cannot_edit_tests_or_staff(client, world: World, submit):
    a_id, course_id = world.assignment_a["id"], world.course_a["id"]
    submission = _ok(submit(world.joined_a, a_id), 202)

    hidden = client.get(f"/api/assignments/{a_id}", headers=world.ta.headers).json["tests"][1]
    staff_view = _ok(client.get(f"/api/submissions/{submission['id']}", headers=world.ta.headers))
    listed = client.get(f"/api/submissions?assignment_id={a_id}", headers=world.ta.headers).json
    edit = client.patch(
        f"/api/assignments/{a_id}", json={"tests": hidden and [hidden]}, headers=world.ta.headers
    )
    add_staff = client.post(
        f"/api/courses/{course_id}/staff",
        json={"email": world.joined_a.email, "role": "ta"},
        headers=world.ta.headers,
    )

    assert hidden["stdin"] == "40 2\n"
    assert staff_view["student"] == {
        "id": world.joined_a.id,
        "name": "Jo Joined",
        "email": world.joined_a.email,
    }
    assert [s["student"]["email"] for s in listed["items"]] == [world.joined_a.email]
    assert (edit.status_code, _code(edit)) == (403, "forbidden")
    assert (add_staff.status_code, _code(add_staff)) == (403, "forbidden")


def test_a_student_sees_their_course_but_not_its_roster_or_join_code(client, world: World):
    course_id = world.course_a["id"]

    course = _ok(client.get(f"/api/courses/{course_id}", headers=world.joined_a.headers))
    roster = client.get(f"/api/courses/{course_id}/students", headers=world.joined_a.headers)
    rotate = client.post(f"/api/courses/{course_id}/join-code", headers=world.joined_a.headers)

    assert course["role"] == "student" and "join_code" not in course
    assert roster.status_code == 403 and rotate.status_code == 403


def test_a_student_never_sees_who_else_submitted(client, world: World, submit):
    submission = _ok(submit(world.joined_a, world.assignment_a["id"]), 202)
    shown = _ok(client.get(f"/api/submissions/{submission['id']}", headers=world.joined_a.headers))
    assert "student" not in shown and "instructor_tags" not in shown
    other = client.get(f"/api/submissions/{submission['id']}", headers=world.rostered_a.headers)
    assert other.status_code == 404


def test_the_roster_lists_students_with_standing_pending_emails_and_staff(
    client, world: World, submit
):
    course_id = world.course_a["id"]
    _ok(submit(world.joined_a, world.assignment_a["id"]), 202)
    _ok(
        client.post(
            f"/api/courses/{course_id}/students",
            json={"emails": ["later@example.org", world.joined_a.email]},
            headers=world.owner_a.headers,
        )
    )

    roster = _ok(client.get(f"/api/courses/{course_id}/students", headers=world.ta.headers))

    standing = {entry["student"]["email"]: entry["standing"] for entry in roster["students"]}
    assert set(standing) == {world.joined_a.email, world.rostered_a.email}
    assert standing[world.joined_a.email]["submissions"] == 1
    assert standing[world.joined_a.email]["submitted"] == 1
    assert standing[world.rostered_a.email]["submitted"] == 0
    assert standing[world.rostered_a.email]["assignments"] == 2
    assert roster["pending"] == ["later@example.org"]
    assert {(m["user"]["email"], m["role"]) for m in roster["staff"]} == {
        (world.owner_a.email, "instructor"),
        (world.ta.email, "ta"),
    }


def test_a_rotated_join_code_stops_working(client, world: World, register_outsider):
    old = world.course_a["join_code"]
    rotated = _ok(
        client.post(f"/api/courses/{world.course_a['id']}/join-code", headers=world.ta.headers)
    )
    newcomer = register_outsider()

    refused = client.post("/api/courses/join", json={"join_code": old}, headers=newcomer.headers)
    joined = client.post(
        "/api/courses/join", json={"join_code": rotated["join_code"]}, headers=newcomer.headers
    )

    assert rotated["join_code"] != old
    assert refused.status_code == 404
    assert joined.status_code == 200 and joined.get_json()["role"] == "student"


def test_joining_keeps_a_staff_members_role(client, world: World):
    joined = client.post(
        "/api/courses/join",
        json={"join_code": world.course_a["join_code"]},
        headers=world.ta.headers,
    )
    assert joined.get_json()["role"] == "ta"


def test_a_roster_with_a_bad_line_enrols_nobody(client, world: World):
    course_id = world.course_a["id"]
    roster = "email\nok@example.org\nnot-an-address\n"

    response = client.post(
        f"/api/courses/{course_id}/roster", json={"csv": roster}, headers=world.owner_a.headers
    )

    assert (response.status_code, _code(response)) == (400, "invalid_roster")
    assert response.get_json()["error"]["details"]["errors"] == [
        {"line": 3, "message": "not an e-mail address: 'not-an-address'"}
    ]
    roster_now = client.get(f"/api/courses/{course_id}/students", headers=world.owner_a.headers)
    assert roster_now.get_json()["pending"] == []


def test_a_ta_cannot_post_assignments_and_the_owner_cannot_be_removed(client, world: World):
    course_id = world.course_a["id"]
    posted = client.post(
        "/api/assignments",
        json=_assignment_body(course_id=course_id),
        headers=world.ta.headers,
    )
    removal = client.delete(
        f"/api/courses/{course_id}/staff/{world.owner_a.id}", headers=world.owner_a.headers
    )
    removed_ta = client.delete(
        f"/api/courses/{course_id}/staff/{world.ta.id}", headers=world.owner_a.headers
    )

    assert posted.status_code == 403
    assert (removal.status_code, _code(removal)) == (409, "course_owner")
    assert removed_ta.status_code == 204
    gone = client.get(f"/api/assignments/{world.assignment_a['id']}", headers=world.ta.headers)
    assert gone.status_code == 404


def test_an_unenrolled_student_loses_access_but_keeps_submissions(client, world: World, submit):
    a_id, course_id = world.assignment_a["id"], world.course_a["id"]
    _ok(submit(world.joined_a, a_id), 202)

    response = client.delete(
        f"/api/courses/{course_id}/students/{world.joined_a.id}", headers=world.ta.headers
    )

    assert response.status_code == 204
    assert client.get(f"/api/assignments/{a_id}", headers=world.joined_a.headers).status_code == 404
    assert Submission.objects(assignment_id=a_id).count() == 1


def test_assignments_without_a_course_go_to_the_instructors_default_course(
    client, instructor, create_assignment
):
    first = create_assignment(instructor)
    second = create_assignment(instructor)

    courses = client.get("/api/courses", headers=instructor.headers).json["items"]

    assert first["course_id"] == second["course_id"] == courses[0]["id"]
    assert len(courses) == 1 and courses[0]["role"] == "instructor"


def test_a_student_cannot_create_a_course(client, student):
    response = client.post("/api/courses", json={"title": "Mine"}, headers=student.headers)
    assert response.status_code == 403


def test_migration_puts_old_assignments_in_courses_and_enrols_who_submitted(
    app: Flask, client: FlaskClient, instructor, register_outsider, assignment_body
):
    submitter, bystander = register_outsider(), register_outsider()
    with app.app_context():
        old = Assignment(owner_id=instructor.id, title="Old", language="python")
        old.save()
        Submission(
            assignment_id=old.id,
            user_id=submitter.id,
            language="python",
            code="x",
            attempt=1,
            max_score=100,
        ).save()

        first = migrate_assignments_into_courses()
        second = migrate_assignments_into_courses()

        course = Course.objects.get(owner_id=instructor.id, is_default=True)
        assert Assignment.objects.get(id=old.id).course_id == course.id
        assert Membership.objects(course_id=course.id, role="student").count() == 1
    assert (first.assignments, first.courses_created, first.students_enrolled) == (1, 1, 1)
    assert (second.assignments, second.courses_created, second.students_enrolled) == (0, 0, 0)
    seen = client.get(f"/api/assignments/{old.id}", headers=submitter.headers)
    assert seen.status_code == 200
    unseen = client.get(f"/api/assignments/{old.id}", headers=bystander.headers)
    assert unseen.status_code == 404


@pytest.mark.parametrize(
    ("csv_text", "problem"),
    [
        ('email\n"unterminated\n', "not CSV"),
        ("a\rb@\r\n", "not an e-mail address"),
    ],
)
def test_a_roster_that_is_not_csv_is_a_400_naming_the_line(client, world: World, csv_text, problem):
    response = client.post(
        f"/api/courses/{world.course_a['id']}/roster",
        json={"csv": csv_text},
        headers=world.owner_a.headers,
    )

    assert (response.status_code, _code(response)) == (400, "invalid_roster")
    assert problem in response.get_json()["error"]["details"]["errors"][0]["message"]


def test_the_course_gradebook_has_one_row_per_student_and_defuses_formulas(
    client, world: World, submit, internal_post, register_outsider
):
    course_id = world.course_a["id"]
    formula = register_outsider(name='=HYPERLINK("http://evil")')
    _ok(
        client.post(
            "/api/courses/join",
            json={"join_code": world.course_a["join_code"]},
            headers=formula.headers,
        )
    )
    for score in (40.0, 90.0):
        submission = _ok(submit(world.joined_a, world.assignment_a["id"]), 202)
        internal_post(submission["id"], "result", graded_result(score=score))

    response = client.get(f"/api/courses/{course_id}/gradebook.csv", headers=world.ta.headers)
    refused = client.get(f"/api/courses/{course_id}/gradebook.csv", headers=world.joined_a.headers)

    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    header, body = rows[0], rows[1:]
    assert header[:3] == ["student_id", "name", "email"] and header[-2:] == ["total", "total_max"]
    assert [h.startswith("A1") for h in header[3:5]] == [True, False]
    by_email = {row[2]: row for row in body}
    assert set(by_email) == {world.joined_a.email, world.rostered_a.email, formula.email}
    assert float(by_email[world.joined_a.email][3]) == 90.0  # the best counts by default
    assert by_email[world.rostered_a.email][3] == ""  # nothing judged
    assert by_email[formula.email][1].startswith("'=")
    assert refused.status_code == 403
