"""What the API answers, as pydantic models: the serializers build them and the OpenAPI
document (webapp.openapi) is generated from them, so the two cannot disagree."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from runner_image.contract import Compare, FeedbackSettings, ScoreState, Status, Verdict
from webapp.deadlines import LatePenalty
from webapp.gradebook import Counts

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
    course_id: str | None
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
    late_until: str | None = Field(description="end of the late window; null: none")
    late_penalty: LatePenalty | None
    counts: Counts = Field(description="which submission of a student the gradebook counts")
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


class StudentOut(Out):
    """Who submitted, for the course's staff."""

    id: str
    name: str
    email: str


class ReviewOut(Out):
    """Staff's decision on a provisional score."""

    action: str = Field(description="`confirmed` (the model's rubric score kept) or `overridden`")
    by: str = Field(description="the reviewer's user id")
    at: str | None
    model_rubric_score: float = Field(description="what the model gave")
    rubric_score: float = Field(description="what counts now")
    note: str


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
    score: float | None = Field(description="what counts: raw_score - penalty")
    raw_score: float | None = Field(description="the score the tests and rubric gave")
    penalty: float | None = Field(description="points taken off for lateness")
    late: bool = Field(description="made after the student's due date, in the late window")
    penalty_percent: float = Field(
        description="percent of max_score the late penalty takes, decided at submit"
    )
    max_score: float
    tests_score: float | None = Field(
        default=None, description="the tests' part of `raw_score`: final as soon as it is stored"
    )
    rubric_score: float | None = Field(
        default=None,
        description="the rubric's part; null for the student while `score_state` is provisional",
    )
    score_state: ScoreState | None = Field(
        default=None,
        description="`provisional` until the course's staff review a score the model weighs "
        "on (a rubric weight above 0.3, no tests, or a suspected injection); then `final`. "
        "While provisional the student's `score` and `raw_score` are null",
    )
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
    instructor_tags: list[str] | None = Field(default=None, description="staff only")
    student: StudentOut | None = Field(default=None, description="staff only")
    review: ReviewOut | None = Field(default=None, description="staff only")
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


class CourseOut(Out):
    id: str
    title: str = Field(examples=["Programming 1"])
    owner_id: str
    role: str = Field(description="the caller's role: `instructor`, `ta` or `student`")
    is_default: bool = Field(
        description="the owner's course for assignments posted without a `course_id`"
    )
    join_code: str | None = Field(default=None, description="staff only", examples=["K7PQ2MXA"])
    created_at: str | None


class CoursePage(Page[CourseOut]):
    pass


class MemberOut(Out):
    user: UserOut
    role: str


class EnrolmentOut(Out):
    enrolled: list[str] = Field(description="e-mails enrolled now")
    pending: list[str] = Field(
        description="e-mails without an account yet: enrolled when they register"
    )
    already: list[str] = Field(description="e-mails already enrolled or pending")


class StandingOut(Out):
    assignments: int = Field(description="assignments of the course")
    submitted: int = Field(description="assignments the student submitted to")
    accepted: int = Field(description="assignments with an accepted submission")
    best_score_total: float = Field(description="sum over assignments of the best score")
    max_score_total: float
    submissions: int


class RosterEntryOut(Out):
    student: StudentOut
    enrolled_at: str | None
    standing: StandingOut


class RosterOut(Out):
    students: list[RosterEntryOut]
    pending: list[str] = Field(description="enrolled e-mails without an account yet")
    staff: list[MemberOut]


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
    relaunched: list[str] = Field(description="their runner never reported: a fresh runner")
    rebuilt: list[str] = Field(description="bundles Redis had lost, rebuilt from MongoDB")
    expired: list[str] = Field(description="could not be graded any more: ended in `error`")
    overdue: list[str] = Field(
        description="past their deadline, every fresh runner spent: ended in `error`"
    )


class ExtensionOut(Out):
    """One student's own dates for an assignment, replacing the assignment's."""

    assignment_id: str
    user_id: str
    name: str | None = Field(examples=["Ada Lovelace"], description="null: no such account")
    email: str | None = Field(examples=["ada@example.org"])
    due_at: str
    late_until: str | None = Field(
        description="null: the assignment's late window if it ends after due_at, else none"
    )
    granted_by: str
    updated_at: str | None


class ExtensionPage(Page[ExtensionOut]):
    pass


class StatusCounts(Out):
    """Submissions by status; `in_progress` is queued, scheduled or running."""

    total: int
    in_progress: int
    graded: int
    failed: int
    error: int


class StudentCounts(Out):
    submitted: int = Field(description="students with at least one submission")
    judged: int = Field(description="students with a graded or failed submission")
    accepted: int = Field(description="students with an accepted submission")


class HistogramBin(Out):
    """Scores from from_percent (included) to to_percent (excluded, but 100 included) of
    max_score."""

    from_percent: int
    to_percent: int
    count: int


class TestStatsOut(Out):
    __test__ = False

    name: str
    hidden: bool
    runs: int = Field(description="graded or failed submissions that ran this test")
    passed: int
    pass_rate: float | None = Field(description="passed / runs; null before any run")
    students_failing: int = Field(description="judged students whose latest submission fails it")
    failing_share: float | None = Field(description="students_failing / judged students")
    verdicts: dict[str, int] = Field(
        description="students_failing by their failing verdict", examples=[{"wrong_answer": 3}]
    )


class FailTagStatsOut(Out):
    tag: str
    submissions: int = Field(description="graded or failed submissions with this tag")
    students_failing: int = Field(description="judged students whose latest submission has it")
    failing_share: float | None


class AttemptsBin(Out):
    attempt: str = Field(examples=["1", "10+"])
    students: int = Field(description="students whose first accepted submission is this attempt")


class CohortAlertOut(Out):
    kind: Literal["test", "fail_tag"]
    name: str
    hidden: bool | None = Field(default=None, description="for a test")
    students_failing: int
    students_judged: int
    share: float
    verdicts: dict[str, int] | None = Field(default=None, description="for a test")
    message: str


class AlertThresholds(Out):
    share: float = Field(description="STATS_ALERT_SHARE")
    min_students: int = Field(description="STATS_ALERT_MIN_STUDENTS")


class ReviewAgreementOut(Out):
    """How far the course's staff agree with the model on provisional scores."""

    pending: int = Field(description="provisional scores waiting for a review")
    reviewed: int
    confirmed: int
    overridden: int
    confirmed_share: float | None = Field(description="confirmed / reviewed")
    mean_change: float | None = Field(description="mean of staff's minus the model's score")
    mean_abs_change: float | None


class AssignmentStatsOut(Out):
    """Maintained as results are stored: reading it costs the same for any number of
    submissions."""

    assignment_id: str
    max_score: float
    submissions: StatusCounts
    students: StudentCounts
    score_histogram: list[HistogramBin] = Field(description="every graded or failed submission")
    best_score_histogram: list[HistogramBin] = Field(description="each student's best score")
    tests: list[TestStatsOut]
    fail_tags: list[FailTagStatsOut]
    attempts_to_first_accept: list[AttemptsBin]
    alerts: list[CohortAlertOut]
    alert_thresholds: AlertThresholds
    review: ReviewAgreementOut | None = Field(
        default=None, description="staff's agreement with the model on provisional scores"
    )
    updated_at: str | None
