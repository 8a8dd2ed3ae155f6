"""Assignments: instructors write them, students read the published ones."""

from __future__ import annotations

from collections.abc import Sequence

from flask import Blueprint, g, jsonify
from mongoengine.queryset.visitor import Q

from runner_image.contract import TestCase
from runner_image.sandbox.languages import LANGUAGES, language_problem
from tasks.launchers.deadline import runner_seconds_needed
from tasks.settings import LauncherKind
from webapp.access import can_edit, can_see, is_staff_of
from webapp.auth import login_required, object_id_or_404
from webapp.courses import courses_of, default_course, role_in
from webapp.deadlines import deadline_problem
from webapp.errors import ApiError, not_found, parse_body
from webapp.models import STAFF_ROLES, Assignment, Course, CourseRole, User, utcnow
from webapp.openapi import operation, public_api
from webapp.pagination import PageQuery, paginated
from webapp.responses import AssignmentOut, AssignmentPage
from webapp.schemas import (
    NO_TESTS,
    AssignmentCreateBody,
    AssignmentPatchBody,
    graded_by_rubric_alone,
    has_call_tests,
    tags_link_tests,
)
from webapp.serializers import assignment_json, iso
from webapp.services import app_settings

bp = Blueprint("assignments", __name__, url_prefix="/api/assignments")


def visible_assignments(user: User):
    """What `can_see` allows, as one query: every assignment of the courses the caller
    teaches, the published ones of the courses they are enrolled in."""
    roles = courses_of(user)
    staff = [course for course, role in roles.items() if role in STAFF_ROLES]
    enrolled = [course for course, role in roles.items() if role == CourseRole.STUDENT]
    return Assignment.objects(
        Q(course_id__in=staff)
        | Q(course_id__in=enrolled, published=True)
        | Q(course_id=None, owner_id=user.id)
    )


def visible_assignment_or_404(user: User, assignment_id: str) -> Assignment:
    assignment = Assignment.objects(id=object_id_or_404(assignment_id, "assignment")).first()
    if not can_see(user, assignment):
        raise not_found("assignment")
    return assignment


def _course_to_post_in(user: User, course_id: str | None) -> Course:
    if course_id is None:
        if user.role != "instructor":
            raise ApiError(403, "forbidden", "name a course_id you teach")
        return default_course(user)
    course = Course.objects(id=course_id).first()
    role = role_in(user.id, course.id) if course else None
    if role is None:
        raise not_found("course")
    if role != CourseRole.INSTRUCTOR:
        raise ApiError(403, "forbidden", "only the course's instructors post assignments")
    return course


def _language_problem(language: str) -> str | None:
    """Decided where the code will run: this machine for the local launcher, the runner
    image (all languages, unless RUNNER_LANGUAGES narrows them) for Kubernetes."""
    settings = app_settings()
    offered = settings.runner_languages or tuple(LANGUAGES)
    if language not in offered:
        return f"unknown language {language!r}; supported: {', '.join(sorted(offered))}"
    return language_problem(language) if settings.runner_launcher == LauncherKind.LOCAL else None


RUNNER_OVERHEAD_MB = 256  # the runner process, a compiler, the JVM's non-heap memory


def _check_fits_a_runner(assignment: Assignment) -> None:
    """An assignment whose worst case cannot fit a runner (its pod's memory, the longest
    deadline) would end every such submission in `error` (an uncounted attempt), so it is
    refused up front."""
    settings = app_settings()
    if settings.runner_launcher == LauncherKind.KUBERNETES:
        pod_mb = settings.runner_memory_limit_mib
        if assignment.memory_limit_mb + RUNNER_OVERHEAD_MB > pod_mb:
            raise ApiError(
                422,
                "memory_limit_too_high",
                f"memory_limit_mb {assignment.memory_limit_mb} does not fit a runner pod of "
                f"{pod_mb} MiB (the runner itself needs {RUNNER_OVERHEAD_MB})",
                {"max_memory_limit_mb": pod_mb - RUNNER_OVERHEAD_MB},
            )
    needed = runner_seconds_needed(len(assignment.tests), assignment.time_limit_ms)
    if needed > settings.runner_max_deadline_seconds:
        raise ApiError(
            422,
            "assignment_too_slow",
            f"{len(assignment.tests)} tests at {assignment.time_limit_ms} ms may need {needed} s "
            f"to grade; a runner may take at most {settings.runner_max_deadline_seconds} s",
            {"needed_seconds": needed, "limit_seconds": settings.runner_max_deadline_seconds},
        )


def _check_language(language: str, tests: Sequence[TestCase] | None) -> None:
    problem = _language_problem(language)
    if problem:
        raise ApiError(422, "unsupported_language", problem)
    if has_call_tests(tests) and language != "python":
        raise ApiError(422, "unsupported_test_kind", "call tests are only available for python")


def _check_deadlines(assignment: Assignment, due_at_sent: bool, allow_past_due: bool) -> None:
    """Consistent dates (422 invalid_deadline), and no due date in the past unless the
    instructor says so (422 due_in_past): a typo in the year would close the assignment."""
    problem = deadline_problem(assignment.due_at, assignment.late_until, assignment.penalty)
    if problem:
        raise ApiError(422, "invalid_deadline", problem)
    due_at = assignment.due_at
    if due_at_sent and due_at is not None and due_at < utcnow() and not allow_past_due:
        raise ApiError(
            422,
            "due_in_past",
            "due_at is in the past; send allow_past_due: true if that is meant",
            {"due_at": iso(due_at)},
        )


UNGRADABLE = (
    "`unsupported_language`, `unsupported_test_kind`, `memory_limit_too_high`, "
    "`assignment_too_slow`, `invalid_deadline`, `due_in_past`"
)


@bp.post("")
@operation(
    public_api,
    tags=("assignments",),
    body=AssignmentCreateBody,
    ok={201: AssignmentOut},
    errors={
        403: "not an instructor of the course",
        404: "`course_id` of a course the caller is not in",
        422: UNGRADABLE,
    },
)
@login_required()
def create_assignment():
    """Post an assignment with its tests (a course's instructors; without `course_id`, an
    instructor's own default course)."""
    body = parse_body(AssignmentCreateBody)
    course = _course_to_post_in(g.user, body.course_id)
    _check_language(body.language, body.tests)
    fields = body.model_dump(
        exclude={"tests", "feedback", "late_penalty", "allow_past_due", "course_id"}
    )
    assignment = Assignment(**fields, owner_id=g.user.id, course_id=course.id)
    assignment.test_cases = body.tests
    assignment.feedback_settings = body.feedback
    if body.late_penalty is not None:
        assignment.late_penalty = body.late_penalty.model_dump(mode="json")
    _check_deadlines(assignment, due_at_sent=True, allow_past_due=body.allow_past_due)
    _check_fits_a_runner(assignment)
    assignment.save()
    return jsonify(assignment_json(assignment, is_owner=True).json_body()), 201


@bp.get("")
@operation(public_api, tags=("assignments",), query=PageQuery, ok={200: AssignmentPage})
@login_required()
def list_assignments():
    """The assignments of the caller's courses: published ones for students, all for staff."""
    user = g.user
    return paginated(
        visible_assignments(user).order_by("-created_at"),
        lambda a: assignment_json(a, is_owner=is_staff_of(user, a)),
    )


@bp.get("/<assignment_id>")
@operation(public_api, tags=("assignments",), ok={200: AssignmentOut}, errors={404: ""})
@login_required()
def get_assignment(assignment_id: str):
    """One assignment; a student never sees hidden tests' inputs and outputs, nor the rubric."""
    assignment = visible_assignment_or_404(g.user, assignment_id)
    is_staff = is_staff_of(g.user, assignment)
    return jsonify(assignment_json(assignment, is_owner=is_staff).json_body())


@bp.patch("/<assignment_id>")
@operation(
    public_api,
    tags=("assignments",),
    body=AssignmentPatchBody,
    ok={200: AssignmentOut},
    errors={403: "a TA or student of the course", 404: "", 422: UNGRADABLE},
)
@login_required()
def patch_assignment(assignment_id: str):
    """Change an assignment's fields (its course's instructors): only the fields sent
    change. A TA, who can see it, gets 403."""
    assignment = visible_assignment_or_404(g.user, assignment_id)
    if not can_edit(g.user, assignment):
        raise ApiError(403, "forbidden", "only the course's instructors change assignments")
    body = parse_body(AssignmentPatchBody)
    changes = {name: getattr(body, name) for name in body.model_fields_set - {"allow_past_due"}}
    if {"language", "tests"} & changes.keys():
        tests = body.tests if "tests" in changes else assignment.test_cases
        _check_language(changes.get("language", assignment.language), tests)
    if "tests" in changes:
        assignment.test_cases = changes.pop("tests")
    if "feedback" in changes:
        assignment.feedback_settings = changes.pop("feedback")
    if not assignment.tests and not graded_by_rubric_alone(assignment.feedback_settings):
        raise ApiError(400, "invalid_body", NO_TESTS)
    try:
        tags_link_tests(assignment.feedback_settings, assignment.test_cases)
    except ValueError as exc:
        raise ApiError(400, "invalid_body", str(exc)) from exc
    if "late_penalty" in changes:
        penalty = changes.pop("late_penalty")
        assignment.late_penalty = penalty.model_dump(mode="json") if penalty else None
    for name, value in changes.items():
        setattr(assignment, name, value)
    assignment.updated_at = utcnow()
    _check_deadlines(assignment, "due_at" in changes, body.allow_past_due)
    _check_fits_a_runner(assignment)
    assignment.save()
    return jsonify(assignment_json(assignment, is_owner=True).json_body())
