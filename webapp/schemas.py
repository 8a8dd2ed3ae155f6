"""Request bodies as pydantic models: validation and its error messages live here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from webapp.models import COMPARE_MODES, FINAL_STATUSES

Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320
    ),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Compare = Literal[COMPARE_MODES]  # type: ignore[valid-type]


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


class TestCaseBody(Strict):
    """An `io` test (stdin, expected_stdout) or a Python `call` test (call, expected)."""

    name: Name
    stdin: str = Field(default="", max_length=1024 * 1024)
    expected_stdout: str = Field(default="", max_length=1024 * 1024)
    call: str | None = Field(default=None, min_length=1, max_length=10_000)
    expected: Any = None
    hidden: bool = False
    weight: float = Field(default=1.0, gt=0, le=1000)
    compare: Compare = "lines"
    tolerance: float = Field(default=1e-6, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> TestCaseBody:
        if self.call is None and "expected" in self.model_fields_set:
            raise ValueError("`expected` belongs to call tests; io tests use expected_stdout")
        if self.call is not None and self.model_fields_set & {"stdin", "expected_stdout"}:
            raise ValueError("a call test has `call` and `expected`, not stdin/expected_stdout")
        return self


class FeedbackBody(Strict):
    llm: bool = True
    rubric: str | None = Field(default=None, max_length=20_000)
    rubric_weight: float = Field(default=0.0, ge=0.0, le=0.3)


def _unique_test_names(tests: list[TestCaseBody] | None) -> None:
    names = [t.name for t in tests or []]
    if len(names) != len(set(names)):
        raise ValueError("test names must be unique within an assignment")


def has_call_tests(tests: Sequence[Any] | None) -> bool:
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


class TestResultBody(BaseModel):
    name: str
    verdict: str
    score: float = 0.0
    max_score: float = 0.0
    time_ms: int | None = None
    memory_kb: int | None = None
    hidden: bool = False
    stdout: str | None = Field(default=None, max_length=256 * 1024)
    message: str | None = Field(default=None, max_length=64 * 1024)


class ResultBody(BaseModel):
    """What a runner (or the scheduler, for a launch failure) reports for a submission."""

    status: Literal[FINAL_STATUSES]  # type: ignore[valid-type]
    verdict: str | None = None
    score: float | None = Field(default=None, ge=0)
    max_score: float | None = Field(default=None, gt=0)
    fail_tags: list[str] = Field(default_factory=list, max_length=64)
    instructor_tags: list[str] = Field(default_factory=list, max_length=16)
    feedback: str = Field(default="", max_length=256 * 1024)
    tests: list[TestResultBody] = Field(default_factory=list, max_length=500)
    metrics: dict[str, Any] = Field(default_factory=dict)


class StatusBody(Strict):
    status: Literal["scheduled", "running"]
    job_name: str | None = Field(default=None, max_length=253)
