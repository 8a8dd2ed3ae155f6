"""Assignments: instructors write them, students read the published ones without secrets."""

from __future__ import annotations

from datetime import datetime
from unittest.mock import patch

import pytest

from runner_image.contract import FeedbackSettings
from webapp.models import Assignment


def _error_code(response) -> str:
    return response.get_json()["error"]["code"]


def _fields(response) -> list[str]:
    return [e["field"] for e in response.get_json()["error"]["details"]["errors"]]


# --- create -------------------------------------------------------------------------------


def test_instructor_creates_an_assignment_with_defaults(client, instructor, assignment_body):
    body = assignment_body()
    del body["feedback"]

    response = client.post("/api/assignments", json=body, headers=instructor.headers)

    assert response.status_code == 201
    created = response.get_json()
    assert created["owner_id"] == instructor.id
    assert created["title"] == "Sum two numbers"
    assert created["time_limit_ms"] == 2000
    assert created["memory_limit_mb"] == 256
    assert created["max_score"] == 100
    assert created["max_attempts"] is None
    assert created["due_at"] is None
    assert created["published"] is True
    assert created["feedback"] == {
        "llm": True,
        "rubric": None,
        "rubric_weight": 0.0,
        "tags": [],
        "tag_tests": {},
    }
    public, secret = created["tests"]
    assert public["hidden"] is False and public["weight"] == 1 and public["compare"] == "lines"
    # The owner sees hidden tests in full.
    assert secret["stdin"] == "40 2\n" and secret["expected_stdout"] == "42\n"
    stored = Assignment.objects.get(id=created["id"])
    assert [t.name for t in stored.test_cases] == ["public", "secret"]
    assert stored.feedback_settings == FeedbackSettings()


def test_due_at_with_an_offset_is_stored_as_utc(client, instructor, assignment_body):
    body = assignment_body(due_at="2031-01-01T12:00:00+02:00")

    response = client.post("/api/assignments", json=body, headers=instructor.headers)

    assert response.status_code == 201
    assert response.get_json()["due_at"] == "2031-01-01T10:00:00Z"


def test_student_cannot_create_an_assignment(client, student, assignment_body):
    response = client.post("/api/assignments", json=assignment_body(), headers=student.headers)

    assert response.status_code == 403
    assert _error_code(response) == "forbidden"
    assert Assignment.objects.count() == 0


def test_anonymous_cannot_create_an_assignment(client, assignment_body):
    response = client.post("/api/assignments", json=assignment_body())

    assert response.status_code == 401
    assert Assignment.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"tests": []}, "tests"),
        ({"tests": None}, "tests"),
        ({"feedback": {"llm": True, "rubric_weight": 1.5}}, "feedback.rubric_weight"),
        ({"time_limit_ms": 10}, "time_limit_ms"),
        ({"max_score": 0}, "max_score"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"title": "   "}, "title"),
        ({"tests": [{"name": "t", "compare": "fuzzy"}]}, "tests.0.compare"),
        ({"tests": [{"name": "t", "weight": 0}]}, "tests.0.weight"),
        ({"color": "blue"}, "color"),
    ],
)
def test_invalid_assignment_is_400(client, instructor, assignment_body, overrides, field):
    response = client.post(
        "/api/assignments", json=assignment_body(**overrides), headers=instructor.headers
    )

    assert response.status_code == 400
    assert _error_code(response) == "invalid_body"
    assert field in _fields(response)
    assert Assignment.objects.count() == 0


def test_missing_tests_is_400(client, instructor, assignment_body):
    body = assignment_body()
    del body["tests"]

    response = client.post("/api/assignments", json=body, headers=instructor.headers)

    assert response.status_code == 400
    assert "tests" in _fields(response)


def test_duplicate_test_names_are_400(client, instructor, assignment_body):
    tests = [{"name": "same", "stdin": "1"}, {"name": "same", "stdin": "2"}]

    response = client.post(
        "/api/assignments", json=assignment_body(tests=tests), headers=instructor.headers
    )

    assert response.status_code == 400
    assert _error_code(response) == "invalid_body"
    assert "unique" in response.get_data(as_text=True)
    assert Assignment.objects.count() == 0


def test_unknown_language_is_422_unsupported_language(client, instructor, assignment_body):
    response = client.post(
        "/api/assignments", json=assignment_body(language="cobol"), headers=instructor.headers
    )

    assert response.status_code == 422
    assert _error_code(response) == "unsupported_language"
    assert Assignment.objects.count() == 0


def test_feedback_tags_round_trip(client, instructor, student, create_assignment):
    feedback = {"llm": True, "rubric": "Name things.", "tags": ["off_by_one", "naming"]}

    created = create_assignment(instructor, feedback=feedback)

    assert created["feedback"]["tags"] == ["off_by_one", "naming"]
    url = f"/api/assignments/{created['id']}"
    assert client.get(url, headers=instructor.headers).json["feedback"] == {
        "llm": True,
        "rubric": "Name things.",
        "rubric_weight": 0.0,
        "tags": ["off_by_one", "naming"],
        "tag_tests": {},
    }
    # Students see the tags (not the rubric); the stored settings keep them for the runner.
    assert client.get(url, headers=student.headers).json["feedback"]["tags"] == [
        "off_by_one",
        "naming",
    ]
    stored = Assignment.objects.get(id=created["id"])
    assert stored.feedback_settings.tags == ["off_by_one", "naming"]

    patched = client.patch(
        url, json={"feedback": {"tags": ["recursion"]}}, headers=instructor.headers
    )

    assert patched.status_code == 200
    assert patched.get_json()["feedback"]["tags"] == ["recursion"]
    assert client.get(url, headers=instructor.headers).json["feedback"]["tags"] == ["recursion"]


@pytest.mark.parametrize("key", ["tag", "weight", "model"])
def test_unknown_feedback_keys_are_still_400(client, instructor, assignment, assignment_body, key):
    feedback = {"llm": True, "tags": [], key: "x"}

    created = client.post(
        "/api/assignments", json=assignment_body(feedback=feedback), headers=instructor.headers
    )
    patched = client.patch(
        f"/api/assignments/{assignment['id']}",
        json={"feedback": feedback},
        headers=instructor.headers,
    )

    for response in (created, patched):
        assert response.status_code == 400
        assert _error_code(response) == "invalid_body"
        assert f"feedback.{key}" in _fields(response)
    assert Assignment.objects.count() == 1
    assert Assignment.objects.get(id=assignment["id"]).feedback_settings.tags == []


# --- read ---------------------------------------------------------------------------------


def test_students_list_only_published_assignments(client, instructor, student, create_assignment):
    published = create_assignment(instructor, title="Open")
    create_assignment(instructor, title="Draft", published=False)

    response = client.get("/api/assignments", headers=student.headers)

    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 1
    assert [a["id"] for a in body["items"]] == [published["id"]]


def test_instructors_list_their_courses_assignments_drafts_included_and_nobody_elses(
    client, make_instructor, create_assignment
):
    owner, other = make_instructor(), make_instructor()
    create_assignment(owner, title="Mine, draft", published=False)
    create_assignment(owner, title="Mine, published")
    create_assignment(other, title="Theirs, draft", published=False)
    create_assignment(other, title="Theirs, published")

    titles = {
        a["title"] for a in client.get("/api/assignments", headers=owner.headers).json["items"]
    }

    assert titles == {"Mine, draft", "Mine, published"}


def test_student_cannot_get_an_unpublished_assignment(
    client, instructor, student, create_assignment
):
    draft = create_assignment(instructor, published=False)

    response = client.get(f"/api/assignments/{draft['id']}", headers=student.headers)

    assert response.status_code == 404
    assert _error_code(response) == "not_found"


@pytest.mark.parametrize("bad_id", ["nope", "0" * 24, "65a000000000000000000000"])
def test_unknown_or_malformed_assignment_id_is_404(client, student, bad_id):
    response = client.get(f"/api/assignments/{bad_id}", headers=student.headers)

    assert response.status_code == 404
    assert _error_code(response) == "not_found"


def test_student_never_sees_hidden_test_data_nor_the_rubric(client, student, assignment):
    response = client.get(f"/api/assignments/{assignment['id']}", headers=student.headers)

    assert response.status_code == 200
    body = response.get_json()
    public, secret = body["tests"]
    assert public["stdin"] == "1 2\n" and public["expected_stdout"] == "3\n"
    assert secret == {"name": "secret", "hidden": True, "weight": 2}
    assert body["feedback"]["rubric"] is None
    text = response.get_data(as_text=True)
    assert "40 2" not in text and "42\\n" not in text and "Use clear names." not in text


def test_student_list_also_hides_hidden_tests_and_rubric(client, student, assignment):
    text = client.get("/api/assignments", headers=student.headers).get_data(as_text=True)

    assert assignment["id"] in text
    assert "40 2" not in text and "Use clear names." not in text


def test_an_instructor_of_another_course_gets_404(client, make_instructor, assignment):
    other = make_instructor()

    response = client.get(f"/api/assignments/{assignment['id']}", headers=other.headers)

    assert response.status_code == 404


def test_owner_sees_hidden_tests_and_rubric(client, instructor, assignment):
    body = client.get(f"/api/assignments/{assignment['id']}", headers=instructor.headers).json

    secret = body["tests"][1]
    assert secret["stdin"] == "40 2\n"
    assert secret["expected_stdout"] == "42\n"
    assert body["feedback"]["rubric"] == "Use clear names."


def test_listing_requires_a_token(client):
    assert client.get("/api/assignments").status_code == 401


# --- patch --------------------------------------------------------------------------------


def test_owner_patch_changes_only_the_fields_sent(client, instructor, assignment):
    url = f"/api/assignments/{assignment['id']}"
    before = client.get(url, headers=instructor.headers).get_json()

    response = client.patch(
        url, json={"title": "Renamed", "max_attempts": 3}, headers=instructor.headers
    )

    assert response.status_code == 200
    patched = response.get_json()
    assert patched["title"] == "Renamed"
    assert patched["max_attempts"] == 3
    assert patched["updated_at"] >= before["updated_at"]
    untouched = set(before) - {"title", "max_attempts", "updated_at"}
    assert {k: patched[k] for k in untouched} == {k: before[k] for k in untouched}
    stored = Assignment.objects.get(id=assignment["id"])
    assert stored.title == "Renamed" and stored.max_attempts == 3
    assert [t.name for t in stored.test_cases] == ["public", "secret"]
    assert stored.test_cases[1].expected_stdout == "42\n"
    assert stored.feedback_settings.rubric == "Use clear names."


def test_patch_can_clear_nullable_fields(client, instructor, create_assignment):
    created = create_assignment(instructor, max_attempts=2, due_at="2031-01-01T00:00:00Z")

    response = client.patch(
        f"/api/assignments/{created['id']}",
        json={"max_attempts": None, "due_at": None},
        headers=instructor.headers,
    )

    assert response.status_code == 200
    assert response.get_json()["max_attempts"] is None
    assert response.get_json()["due_at"] is None


def test_patch_cannot_null_a_required_field(client, instructor, assignment):
    response = client.patch(
        f"/api/assignments/{assignment['id']}", json={"title": None}, headers=instructor.headers
    )

    assert response.status_code == 400
    assert Assignment.objects.get(id=assignment["id"]).title == assignment["title"]


def test_patch_to_unknown_language_is_422(client, instructor, assignment):
    response = client.patch(
        f"/api/assignments/{assignment['id']}",
        json={"language": "cobol"},
        headers=instructor.headers,
    )

    assert response.status_code == 422
    assert _error_code(response) == "unsupported_language"
    assert Assignment.objects.get(id=assignment["id"]).language == "python"


def test_patch_by_another_instructor_is_404_and_changes_nothing(
    client, make_instructor, assignment
):
    other = make_instructor()

    response = client.patch(
        f"/api/assignments/{assignment['id']}", json={"title": "Mine now"}, headers=other.headers
    )

    assert response.status_code == 404
    assert Assignment.objects.get(id=assignment["id"]).title == assignment["title"]


def test_patch_by_a_student_is_403(client, student, assignment):
    response = client.patch(
        f"/api/assignments/{assignment['id']}", json={"title": "x"}, headers=student.headers
    )

    assert response.status_code == 403
    assert Assignment.objects.get(id=assignment["id"]).title == assignment["title"]


# --- pagination ---------------------------------------------------------------------------


@pytest.fixture
def five_assignments(instructor, create_assignment):
    return [create_assignment(instructor, title=f"A{i}") for i in range(5)]


def test_list_defaults_and_total(client, student, five_assignments):
    body = client.get("/api/assignments", headers=student.headers).get_json()

    assert body["total"] == 5
    assert len(body["items"]) == 5
    assert body["limit"] == 20 and body["offset"] == 0


def test_list_limit_and_offset(client, student, five_assignments):
    first = client.get("/api/assignments?limit=2", headers=student.headers).get_json()
    rest = client.get("/api/assignments?limit=2&offset=2", headers=student.headers).get_json()
    tail = client.get("/api/assignments?limit=100&offset=4", headers=student.headers).get_json()
    past = client.get("/api/assignments?offset=50", headers=student.headers).get_json()

    assert first["total"] == rest["total"] == tail["total"] == past["total"] == 5
    assert len(first["items"]) == 2 and len(rest["items"]) == 2 and len(tail["items"]) == 1
    seen = [a["id"] for a in first["items"] + rest["items"] + tail["items"]]
    assert sorted(seen) == sorted(a["id"] for a in five_assignments)
    assert past["items"] == []


def test_list_is_newest_first(client, student, five_assignments):
    for minute, created in enumerate(five_assignments):
        Assignment.objects(id=created["id"]).update_one(
            set__created_at=datetime(2030, 1, 1, 0, minute)
        )

    items = client.get("/api/assignments", headers=student.headers).get_json()["items"]

    assert [a["title"] for a in items] == ["A4", "A3", "A2", "A1", "A0"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=x",
        "limit=-1",
        "offset=-1",
        "offset=1.5",
        "limit=",
        "offset=99999999999999999999999",
    ],
)
def test_bad_pagination_is_400(client, student, query):
    response = client.get(f"/api/assignments?{query}", headers=student.headers)

    assert response.status_code == 400
    assert _error_code(response) == "invalid_query"


def test_superscript_digit_limit_is_400_not_500(client, student):
    response = client.get("/api/assignments?limit=²", headers=student.headers)

    assert response.status_code == 400


def test_student_never_sees_a_hidden_call_tests_call_or_expected_value(
    client, instructor, student, create_assignment
):
    tests = [
        {"name": "visible", "call": "add(1, 2)", "expected": 3},
        {"name": "sealed", "call": "add(40, 2)", "expected": 4242, "hidden": True},
    ]
    created = create_assignment(instructor, tests=tests)

    body = client.get(f"/api/assignments/{created['id']}", headers=student.headers).get_json()

    visible, sealed = body["tests"]
    assert visible["call"] == "add(1, 2)" and visible["expected"] == 3
    assert sealed == {"name": "sealed", "hidden": True, "weight": 1}
    owner_view = client.get(f"/api/assignments/{created['id']}", headers=instructor.headers).json
    assert owner_view["tests"][1]["call"] == "add(40, 2)"
    assert owner_view["tests"][1]["expected"] == 4242


def test_languages_are_checked_where_the_runners_run(
    make_app, settings_with, instructor, assignment_body
):
    """Kubernetes runners use their image's toolchains, narrowed by RUNNER_LANGUAGES; the
    local launcher also needs the toolchain on this machine (here: a missing one)."""
    languages = ("python", "c")
    kubernetes = settings_with(runner_launcher="kubernetes", runner_languages=languages)
    client = make_app(settings=kubernetes).test_client()
    refused = client.post(
        "/api/assignments", json=assignment_body(language="java"), headers=instructor.headers
    )
    accepted = client.post(
        "/api/assignments", json=assignment_body(language="c"), headers=instructor.headers
    )
    local = settings_with(runner_launcher="local", runner_languages=languages)
    client = make_app(settings=local).test_client()
    with patch("runner_image.sandbox.languages.shutil.which", return_value=None):
        missing = client.post(
            "/api/assignments", json=assignment_body(language="c"), headers=instructor.headers
        )

    assert refused.status_code == 422
    assert "supported: c, python" in refused.get_json()["error"]["message"]
    assert accepted.status_code == 201
    assert missing.status_code == 422
    assert "not installed" in missing.get_json()["error"]["message"]


def test_an_assignment_too_slow_for_any_runner_is_refused(client, instructor, assignment_body):
    slow = [{"name": f"t{i}", "stdin": "", "expected_stdout": ""} for i in range(200)]
    response = client.post(
        "/api/assignments",
        json=assignment_body(tests=slow, time_limit_ms=60_000),
        headers=instructor.headers,
    )

    assert response.status_code == 422
    assert _error_code(response) == "assignment_too_slow"
    assert Assignment.objects.count() == 0


def test_a_memory_limit_larger_than_a_runner_pod_is_refused(
    make_app, settings_with, instructor, assignment_body
):
    kubernetes = settings_with(runner_launcher="kubernetes", runner_memory_limit="1Gi")
    client = make_app(settings=kubernetes).test_client()
    too_big = client.post(
        "/api/assignments", json=assignment_body(memory_limit_mb=900), headers=instructor.headers
    )
    fits = client.post(
        "/api/assignments", json=assignment_body(memory_limit_mb=512), headers=instructor.headers
    )

    assert too_big.status_code == 422
    assert too_big.get_json()["error"]["details"] == {"max_memory_limit_mb": 768}
    assert fits.status_code == 201
