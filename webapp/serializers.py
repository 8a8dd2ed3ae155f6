"""Documents to the response models (webapp.responses). Pure: what a caller may see is
decided here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from runner_image.contract import STAFF_ONLY_METRICS, ScoreState, TestCase, TestResult
from webapp.deadlines import recorded_penalty
from webapp.models import Assignment, Extension, Submission, User
from webapp.responses import (
    AssignmentOut,
    ExtensionOut,
    HistoryEntryOut,
    ReviewOut,
    StudentOut,
    SubmissionOut,
    TestCaseOut,
    TestResultOut,
    UserOut,
)

ROW_FIELDS = {"name", "verdict", "score", "max_score", "time_ms", "memory_kb"}


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def user_json(user: User) -> UserOut:
    return UserOut(id=str(user.id), email=user.email, name=user.name, role=user.role)


def _io_fields(case: TestCase) -> set[str]:
    return {"call", "expected"} if case.call is not None else {"stdin", "expected_stdout"}


def _test_case_json(case: TestCase, reveal_hidden: bool) -> TestCaseOut:
    shown = case.model_dump(include={"name", "hidden", "weight"})
    if reveal_hidden or not case.hidden:
        shown |= case.model_dump(include=_io_fields(case) | {"compare", "tolerance"})
    return TestCaseOut(**shown)


def assignment_json(assignment: Assignment, is_owner: bool) -> AssignmentOut:
    feedback = assignment.feedback_settings
    return AssignmentOut(
        id=str(assignment.id),
        owner_id=str(assignment.owner_id),
        course_id=str(assignment.course_id) if assignment.course_id else None,
        title=assignment.title,
        description=assignment.description,
        language=assignment.language,
        starter_code=assignment.starter_code,
        tests=[_test_case_json(t, reveal_hidden=is_owner) for t in assignment.test_cases],
        time_limit_ms=assignment.time_limit_ms,
        memory_limit_mb=assignment.memory_limit_mb,
        max_score=assignment.max_score,
        max_attempts=assignment.max_attempts,
        due_at=iso(assignment.due_at),
        late_until=iso(assignment.late_until),
        late_penalty=assignment.penalty,
        counts=assignment.counts,
        published=assignment.published,
        feedback=feedback if is_owner else feedback.model_copy(update={"rubric": None}),
        created_at=iso(assignment.created_at),
        updated_at=iso(assignment.updated_at),
    )


def _test_result_json(
    result: TestResult, case: TestCase | None, reveal_hidden: bool
) -> TestResultOut:
    # Hidden now or when graded: an instructor may hide a test after results exist.
    hidden = result.hidden or (case is not None and case.hidden)
    shown = result.model_dump(include=ROW_FIELDS) | {"hidden": hidden}
    if hidden and not reveal_hidden:
        # Resource figures could spell out a hidden input; the fields stay, empty.
        shown |= {"time_ms": None, "memory_kb": None}
    if reveal_hidden or not hidden:
        if case is not None:
            shown |= case.model_dump(include=_io_fields(case))
        else:
            shown |= {"stdin": None, "expected_stdout": None}
        shown |= {"stdout": result.stdout, "message": result.message}
    return TestResultOut(**shown)


# What a student does not see while their score waits for staff's review.
PENDING_REVIEW_METRICS = frozenset({"rubric_score"})


def _metrics_json(
    metrics: dict[str, Any], is_instructor: bool, pending: bool = False
) -> dict[str, Any]:
    """Students see time and memory over public tests only (the runner sums them so), and
    none of the model's diagnostics."""
    if is_instructor:
        return dict(metrics)
    hidden = STAFF_ONLY_METRICS | (PENDING_REVIEW_METRICS if pending else frozenset())
    return {k: v for k, v in metrics.items() if k not in hidden}


def review_json(review: dict[str, Any]) -> ReviewOut:
    return ReviewOut(**review | {"at": iso(review["at"])})


def _history_entry_json(
    entry: dict[str, Any], cases: dict[str, TestCase], is_instructor: bool
) -> HistoryEntryOut:
    """An earlier round, by the rules of the current result (webapp.lifecycle.history_entry
    wrote it)."""
    staff_only = {"instructor_tags": list(entry.get("instructor_tags") or [])}
    rows = [TestResult.model_validate(row) for row in entry.get("tests") or []]
    pending = entry.get("score_state") == ScoreState.PROVISIONAL and not is_instructor
    return HistoryEntryOut(
        round=entry.get("round", 0),
        status=entry["status"],
        verdict=entry.get("verdict"),
        score=None if pending else entry.get("score"),
        max_score=entry.get("max_score"),
        fail_tags=list(entry.get("fail_tags") or []),
        feedback=entry.get("feedback"),
        tests=[_test_result_json(r, cases.get(r.name), reveal_hidden=is_instructor) for r in rows],
        metrics=_metrics_json(entry.get("metrics") or {}, is_instructor, pending),
        round_started_at=iso(entry.get("round_started_at")),
        finished_at=iso(entry.get("finished_at")),
        **(staff_only if is_instructor else {}),
    )


def submission_json(
    submission: Submission,
    assignment: Assignment | None,
    is_instructor: bool,
    student: User | None = None,
) -> SubmissionOut:
    """Students never see a hidden test's input, expected output or their output for it,
    nor a score that waits for staff's review (only its tests' part), in the current result
    or in the earlier rounds of `history`; staff also see who submitted (`student`, when
    given) and the review."""
    cases = {t.name: t for t in assignment.test_cases} if assignment else {}
    staff_only: dict[str, Any] = {}
    if is_instructor:
        staff_only["instructor_tags"] = list(submission.instructor_tags)
        if student is not None:
            staff_only["student"] = StudentOut(
                id=str(student.id), name=student.name, email=student.email
            )
        if submission.review:
            staff_only["review"] = review_json(submission.review)
    raw_score, penalty = recorded_penalty(
        submission.score, submission.raw_score, submission.penalty
    )
    score, rubric_score = submission.score, submission.rubric_score
    pending = submission.score_state == ScoreState.PROVISIONAL and not is_instructor
    if pending:
        score = raw_score = rubric_score = None
    return SubmissionOut(
        id=str(submission.id),
        assignment_id=str(submission.assignment_id),
        user_id=str(submission.user_id),
        language=submission.language,
        code=submission.code,
        status=submission.status,
        verdict=submission.verdict,
        score=score,
        raw_score=raw_score,
        tests_score=submission.tests_score,
        rubric_score=rubric_score,
        score_state=submission.score_state,
        penalty=penalty,
        late=submission.late,
        penalty_percent=submission.penalty_percent,
        max_score=submission.max_score,
        fail_tags=list(submission.fail_tags),
        feedback=submission.feedback,
        tests=[
            _test_result_json(r, cases.get(r.name), reveal_hidden=is_instructor)
            for r in submission.test_results
        ],
        metrics=_metrics_json(submission.metrics, is_instructor, pending),
        attempt=submission.attempt,
        job_name=submission.job_name,
        created_at=iso(submission.created_at),
        scheduled_at=iso(submission.scheduled_at),
        started_at=iso(submission.started_at),
        finished_at=iso(submission.finished_at),
        round=submission.round,
        round_started_at=iso(submission.round_started_at),
        history=[_history_entry_json(e, cases, is_instructor) for e in submission.history],
        is_reference=submission.is_reference,
        **staff_only,
    )


def extension_json(extension: Extension, student: User | None) -> ExtensionOut:
    return ExtensionOut(
        assignment_id=str(extension.assignment_id),
        user_id=str(extension.user_id),
        name=student.name if student else None,
        email=student.email if student else None,
        due_at=iso(extension.due_at),
        late_until=iso(extension.late_until),
        granted_by=str(extension.granted_by),
        updated_at=iso(extension.updated_at),
    )
