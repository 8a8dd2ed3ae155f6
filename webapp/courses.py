"""Courses, their staff and rosters: who belongs where, kept in `Membership` documents (one
per account and course) so that every question (may this account see that assignment?) is
one indexed lookup."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field

from bson import ObjectId
from mongoengine import NotUniqueError
from pydantic import TypeAdapter, ValidationError

from webapp.models import (
    Assignment,
    Course,
    CourseRole,
    Membership,
    PendingEnrolment,
    Submission,
    User,
)
from webapp.schemas import Email

# No 0/O or 1/I/L: a code is read aloud in a lecture and typed from a slide.
JOIN_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
JOIN_CODE_LENGTH = 8
MAX_ROSTER_ROWS = 5000
EMAIL = TypeAdapter(Email)


def new_join_code() -> str:
    return "".join(secrets.choice(JOIN_CODE_ALPHABET) for _ in range(JOIN_CODE_LENGTH))


def normalise_join_code(raw: str) -> str:
    return raw.strip().upper().replace("-", "").replace(" ", "")


def role_in(user_id: ObjectId, course_id: ObjectId | None) -> CourseRole | None:
    if course_id is None:
        return None
    membership = Membership.objects(course_id=course_id, user_id=user_id).only("role").first()
    return CourseRole(membership.role) if membership else None


def enrol(course_id: ObjectId, user_id: ObjectId, role: CourseRole = CourseRole.STUDENT) -> bool:
    """Adds the membership if there is none (a member keeps the role they have); True when
    it was added. An upsert, so two parallel joins cannot make two memberships."""
    result = Membership.objects(course_id=course_id, user_id=user_id).update_one(
        upsert=True, set_on_insert__role=str(role), full_result=True
    )
    return bool(result.upserted_id)


def set_staff_role(course_id: ObjectId, user_id: ObjectId, role: CourseRole) -> None:
    Membership.objects(course_id=course_id, user_id=user_id).update_one(
        upsert=True, set__role=str(role)
    )


def _save_with_new_join_code(course: Course) -> Course:
    for _ in range(5):
        course.join_code = new_join_code()
        try:
            course.save()
        except NotUniqueError:
            continue  # a join code already in use: draw again
        return course
    raise RuntimeError("could not draw an unused join code")


def create_course(owner: User, title: str, is_default: bool = False) -> Course:
    course = _save_with_new_join_code(Course(title=title, owner_id=owner.id, is_default=is_default))
    set_staff_role(course.id, owner.id, CourseRole.INSTRUCTOR)
    return course


def default_course(owner: User) -> Course:
    """The owner's course for assignments posted without a `course_id`, made on first use."""
    course = Course.objects(owner_id=owner.id, is_default=True).first()
    return course or create_course(owner, f"{owner.name}'s course", is_default=True)


def rotate_join_code(course: Course) -> Course:
    return _save_with_new_join_code(course)


def courses_of(user: User) -> dict[ObjectId, CourseRole]:
    return {m.course_id: CourseRole(m.role) for m in Membership.objects(user_id=user.id)}


@dataclass
class EnrolmentReport:
    enrolled: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)


def enrol_emails(course: Course, emails: list[str]) -> EnrolmentReport:
    """An address with an account is enrolled now; one without stays pending until it
    registers (`apply_pending_enrolments`)."""
    report = EnrolmentReport()
    for email in dict.fromkeys(emails):
        user = User.objects(email=email).only("id").first()
        if user is not None:
            added = enrol(course.id, user.id)
            (report.enrolled if added else report.already).append(email)
            continue
        result = PendingEnrolment.objects(course_id=course.id, email=email).update_one(
            upsert=True, set_on_insert__email=email, full_result=True
        )
        (report.pending if result.upserted_id else report.already).append(email)
    return report


def apply_pending_enrolments(user: User) -> None:
    for pending in PendingEnrolment.objects(email=user.email):
        enrol(pending.course_id, user.id)
        pending.delete()


class RosterError(ValueError):
    def __init__(self, problems: list[dict[str, object]]) -> None:
        super().__init__(f"{len(problems)} roster lines are invalid")
        self.problems = problems


def _is_email(value: str) -> bool:
    try:
        EMAIL.validate_python(value)
    except ValidationError:
        return False
    return True


def roster_emails(text: str) -> list[str]:
    """The e-mails of a roster CSV: a header row naming an `email` column (any case; other
    columns such as names are ignored), or no header and the e-mail in the first column.
    All problems are reported at once, so nothing is half-applied."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise RosterError([{"line": reader.line_num, "message": f"not CSV: {exc}"}]) from exc
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if len(rows) > MAX_ROSTER_ROWS:
        raise RosterError([{"line": 0, "message": f"more than {MAX_ROSTER_ROWS} rows"}])
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    column, first = (header.index("email"), 1) if "email" in header else (0, 0)
    emails, problems = [], []
    for number, row in enumerate(rows[first:], start=first + 1):
        value = row[column].strip().lower() if column < len(row) else ""
        if _is_email(value):
            emails.append(value)
        else:
            problems.append({"line": number, "message": f"not an e-mail address: {value!r}"})
    if problems:
        raise RosterError(problems)
    return emails


@dataclass
class MigrationReport:
    assignments: int = 0
    courses_created: int = 0
    students_enrolled: int = 0


def migrate_assignments_into_courses() -> MigrationReport:
    """Assignments from before courses go to their owner's default course, and everyone who
    submitted to one is enrolled in it. Idempotent: a second run finds nothing to do."""
    report = MigrationReport()
    for assignment in Assignment.objects(course_id=None):
        owner = User.objects(id=assignment.owner_id).first()
        if owner is None:
            continue
        had_default = Course.objects(owner_id=owner.id, is_default=True).count() > 0
        course = default_course(owner)
        report.courses_created += not had_default
        Assignment.objects(id=assignment.id, course_id=None).update_one(set__course_id=course.id)
        report.assignments += 1
    for course in Course.objects(is_default=True):
        assignment_ids = [a.id for a in Assignment.objects(course_id=course.id).only("id")]
        for user_id in Submission.objects(assignment_id__in=assignment_ids).distinct("user_id"):
            report.students_enrolled += enrol(course.id, user_id)
    return report
