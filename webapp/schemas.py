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
    field_validator,
    model_validator,
)

from runner_image.contract import FeedbackSettings, Status, TestCase

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


def _unique_test_names(tests: list[TestCaseBody] | None) -> None:
    names = [t.name for t in tests or []]
    if len(names) != len(set(names)):
        raise ValueError("test names must be unique within an assignment")


def has_call_tests(tests: Sequence[TestCase] | None) -> bool:
    return any(t.call is not None for t in tests or [])


class AssignmentCreateBody(Strict):
    title: Name
    description: str = Field(default="", max_length=100_000)
    language: str = "python"
    starter_code: str = Field(default="", max_length=64 * 1024)
    tests: list[TestCaseBody] = Field(min_length=1, max_length=200)
    time_limit_ms: int = Field(default=2000, ge=100, le=60_000)
    memory_limit_mb: int = Field(default=256, ge=16, le=4096)
    max_score: float = Field(default=100.0, gt=0, le=10_000)
    max_attempts: int | None = Field(default=None, ge=1)
    due_at: datetime | None = None
    published: bool = True
    feedback: FeedbackBody = Field(default_factory=FeedbackBody)

    _due_at_utc = field_validator("due_at")(_naive_utc)

    @model_validator(mode="after")
    def _check(self) -> AssignmentCreateBody:
        _unique_test_names(self.tests)
        return self


class AssignmentPatchBody(Strict):
    """Every field optional; only the fields sent are changed."""

    title: Name | None = None
    description: str | None = Field(default=None, max_length=100_000)
    language: str | None = None
    starter_code: str | None = Field(default=None, max_length=64 * 1024)
    tests: list[TestCaseBody] | None = Field(default=None, min_length=1, max_length=200)
    time_limit_ms: int | None = Field(default=None, ge=100, le=60_000)
    memory_limit_mb: int | None = Field(default=None, ge=16, le=4096)
    max_score: float | None = Field(default=None, gt=0, le=10_000)
    max_attempts: int | None = Field(default=None, ge=1)
    due_at: datetime | None = None
    published: bool | None = None
    feedback: FeedbackBody | None = None

    _due_at_utc = field_validator("due_at")(_naive_utc)

    @model_validator(mode="after")
    def _check(self) -> AssignmentPatchBody:
        _unique_test_names(self.tests)
        nullable = {"max_attempts", "due_at"}
        for name in self.model_fields_set - nullable:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


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
