"""Assignments: instructors write them, students read the published ones."""

from __future__ import annotations

from collections.abc import Sequence

from flask import Blueprint, g, jsonify
from mongoengine.queryset.visitor import Q

from runner_image.contract import TestCase
from runner_image.sandbox.languages import LANGUAGES, language_problem
from tasks.launchers.deadline import runner_seconds_needed
from tasks.settings import LauncherKind
from webapp.auth import login_required, object_id_or_404
from webapp.errors import ApiError, not_found, parse_body
from webapp.models import Assignment, User, utcnow
from webapp.pagination import paginated
from webapp.schemas import AssignmentCreateBody, AssignmentPatchBody, has_call_tests
from webapp.serializers import assignment_json
from webapp.services import app_settings

bp = Blueprint("assignments", __name__, url_prefix="/api/assignments")


def visible_assignments(user: User):
    if user.role == "instructor":
        return Assignment.objects(Q(published=True) | Q(owner_id=user.id))
    return Assignment.objects(published=True)


def visible_assignment_or_404(user: User, assignment_id: str) -> Assignment:
    assignment = (
        visible_assignments(user).filter(id=object_id_or_404(assignment_id, "assignment")).first()
    )
    if assignment is None:
        raise not_found("assignment")
    return assignment


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


@bp.post("")
@login_required("instructor")
def create_assignment():
    body = parse_body(AssignmentCreateBody)
    _check_language(body.language, body.tests)
    assignment = Assignment(**body.model_dump(exclude={"tests", "feedback"}), owner_id=g.user.id)
    assignment.test_cases = body.tests
    assignment.feedback_settings = body.feedback
    _check_fits_a_runner(assignment)
    assignment.save()
    return jsonify(assignment_json(assignment, is_owner=True)), 201


@bp.get("")
@login_required()
def list_assignments():
    user = g.user
    return paginated(
        visible_assignments(user).order_by("-created_at"),
        lambda a: assignment_json(a, is_owner=a.owner_id == user.id),
    )


@bp.get("/<assignment_id>")
@login_required()
def get_assignment(assignment_id: str):
    assignment = visible_assignment_or_404(g.user, assignment_id)
    return jsonify(assignment_json(assignment, is_owner=assignment.owner_id == g.user.id))


@bp.patch("/<assignment_id>")
@login_required("instructor")
def patch_assignment(assignment_id: str):
    assignment = Assignment.objects(
        id=object_id_or_404(assignment_id, "assignment"), owner_id=g.user.id
    ).first()
    if assignment is None:
        raise not_found("assignment")
    body = parse_body(AssignmentPatchBody)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    if {"language", "tests"} & changes.keys():
        tests = body.tests if "tests" in changes else assignment.test_cases
        _check_language(changes.get("language", assignment.language), tests)
    if "tests" in changes:
        assignment.test_cases = changes.pop("tests")
    if "feedback" in changes:
        assignment.feedback_settings = changes.pop("feedback")
    for name, value in changes.items():
        setattr(assignment, name, value)
    assignment.updated_at = utcnow()
    _check_fits_a_runner(assignment)
    assignment.save()
    return jsonify(assignment_json(assignment, is_owner=True))
