"""MongoDB documents. The webapp is the only component that reads or writes them.

Test cases, feedback settings and test results are stored as the contract's models dump
them (runner_image.contract), so their shape is defined once: these documents hold them as
plain sub-documents and hand them out as those models."""

from __future__ import annotations

from datetime import UTC, datetime

import mongoengine as me

from runner_image.contract import FeedbackSettings, Status, TestCase, TestResult

ROLES = ("student", "instructor")


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


class Assignment(me.Document):
    owner_id = me.ObjectIdField(required=True)
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
    published = me.BooleanField(default=True)
    feedback = me.DictField()
    created_at = me.DateTimeField(default=utcnow)
    updated_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "assignments", "indexes": ["owner_id", "published"]}

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
    score = me.FloatField(null=True)
    max_score = me.FloatField(required=True)
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

    meta = {
        "collection": "submissions",
        "indexes": [
            ("assignment_id", "user_id"),
            ("user_id", "-created_at"),
            ("status", "enqueued_at"),
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
