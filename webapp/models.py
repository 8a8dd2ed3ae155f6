"""MongoDB documents. The webapp is the only component that reads or writes them."""

from __future__ import annotations

from datetime import UTC, datetime

import mongoengine as me

ROLES = ("student", "instructor")
COMPARE_MODES = ("lines", "exact", "tokens", "float")
OPEN_STATUSES = ("queued", "scheduled", "running")
FINAL_STATUSES = ("graded", "failed", "error")
STATUSES = OPEN_STATUSES + FINAL_STATUSES


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


class TestCase(me.EmbeddedDocument):
    name = me.StringField(required=True)
    stdin = me.StringField(default="")
    expected_stdout = me.StringField(default="")
    call = me.StringField(null=True)
    expected = me.DynamicField(null=True)
    hidden = me.BooleanField(default=False)
    weight = me.FloatField(default=1.0)
    compare = me.StringField(choices=COMPARE_MODES, default="lines")
    tolerance = me.FloatField(default=1e-6)


class FeedbackSettings(me.EmbeddedDocument):
    llm = me.BooleanField(default=True)
    rubric = me.StringField(null=True)
    rubric_weight = me.FloatField(default=0.0)


class Assignment(me.Document):
    owner_id = me.ObjectIdField(required=True)
    title = me.StringField(required=True, max_length=200)
    description = me.StringField(default="")
    language = me.StringField(required=True)
    starter_code = me.StringField(default="")
    tests = me.EmbeddedDocumentListField(TestCase)
    time_limit_ms = me.IntField(default=2000)
    memory_limit_mb = me.IntField(default=256)
    max_score = me.FloatField(default=100.0)
    max_attempts = me.IntField(null=True)
    due_at = me.DateTimeField(null=True)
    published = me.BooleanField(default=True)
    feedback = me.EmbeddedDocumentField(FeedbackSettings, default=FeedbackSettings)
    created_at = me.DateTimeField(default=utcnow)
    updated_at = me.DateTimeField(default=utcnow)

    meta = {"collection": "assignments", "indexes": ["owner_id", "published"]}


class TestResult(me.EmbeddedDocument):
    name = me.StringField(required=True)
    verdict = me.StringField(required=True)
    score = me.FloatField(default=0.0)
    max_score = me.FloatField(default=0.0)
    time_ms = me.IntField(null=True)
    memory_kb = me.IntField(null=True)
    hidden = me.BooleanField(default=False)
    stdout = me.StringField(null=True)
    message = me.StringField(null=True)


class Submission(me.Document):
    assignment_id = me.ObjectIdField(required=True)
    user_id = me.ObjectIdField(required=True)
    language = me.StringField(required=True)
    code = me.StringField(required=True)
    attempt = me.IntField(required=True)
    status = me.StringField(required=True, choices=STATUSES, default="queued")
    verdict = me.StringField(null=True)
    score = me.FloatField(null=True)
    max_score = me.FloatField(required=True)
    fail_tags = me.ListField(me.StringField())
    instructor_tags = me.ListField(
        me.StringField()
    )  # e.g. suspected_injection; never shown to students
    feedback = me.StringField(null=True)
    tests = me.EmbeddedDocumentListField(TestResult)
    metrics = me.DictField()
    job_name = me.StringField(null=True)
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
