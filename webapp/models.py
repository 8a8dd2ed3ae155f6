"""MongoDB documents. The webapp is the only component that reads or writes them.

Test cases, feedback settings and test results are stored as the contract's models dump
them (runner_image.contract), so their shape is defined once: these documents hold them as
plain sub-documents and hand them out as those models."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import get_args

import mongoengine as me

from runner_image.contract import FeedbackSettings, ScoreState, Status, TestCase, TestResult
from webapp.deadlines import Deadlines, LatePenalty
from webapp.gradebook import Counts

ROLES = ("student", "instructor")


class CourseRole(StrEnum):
    """A role in one course, for any account: `instructor`s edit assignments and staff, `ta`s
    read everything and regrade, `student`s see the course's published assignments."""

    INSTRUCTOR = "instructor"
    TA = "ta"
    STUDENT = "student"


STAFF_ROLES = frozenset({CourseRole.INSTRUCTOR, CourseRole.TA})


def utcnow() -> datetime:
    """Naive UTC at millisecond precision, exactly what MongoDB stores and gives back."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class User(me.Document):
    email = me.StringField(required=True, unique=True, max_length=320)
    name = me.StringField(required=True, max_length=200)
    role = me.StringField(required=True, choices=ROLES, default="student")
    password_hash = me.StringField(required=True)
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "users"}


class Course(me.Document):
    title = me.StringField(required=True, max_length=200)
    owner_id = me.ObjectIdField(required=True)
    # The course an owner's assignments go to when none is named (and where the
    # migrate-courses command puts assignments that predate courses).
    is_default = me.BooleanField(default=False)
    join_code = me.StringField(required=True, unique=True)
    created_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "courses", "indexes": [("owner_id", "is_default")]}


class Membership(me.Document):
    course_id = me.ObjectIdField(required=True)
    user_id = me.ObjectIdField(required=True)
    role = me.StringField(required=True, choices=list(CourseRole))
    created_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "memberships",
        "indexes": [{"fields": ["course_id", "user_id"], "unique": True}, ("user_id", "role")],
    }


class PendingEnrolment(me.Document):
    """A student enrolled by e-mail before having an account: applied when that address
    registers."""

    course_id = me.ObjectIdField(required=True)
    email = me.StringField(required=True, max_length=320)
    created_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "pending_enrolments",
        "indexes": [{"fields": ["course_id", "email"], "unique": True}, "email"],
    }


class Assignment(me.Document):
    owner_id = me.ObjectIdField(required=True)
    course_id = me.ObjectIdField(null=True)  # null only before `cloudemy migrate-courses`
    title = me.StringField(required=True, max_length=200)
    description = me.StringField(default="")
    language = me.StringField(required=True)
    starter_code = me.StringField(default="")
    tests = me.ListField(me.DictField())
    time_limit_ms = me.IntField(default=2000)
    memory_limit_mb = me.IntField(default=256)
    max_score = me.FloatField(default=100.0)
    max_attempts = me.IntField(null=True)
    due_at = me.DateTimeField(null=True)
    late_until = me.DateTimeField(null=True)
    late_penalty = me.DictField(null=True)  # webapp.deadlines.LatePenalty
    counts = me.StringField(choices=get_args(Counts), default="best")
    published = me.BooleanField(default=True)
    feedback = me.DictField()
    created_at = me.DateTimeField(default=utcnow)
    updated_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "assignments", "indexes": ["owner_id", "published", "course_id"]}

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines(due_at=self.due_at, late_until=self.late_until)

    @property
    def penalty(self) -> LatePenalty | None:
        return LatePenalty.model_validate(self.late_penalty) if self.late_penalty else None

    @property
    def test_cases(self) -> list[TestCase]:
        return [TestCase.model_validate(test) for test in self.tests]

    @test_cases.setter
    def test_cases(self, cases: list[TestCase]) -> None:
        self.tests = [case.model_dump(mode="json") for case in cases]

    @property
    def feedback_settings(self) -> FeedbackSettings:
        return FeedbackSettings.model_validate(self.feedback or {})

    @feedback_settings.setter
    def feedback_settings(self, value: FeedbackSettings) -> None:
        self.feedback = value.model_dump(mode="json")


class Submission(me.Document):
    assignment_id = me.ObjectIdField(required=True)
    user_id = me.ObjectIdField(required=True)
    language = me.StringField(required=True)
    code = me.StringField(required=True)
    attempt = me.IntField(required=True)
    status = me.StringField(required=True, choices=list(Status), default=Status.QUEUED)
    verdict = me.StringField(null=True)
    score = me.FloatField(null=True)  # what counts: raw_score - penalty
    raw_score = me.FloatField(null=True)  # the result's own score
    penalty = me.FloatField(null=True)
    late = me.BooleanField(default=False)
    penalty_percent = me.FloatField(default=0.0)  # decided at submit (webapp.deadlines)
    max_score = me.FloatField(required=True)
    tests_score = me.FloatField(null=True)  # the tests' part of raw_score
    rubric_score = me.FloatField(null=True)  # the rubric's part (the model's, or staff's)
    score_state = me.StringField(null=True, choices=list(ScoreState))
    review = me.DictField(null=True)  # staff's confirmation or override of a provisional score
    fail_tags = me.ListField(me.StringField())
    instructor_tags = me.ListField(me.StringField())  # never shown to students
    feedback = me.StringField(null=True)
    tests = me.ListField(me.DictField())
    metrics = me.DictField()
    job_name = me.StringField(null=True)
    # Fresh runners the sweep sent after one never reported (webapp/sweeper.py).
    relaunches = me.IntField(default=0)
    result_digest = me.StringField(null=True)
    created_at = me.DateTimeField(default=utcnow)
    enqueued_at = me.DateTimeField(default=utcnow)  # last time its task was sent
    scheduled_at = me.DateTimeField(null=True)
    started_at = me.DateTimeField(null=True)
    finished_at = me.DateTimeField(null=True)
    # Grading rounds (webapp.lifecycle.start_round): 0 is the grading at submission, each
    # regrade starts the next one; the result fields above are the current round's, and
    # every earlier round's result is in `history` (webapp.lifecycle.history_entry).
    round = me.IntField(default=0)
    history = me.ListField(me.DictField())
    round_started_at = me.DateTimeField(null=True)  # null: round 0, which began at created_at
    low_priority = me.BooleanField(default=False)  # the current round is a bulk regrade's
    # A staff member's reference solution (PUT /api/assignments/<id>/reference): graded like
    # a submission, but no student's work: no attempt, in no student list or statistics.
    is_reference = me.BooleanField(default=False)

    meta = {
        "collection": "submissions",
        "indexes": [
            ("assignment_id", "user_id"),
            ("user_id", "-created_at"),
            ("status", "enqueued_at"),
            ("assignment_id", "is_reference", "-created_at"),
        ],
    }

    @property
    def test_results(self) -> list[TestResult]:
        return [TestResult.model_validate(row) for row in self.tests]


class AttemptCounter(me.Document):
    """Counted attempts of one student at one assignment, reserved atomically so parallel
    submissions cannot slip past `max_attempts`."""

    assignment_id = me.ObjectIdField(required=True)
    user_id = me.ObjectIdField(required=True)
    used = me.IntField(default=0)

    meta = {
        "collection": "attempt_counters",
        "indexes": [{"fields": ["assignment_id", "user_id"], "unique": True}],
    }


class Extension(me.Document):
    """One student's own dates for one assignment, replacing the assignment's."""

    assignment_id = me.ObjectIdField(required=True)
    user_id = me.ObjectIdField(required=True)
    due_at = me.DateTimeField(required=True)
    late_until = me.DateTimeField(null=True)
    granted_by = me.ObjectIdField(required=True)
    updated_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "extensions",
        "indexes": [{"fields": ["assignment_id", "user_id"], "unique": True}],
    }

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines(due_at=self.due_at, late_until=self.late_until)


class StudentStanding(me.Document):
    """One student at one assignment, recomputed from their submissions whenever one of
    them changes (webapp.stats_store): what the gradebook and the cohort counters need,
    and `counters`, this student's share of the assignment's AssignmentStats. `version`
    makes every rewrite conditional on the state it was computed from."""

    assignment_id = me.ObjectIdField(required=True)
    user_id = me.ObjectIdField(required=True)
    version = me.IntField(default=0)
    submissions = me.IntField(default=0)
    judged = me.IntField(default=0)
    latest_submission_id = me.ObjectIdField(null=True)  # latest graded or failed
    latest_at = me.DateTimeField(null=True)
    latest_score = me.FloatField(null=True)
    latest_verdict = me.StringField(null=True)
    best_submission_id = me.ObjectIdField(null=True)
    best_score = me.FloatField(null=True)
    first_accepted_attempt = me.IntField(null=True)
    counters = me.DictField()
    updated_at = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "student_standings",
        "indexes": [{"fields": ["assignment_id", "user_id"], "unique": True}],
    }


class AssignmentStats(me.Document):
    """An assignment's statistics as counters, moved with atomic $inc by the difference
    between a student's old and new standing: reading them costs one document whatever
    the number of submissions. Keys under `counters` are escaped (webapp.stats)."""

    assignment_id = me.ObjectIdField(required=True, unique=True)
    counters = me.DictField()
    updated_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "assignment_stats"}
