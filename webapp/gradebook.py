"""Gradebook CSVs, built line by line so a response can stream them. Pure.

Every cell a student (or anyone) typed may be read by a spreadsheet as a formula: a cell
that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading single quote
(OWASP, "CSV Injection"); the csv module quotes separators, quotes and line breaks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from bson import ObjectId

from webapp.deadlines import recorded_penalty

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Which of a student's submissions an assignment counts: the best score, or the latest
# graded or failed submission's.
Counts = Literal["best", "last"]


def safe_cell(value: Any) -> str:
    """The cell as text a spreadsheet shows and never evaluates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(round(value, 6))
    elif isinstance(value, datetime):
        text = value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_line(cells: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([safe_cell(cell) for cell in cells])
    return buffer.getvalue()


class Person(Protocol):
    id: ObjectId
    name: str
    email: str


class SubmissionRow(Protocol):
    id: ObjectId
    user_id: ObjectId
    attempt: int
    status: str
    verdict: str | None
    score: float | None
    raw_score: float | None
    penalty: float | None
    max_score: float
    late: bool
    fail_tags: list[str]
    metrics: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None


SUBMISSION_COLUMNS = (
    "submission_id",
    "student_id",
    "student_name",
    "student_email",
    "attempt",
    "status",
    "verdict",
    "score",
    "raw_score",
    "penalty",
    "max_score",
    "late",
    "tests_passed",
    "tests_total",
    "fail_tags",
    "submitted_at",
    "finished_at",
)


def submission_cells(submission: SubmissionRow, student: Person | None) -> list[Any]:
    """One row of an assignment's export, in SUBMISSION_COLUMNS' order."""
    raw_score, penalty = recorded_penalty(
        submission.score, submission.raw_score, submission.penalty
    )
    return [
        submission.id,
        submission.user_id,
        student.name if student else None,
        student.email if student else None,
        submission.attempt,
        submission.status,
        submission.verdict,
        submission.score,
        raw_score,
        penalty,
        submission.max_score,
        submission.late,
        submission.metrics.get("tests_passed"),
        submission.metrics.get("tests_total"),
        ";".join(submission.fail_tags),
        submission.created_at,
        submission.finished_at,
    ]


class GradedAssignment(Protocol):
    id: ObjectId
    title: str
    max_score: float
    counts: Counts


class Scores(Protocol):
    """A student's standing at an assignment (webapp.models.StudentStanding)."""

    best_score: float | None
    latest_score: float | None


def counted_score(assignment: GradedAssignment, standing: Scores | None) -> float | None:
    """The score the assignment counts: the student's best, or their latest graded or
    failed submission's (`counts`); None when nothing of theirs was judged."""
    if standing is None:
        return None
    return standing.latest_score if assignment.counts == "last" else standing.best_score


def gradebook_lines(
    students: Sequence[Person],
    assignments: Sequence[GradedAssignment],
    standings: Mapping[tuple[ObjectId, ObjectId], Scores],
) -> Iterator[str]:
    """A course's gradebook: a header, then one line per student (in the order given)
    with the counted score of each assignment (empty: nothing judged), the total of those
    and the total possible. `standings` is keyed by (assignment id, student id)."""
    yield csv_line(
        [
            "student_id",
            "name",
            "email",
            *(f"{a.title} ({a.counts}, max {a.max_score:g})" for a in assignments),
            "total",
            "total_max",
        ]
    )
    total_max = sum(a.max_score for a in assignments)
    for student in students:
        scores = [counted_score(a, standings.get((a.id, student.id))) for a in assignments]
        total = sum(score for score in scores if score is not None)
        yield csv_line([student.id, student.name, student.email, *scores, total, total_max])
