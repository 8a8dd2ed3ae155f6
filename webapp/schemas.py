"""Request bodies as pydantic models: validation and its error messages live here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from runner_image.contract import FeedbackSettings, Status, TestCase
from webapp.deadlines import LatePenalty
from webapp.gradebook import Counts

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320
    ),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _naive_utc(moment: datetime | None) -> datetime | None:
    """MongoDB stores naive UTC; a time without an offset is taken as UTC."""
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


class RegisterBody(Strict):
    email: Email
    password: str = Field(min_length=8, max_length=1024)
    name: Name


class LoginBody(Strict):
    email: Email
    password: str = Field(max_length=1024)


class TestCaseBody(TestCase):
    """An `io` test (stdin, expected_stdout) or a Python `call` test (call, expected): the
    contract's test case, with the fields of only one kind accepted."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _one_kind(self) -> TestCaseBody:
        if self.call is None and "expected" in self.model_fields_set:
            raise ValueError("`expected` belongs to call tests; io tests use expected_stdout")
        if self.call is not None and self.model_fields_set & {"stdin", "expected_stdout"}:
            raise ValueError("a call test has `call` and `expected`, not stdin/expected_stdout")
        return self


class FeedbackBody(FeedbackSettings):
    model_config = ConfigDict(extra="forbid")


class LatePenaltyBody(LatePenalty):
    """`percent` of max_score per started `per` (hour or day) late, at most 100 %."""

    model_config = ConfigDict(extra="forbid")


PAST_DUE_HELP = "accept a due_at in the past (otherwise 422 due_in_past)"


NO_TESTS = (
    "tests: at least one, unless a rubric grades alone (feedback with a rubric, llm on and "
    "rubric_weight 1.0)"
)


def graded_by_rubric_alone(feedback: FeedbackSettings) -> bool:
    return feedback.llm and bool(feedback.rubric) and feedback.rubric_weight == 1.0


def _unique_test_names(tests: list[TestCaseBody] | None) -> None:
    names = [t.name for t in tests or []]
    if len(names) != len(set(names)):
        raise ValueError("test names must be unique within an assignment")


def tags_link_tests(feedback: FeedbackSettings | None, tests: Sequence[TestCase] | None) -> None:
    """A tag linked to a test the assignment lacks could never be kept (docs/llm.md)."""
    if feedback is None or tests is None:
        return
    names = {t.name for t in tests}
    unknown = sorted({n for linked in feedback.tag_tests.values() for n in linked} - names)
    if unknown:
        raise ValueError(f"feedback.tag_tests names tests the assignment lacks: {unknown}")


def has_call_tests(tests: Sequence[TestCase] | None) -> bool:
    return any(t.call is not None for t in tests or [])


ObjectIdText = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{24}$")]


class AssignmentCreateBody(Strict):
    course_id: ObjectIdText | None = Field(
        default=None, description="the course; default: the caller's own default course"
    )
    title: Name
    description: str = Field(default="", max_length=100_000)
    language: str = "python"
    starter_code: str = Field(default="", max_length=64 * 1024)
    # Before `tests`, whose check reads it.
    feedback: FeedbackBody = Field(default_factory=FeedbackBody)
    tests: list[TestCaseBody] = Field(
        max_length=200,
        description="at least one, unless the rubric grades alone (feedback.rubric_weight 1.0)",
    )
    time_limit_ms: int = Field(default=2000, ge=100, le=60_000)
    memory_limit_mb: int = Field(default=256, ge=16, le=4096)
    max_score: float = Field(default=100.0, gt=0, le=10_000)
    max_attempts: int | None = Field(default=None, ge=1)
    due_at: datetime | None = None
    late_until: datetime | None = None
    late_penalty: LatePenaltyBody | None = None
    counts: Counts = "best"
    published: bool = True
    allow_past_due: bool = Field(default=False, description=PAST_DUE_HELP)

    _due_at_utc = field_validator("due_at", "late_until")(_naive_utc)

    @field_validator("tests")
    @classmethod
    def _some_tests(cls, tests: list[TestCaseBody], info: ValidationInfo) -> list[TestCaseBody]:
        feedback = info.data.get("feedback")
        if not tests and not (feedback is not None and graded_by_rubric_alone(feedback)):
            raise ValueError(NO_TESTS)
        return tests

    @model_validator(mode="after")
    def _check(self) -> AssignmentCreateBody:
        _unique_test_names(self.tests)
        tags_link_tests(self.feedback, self.tests)
        return self


class AssignmentPatchBody(Strict):
    """Every field optional; only the fields sent are changed."""

    title: Name | None = None
    description: str | None = Field(default=None, max_length=100_000)
    language: str | None = None
    starter_code: str | None = Field(default=None, max_length=64 * 1024)
    tests: list[TestCaseBody] | None = Field(default=None, max_length=200)
    time_limit_ms: int | None = Field(default=None, ge=100, le=60_000)
    memory_limit_mb: int | None = Field(default=None, ge=16, le=4096)
    max_score: float | None = Field(default=None, gt=0, le=10_000)
    max_attempts: int | None = Field(default=None, ge=1)
    due_at: datetime | None = None
    late_until: datetime | None = None
    late_penalty: LatePenaltyBody | None = None
    counts: Counts | None = None
    published: bool | None = None
    feedback: FeedbackBody | None = None
    allow_past_due: bool = Field(default=False, description=PAST_DUE_HELP)

    _due_at_utc = field_validator("due_at", "late_until")(_naive_utc)

    @model_validator(mode="after")
    def _check(self) -> AssignmentPatchBody:
        _unique_test_names(self.tests)
        nullable = {"max_attempts", "due_at", "late_until", "late_penalty"}
        for name in self.model_fields_set - nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class CourseCreateBody(Strict):
    title: Name


class CoursePatchBody(Strict):
    title: Name


class JoinBody(Strict):
    join_code: str = Field(min_length=1, max_length=64, examples=["K7PQ2MXA"])


class StaffBody(Strict):
    email: Email
    role: Literal["instructor", "ta"]


class EnrolBody(Strict):
    emails: list[Email] = Field(min_length=1, max_length=5000)


class RosterBody(Strict):
    csv: str = Field(
        max_length=1024 * 1024,
        description="a CSV with an `email` column (a header row), or e-mails in its first "
        "column; other columns are ignored",
        examples=["email,name\nada@example.org,Ada Lovelace\n"],
    )


class ExtensionBody(Strict):
    """A student's own dates; without `late_until`, the assignment's late window applies
    when it ends after this `due_at`."""

    due_at: datetime
    late_until: datetime | None = None

    _utc = field_validator("due_at", "late_until")(_naive_utc)

    @model_validator(mode="after")
    def _check(self) -> ExtensionBody:
        if self.late_until is not None and self.late_until <= self.due_at:
            raise ValueError("late_until must be after due_at")
        return self


class ReviewBody(Strict):
    """No `rubric_score`: the model's rubric score is confirmed; with one: it replaces it."""

    rubric_score: float | None = Field(default=None, ge=0, le=10_000)
    note: str = Field(default="", max_length=2000)


class SubmissionCreateBody(Strict):
    code: str
    language: str | None = None


class StatusBody(Strict):
    status: Literal[Status.SCHEDULED, Status.RUNNING]
    job_name: str | None = Field(default=None, max_length=253)


class RegradeBody(Strict):
    """POST /api/assignments/<id>/regrade."""

    scope: Literal["all", "latest"] = Field(
        description="`all` submissions, or each student's `latest`"
    )
    force: bool = Field(
        default=False,
        description="regrade even though the reference solution, graded against the current "
        "tests, fails some of them",
    )


class ReferenceBody(Strict):
    """PUT /api/assignments/<id>/reference: a solution every test should accept."""

    code: str
