"""CSV exports: the per-assignment export over the API (streamed, staff only) and the pure
gradebook builder the per-course route uses; neither lets a cell run as a formula."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import timedelta

import pytest
from bson import ObjectId

from tests.stats_seed import START, submission_doc
from webapp.gradebook import (
    SUBMISSION_COLUMNS,
    counted_score,
    csv_line,
    gradebook_lines,
    safe_cell,
)
from webapp.models import Submission, utcnow


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Ada = Lovelace", "Ada = Lovelace"),
        (None, ""),
        (True, "true"),
        (33.3, "33.3"),
        (100.0, "100.0"),
        (2, "2"),
    ],
)
def test_cells_that_a_spreadsheet_would_evaluate_get_a_quote(value, cell):
    assert safe_cell(value) == cell


def test_a_line_quotes_separators_and_line_breaks():
    line = csv_line(["a,b", 'say "hi"', "two\nlines", "=1"])
    assert next(csv.reader(io.StringIO(line))) == ["a,b", 'say "hi"', "two\nlines", "'=1"]
    assert line.endswith("\r\n")


@pytest.fixture
def export(client):
    def _export(who, assignment_id: str):
        return client.get(f"/api/assignments/{assignment_id}/export.csv", headers=who.headers)

    return _export


def test_export_lists_every_submission_with_its_student(
    register, submit, internal_post, result_body, instructor, assignment, export
):
    mallory = register(name="=cmd|' /C calc'!A0")
    ada = register(name="Ada")
    first = submit(mallory, assignment["id"]).get_json()["id"]
    internal_post(first, "result", result_body())
    second = submit(mallory, assignment["id"]).get_json()["id"]
    third = submit(ada, assignment["id"]).get_json()["id"]

    response = export(instructor, assignment["id"])

    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == ",".join(SUBMISSION_COLUMNS)
    rows = _rows(text)
    assert [row["submission_id"] for row in rows if row["student_id"] == mallory.id] == [
        first,
        second,
    ]
    assert {row["submission_id"] for row in rows} == {first, second, third}
    graded = next(row for row in rows if row["submission_id"] == first)
    assert graded["student_name"] == "'=cmd|' /C calc'!A0"
    assert graded["student_email"] == mallory.email
    assert (graded["status"], graded["verdict"], graded["score"]) == (
        "graded",
        "wrong_answer",
        "33.3",
    )
    assert (graded["raw_score"], graded["penalty"], graded["late"]) == ("33.3", "0.0", "false")
    assert (graded["tests_passed"], graded["tests_total"]) == ("1", "2")
    assert graded["fail_tags"] == "wrong_answer;partial"
    assert graded["attempt"] == "1" and graded["submitted_at"].endswith("Z")
    queued = next(row for row in rows if row["submission_id"] == second)
    assert (queued["status"], queued["score"], queued["finished_at"]) == ("queued", "", "")
    assert "print(a + b)" not in text  # never the code


def test_export_streams_many_students_in_batches(instructor, assignment, export):
    assignment_id = ObjectId(assignment["id"])
    students = [ObjectId() for _ in range(210)]  # two batches
    docs = [
        submission_doc(
            assignment_id,
            students[n],
            attempt,
            {"public": "accepted"},
            created_at=START + timedelta(minutes=n * 2 - attempt),
        )
        for n in range(210)
        for attempt in (1, 2)
    ]
    Submission._get_collection().insert_many(docs)
    rows = _rows(export(instructor, assignment["id"]).get_data(as_text=True))
    assert len(rows) == 420
    by_student: dict[str, list[str]] = {}
    for row in rows:
        by_student.setdefault(row["student_id"], []).append(row["attempt"])
    # Grouped by student (consecutive), oldest first; no such accounts: empty names.
    assert len(by_student) == 210 and all(v == ["2", "1"] for v in by_student.values())
    assert [row["student_id"] for row in rows] == sorted(row["student_id"] for row in rows)
    assert {row["student_name"] for row in rows} == {""}


def test_a_reference_solution_is_not_exported(instructor, assignment, export):
    assignment_id = ObjectId(assignment["id"])
    reference = submission_doc(
        assignment_id, ObjectId(), 1, {"public": "accepted"}, created_at=utcnow()
    )
    Submission._get_collection().insert_one(reference | {"is_reference": True})
    assert _rows(export(instructor, assignment["id"]).get_data(as_text=True)) == []


def test_only_staff_export(
    client, student, make_instructor, instructor, create_assignment, assignment, export
):
    assert export(student, assignment["id"]).status_code == 403
    draft = create_assignment(instructor, published=False)
    assert export(make_instructor(), draft["id"]).status_code == 404
    assert export(student, draft["id"]).status_code == 404
    assert client.get(f"/api/assignments/{assignment['id']}/export.csv").status_code == 401


@dataclass
class Person:
    id: ObjectId
    name: str
    email: str


@dataclass
class Graded:
    id: ObjectId
    title: str
    max_score: float
    counts: str


@dataclass
class Scores:
    best_score: float | None
    latest_score: float | None


def test_gradebook_has_a_row_per_student_counting_best_or_last():
    ada = Person(ObjectId(), "Ada", "ada@example.org")
    bob = Person(ObjectId(), "@Bob", "bob@example.org")
    cy = Person(ObjectId(), "Cy", "cy@example.org")
    best = Graded(ObjectId(), "Sums", 100.0, "best")
    last = Graded(ObjectId(), "=Loops", 50.0, "last")
    standings = {
        (best.id, ada.id): Scores(best_score=90.0, latest_score=40.0),
        (last.id, ada.id): Scores(best_score=50.0, latest_score=20.5),
        (best.id, bob.id): Scores(best_score=10.0, latest_score=10.0),
    }

    text = "".join(gradebook_lines([ada, bob, cy], [best, last], standings))

    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "student_id",
        "name",
        "email",
        "Sums (best, max 100)",
        "'=Loops (last, max 50)",
        "total",
        "total_max",
    ]
    assert rows[1:] == [
        [str(ada.id), "Ada", "ada@example.org", "90.0", "20.5", "110.5", "150.0"],
        [str(bob.id), "'@Bob", "bob@example.org", "10.0", "", "10.0", "150.0"],
        [str(cy.id), "Cy", "cy@example.org", "", "", "0", "150.0"],
    ]
    assert counted_score(best, None) is None
