"""`GET /api/assignments/<id>/export.csv`: every submission of an assignment with its
student's name and e-mail, for its staff. Streamed from a cursor sorted by student, a
batch of students (one query for their names) at a time, so its memory does not grow with
the class."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby, islice
from operator import attrgetter

from bson import ObjectId
from flask import Blueprint, Response, g, stream_with_context

from webapp.auth import login_required
from webapp.blueprints.stats import STAFF_ONLY, staff_assignment_or_404
from webapp.gradebook import SUBMISSION_COLUMNS, csv_line, submission_cells
from webapp.models import Submission, User
from webapp.openapi import operation, public_api
from webapp.stats_store import counted_submissions

bp = Blueprint("export", __name__, url_prefix="/api/assignments")

STUDENTS_PER_BATCH = 200
# Never the code, the outputs or the feedback: a gradebook, not a dump.
EXPORTED_FIELDS = (
    "id",
    "user_id",
    "attempt",
    "status",
    "verdict",
    "score",
    "raw_score",
    "penalty",
    "max_score",
    "late",
    "fail_tags",
    "metrics.tests_passed",
    "metrics.tests_total",
    "created_at",
    "finished_at",
)
CSV = (
    "`text/csv` (UTF-8, CRLF): a header row, then one row per submission, grouped by "
    f"student: {', '.join(SUBMISSION_COLUMNS)}. Cells a spreadsheet would read as a formula "
    "start with a single quote"
)


def _batches(by_student: Iterable[tuple[ObjectId, Iterable[Submission]]]) -> Iterator[list]:
    """Lists of (student id, their submissions oldest first), STUDENTS_PER_BATCH at a time."""
    groups = ((user_id, sorted(own, key=attrgetter("created_at"))) for user_id, own in by_student)
    while batch := list(islice(groups, STUDENTS_PER_BATCH)):
        yield batch


@bp.get("/<assignment_id>/export.csv")
@operation(public_api, tags=("statistics",), ok={200: CSV}, errors=STAFF_ONLY)
@login_required()
def export_submissions(assignment_id: str):
    """Every submission of the assignment as CSV (staff), streamed."""
    assignment = staff_assignment_or_404(g.user, assignment_id)
    # Sorted by student through the (assignment_id, user_id) index: no in-memory sort.
    submissions = (
        counted_submissions(assignment_id=assignment.id)
        .only(*EXPORTED_FIELDS)
        .order_by("user_id")
        .no_cache()
    )

    def lines() -> Iterator[str]:
        yield csv_line(SUBMISSION_COLUMNS)
        for batch in _batches(groupby(submissions, key=attrgetter("user_id"))):
            ids = [user_id for user_id, _ in batch]
            students = {user.id: user for user in User.objects(id__in=ids).only("name", "email")}
            for user_id, own in batch:
                for submission in own:
                    yield csv_line(submission_cells(submission, students.get(user_id)))

    filename = f"assignment-{assignment.id}-submissions.csv"
    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
