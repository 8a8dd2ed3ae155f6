"""What the API answers, as pydantic models: the serializers build them and the OpenAPI
document (webapp.openapi) is generated from them, so the two cannot disagree."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from runner_image.contract import Compare, FeedbackSettings, Status, Verdict

Item = TypeVar("Item", bound=BaseModel)


class Out(BaseModel):
    """Fields that a caller may not see are left unset and so absent from the JSON
    (`model_dump(exclude_unset=True)`); every other field is always present, null or not."""

    model_config = ConfigDict(use_enum_values=True)

    def json_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_unset=True)


class ErrorDetail(Out):
    code: str = Field(examples=["invalid_body"], description="snake_case, stable")
    message: str = Field(examples=["request body is invalid"], description="for humans")
    details: dict[str, Any] = Field(
        default_factory=dict, examples=[{"errors": [{"field": "email", "message": "..."}]}]
    )


class ErrorEnvelope(Out):
    """Every failure, whatever the status."""

    error: ErrorDetail


class UserOut(Out):
    id: str
    email: str = Field(examples=["ada@example.org"])
    name: str = Field(examples=["Ada Lovelace"])
    role: str = Field(examples=["student"], description="`student` or `instructor`")


class TokenOut(Out):
    access_token: str
    token_type: str = Field(examples=["Bearer"])
    expires_in: int = Field(examples=[86400], description="seconds")


class TestCaseOut(Out):
    """A hidden test shows a student only its name, weight and that it is hidden."""

    __test__ = False

    name: str = Field(examples=["adds two numbers"])
    hidden: bool
    weight: float
    stdin: str = Field(default="", examples=["1 2\n"])
    expected_stdout: str = Field(default="", examples=["3\n"])
    call: str | None = Field(default=None, examples=["add(1, 2)"])
    expected: Any = Field(default=None, examples=[3])
    compare: Compare = Compare.LINES
    tolerance: float = 1e-6


class AssignmentOut(Out):
    id: str
    owner_id: str
    title: str = Field(examples=["Sum of two numbers"])
    description: str
    language: str = Field(examples=["python"])
    starter_code: str
    tests: list[TestCaseOut]
    time_limit_ms: int
    memory_limit_mb: int
    max_score: float
    max_attempts: int | None
    due_at: str | None = Field(examples=["2026-12-02T10:00:00Z"])
    published: bool
    feedback: FeedbackSettings = Field(description="`rubric` is null for students")
    created_at: str | None
    updated_at: str | None


class TestResultOut(Out):
    """A student sees a hidden test's verdict and score only: its input, expected and
    actual output are absent and its time and memory null."""

    __test__ = False

    name: str
    verdict: Verdict
    score: float
    max_score: float
    time_ms: int | None
    memory_kb: int | None
    hidden: bool
    stdin: str | None = None
    expected_stdout: str | None = None
    call: str | None = None
    expected: Any = None
    stdout: str | None = None
    message: str | None = None


class HistoryEntryOut(Out):
    """An earlier grading round's result, shown by the same rules as the current one; its
    tests without the program's output or message (history keeps verdicts and figures)."""

    round: int = Field(examples=[0])
    status: Status
    verdict: Verdict | None
    score: float | None
    max_score: float | None
    fail_tags: list[str]
    feedback: str | None = Field(description="markdown")
    tests: list[TestResultOut]
    metrics: dict[str, Any]
    round_started_at: str | None
    finished_at: str | None
    instructor_tags: list[str] | None = Field(
        default=None, description="the assignment's staff only"
    )


class SubmissionOut(Out):
    id: str
    assignment_id: str
    user_id: str
    language: str = Field(examples=["python"])
    code: str
    status: Status
    verdict: Verdict | None
    score: float | None
    max_score: float
    fail_tags: list[str] = Field(examples=[["wrong_answer", "partial"]])
    feedback: str | None = Field(description="markdown")
    tests: list[TestResultOut]
    metrics: dict[str, Any]
    attempt: int
    job_name: str | None
    created_at: str | None
    scheduled_at: str | None
    started_at: str | None
    finished_at: str | None
    instructor_tags: list[str] | None = Field(
        default=None, description="the assignment's instructor only"
    )
    round: int = Field(
        default=0, description="the grading round shown: 0 at submission, one more per regrade"
    )
    round_started_at: str | None = Field(
        default=None, description="when the current round was queued (null: at created_at)"
    )
    history: list[HistoryEntryOut] = Field(
        default_factory=list, description="every earlier round's result, oldest first"
    )
    is_reference: bool = Field(
        default=False, description="a reference solution of the assignment's staff"
    )


class ReferenceOut(Out):
    """An assignment's reference solution and what its latest grading says of the tests."""

    submission: SubmissionOut
    broken_tests: list[str] | None = Field(
        examples=[["hidden big"]],
        description="tests the reference fails in its current round; null until that round "
        "is graded (or when it ended in `error`)",
    )
    up_to_date: bool = Field(
        description="its current round was queued after the assignment last changed"
    )


class BulkRegradeOut(Out):
    queued: int = Field(description="submissions whose next grading round was queued")
    skipped_in_flight: int = Field(description="submissions still being graded: not queued")
    skipped_ids: list[str] = Field(description="the ids of those, to regrade once final")
    reference: ReferenceOut | None = Field(
        description="the reference solution (regraded first when the assignment changed "
        "since its last grading); null when there is none"
    )


class Page(Out, Generic[Item]):
    items: list[Item]
    total: int
    limit: int
    offset: int


class AssignmentPage(Page[AssignmentOut]):
    pass


class SubmissionPage(Page[SubmissionOut]):
    pass


class HealthOut(Out):
    status: str = Field(examples=["ok"])


class ReadyOut(Out):
    status: str = Field(examples=["ready"])
    checks: dict[str, str] = Field(examples=[{"mongodb": "ok", "redis": "ok"}])


class StatusChangeOut(Out):
    status: Status
    changed: bool


class StoredOut(Out):
    stored: bool


class SweepOut(Out):
    """Ids of the submissions each pass acted on."""

    requeued: list[str] = Field(description="queued too long: the task was sent again")
    expired: list[str] = Field(description="the bundle was gone: ended in `error`")
    overdue: list[str] = Field(description="outlived every deadline: ended in `error`")
