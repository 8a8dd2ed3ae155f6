"""Per-student extensions: a student's own `due_at` (and `late_until`) replacing the
assignment's, set by its staff (webapp.deadlines says how they apply)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from webapp.auth import login_required, object_id_or_404
from webapp.blueprints.stats import STAFF_ONLY, staff_assignment_or_404
from webapp.errors import ApiError, not_found, parse_body
from webapp.models import Extension, User, utcnow
from webapp.openapi import operation, public_api
from webapp.pagination import PageQuery, paginated
from webapp.responses import ExtensionOut, ExtensionPage
from webapp.schemas import ExtensionBody
from webapp.serializers import extension_json

bp = Blueprint("extensions", __name__, url_prefix="/api/assignments")


@bp.get("/<assignment_id>/extensions")
@operation(
    public_api, tags=("deadlines",), query=PageQuery, ok={200: ExtensionPage}, errors=STAFF_ONLY
)
@login_required()
def list_extensions(assignment_id: str):
    """The assignment's extensions (staff)."""
    assignment = staff_assignment_or_404(g.user, assignment_id)
    extensions = Extension.objects(assignment_id=assignment.id).order_by("user_id")

    def render(extension: Extension) -> ExtensionOut:
        return extension_json(extension, User.objects(id=extension.user_id).first())

    return paginated(extensions, render)


@bp.put("/<assignment_id>/extensions/<user_id>")
@operation(
    public_api,
    tags=("deadlines",),
    body=ExtensionBody,
    ok={200: ExtensionOut},
    errors=STAFF_ONLY
    | {404: "the assignment, or no such account", 422: "`invalid_deadline`: no due date"},
)
@login_required()
def put_extension(assignment_id: str, user_id: str):
    """Give a student their own due date (and late window), replacing any earlier one
    (staff). It counts from the student's next submission on."""
    assignment = staff_assignment_or_404(g.user, assignment_id)
    student = User.objects(id=object_id_or_404(user_id, "user")).first()
    if student is None:
        raise not_found("user")
    body = parse_body(ExtensionBody)
    if assignment.due_at is None:
        raise ApiError(422, "invalid_deadline", "the assignment has no due date to extend")
    extension = Extension.objects(assignment_id=assignment.id, user_id=student.id).modify(
        upsert=True,
        new=True,
        set__due_at=body.due_at,
        set__late_until=body.late_until,
        set__granted_by=g.user.id,
        set__updated_at=utcnow(),
    )
    return jsonify(extension_json(extension, student).json_body())


@bp.delete("/<assignment_id>/extensions/<user_id>")
@operation(
    public_api,
    tags=("deadlines",),
    ok={204: "the extension is gone: the assignment's dates apply to the student again"},
    errors=STAFF_ONLY | {404: "the assignment, or no extension for this student"},
)
@login_required()
def delete_extension(assignment_id: str, user_id: str):
    """Remove a student's extension (staff)."""
    assignment = staff_assignment_or_404(g.user, assignment_id)
    user_oid = object_id_or_404(user_id, "extension")
    if not Extension.objects(assignment_id=assignment.id, user_id=user_oid).delete():
        raise not_found("extension")
    return "", 204
