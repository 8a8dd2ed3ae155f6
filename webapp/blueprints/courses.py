"""Courses: an instructor creates one and owns it; staff (instructors, TAs) are per course;
students join with the course's join code or are enrolled by e-mail or roster CSV. A
course the caller is not in is a 404; one they are in but may not manage, a 403."""

from __future__ import annotations

from collections import defaultdict

from flask import Blueprint, Response, g, jsonify, stream_with_context

from webapp.auth import login_required, object_id_or_404
from webapp.courses import (
    RosterError,
    courses_of,
    create_course,
    enrol,
    enrol_emails,
    normalise_join_code,
    role_in,
    roster_emails,
    rotate_join_code,
    set_staff_role,
)
from webapp.errors import ApiError, not_found, parse_body
from webapp.gradebook import gradebook_lines
from webapp.limits import limiter
from webapp.models import (
    STAFF_ROLES,
    Assignment,
    Course,
    CourseRole,
    Membership,
    PendingEnrolment,
    StudentStanding,
    User,
)
from webapp.openapi import operation, public_api
from webapp.pagination import PageQuery, paginated
from webapp.responses import (
    CourseOut,
    CoursePage,
    EnrolmentOut,
    MemberOut,
    RosterEntryOut,
    RosterOut,
    StandingOut,
    StudentOut,
)
from webapp.schemas import (
    CourseCreateBody,
    CoursePatchBody,
    EnrolBody,
    JoinBody,
    RosterBody,
    StaffBody,
)
from webapp.serializers import iso, user_json
from webapp.services import app_settings

bp = Blueprint("courses", __name__, url_prefix="/api/courses")

TAGS = ("courses",)
NOT_STAFF = "a student of the course"
NOT_INSTRUCTOR = "a TA or student of the course"


def course_json(course: Course, role: CourseRole) -> CourseOut:
    staff_only = {"join_code": course.join_code} if role in STAFF_ROLES else {}
    return CourseOut(
        id=str(course.id),
        title=course.title,
        owner_id=str(course.owner_id),
        role=role,
        is_default=course.is_default,
        created_at=iso(course.created_at),
        **staff_only,
    )


def course_or_404(user: User, course_id: str, *allowed: CourseRole) -> tuple[Course, CourseRole]:
    course = Course.objects(id=object_id_or_404(course_id, "course")).first()
    role = role_in(user.id, course.id) if course else None
    if role is None:
        raise not_found("course")
    if allowed and role not in allowed:
        raise ApiError(403, "forbidden", f"this needs the course role {' or '.join(allowed)}")
    return course, role


STAFF = (CourseRole.INSTRUCTOR, CourseRole.TA)


@bp.post("")
@operation(public_api, tags=TAGS, body=CourseCreateBody, ok={201: CourseOut}, errors={403: ""})
@login_required("instructor")
def create():
    """Create a course (instructors): the caller owns it and is its first instructor."""
    body = parse_body(CourseCreateBody)
    course = create_course(g.user, body.title)
    return jsonify(course_json(course, CourseRole.INSTRUCTOR).json_body()), 201


@bp.get("")
@operation(public_api, tags=TAGS, query=PageQuery, ok={200: CoursePage})
@login_required()
def list_courses():
    """The courses the caller teaches or is enrolled in, with their role in each."""
    roles = courses_of(g.user)
    return paginated(
        Course.objects(id__in=list(roles)).order_by("-created_at"),
        lambda course: course_json(course, roles[course.id]),
    )


@bp.get("/<course_id>")
@operation(public_api, tags=TAGS, ok={200: CourseOut}, errors={404: ""})
@login_required()
def get_course(course_id: str):
    """One course of the caller's; its join code for staff."""
    course, role = course_or_404(g.user, course_id)
    return jsonify(course_json(course, role).json_body())


@bp.patch("/<course_id>")
@operation(
    public_api,
    tags=TAGS,
    body=CoursePatchBody,
    ok={200: CourseOut},
    errors={403: NOT_INSTRUCTOR, 404: ""},
)
@login_required()
def patch_course(course_id: str):
    """Rename a course (its instructors)."""
    course, role = course_or_404(g.user, course_id, CourseRole.INSTRUCTOR)
    course.title = parse_body(CoursePatchBody).title
    course.save()
    return jsonify(course_json(course, role).json_body())


@bp.post("/join")
@operation(
    public_api,
    tags=TAGS,
    body=JoinBody,
    ok={200: CourseOut},
    errors={404: "no course has this join code", 429: "per client address"},
)
@limiter.limit(lambda: app_settings().rate_limit_join)
@login_required()
def join():
    """Enrol in a course with its join code (any account); a member keeps their role."""
    code = normalise_join_code(parse_body(JoinBody).join_code)
    course = Course.objects(join_code=code).first()
    if course is None:
        raise ApiError(404, "not_found", "no course has this join code")
    enrol(course.id, g.user.id)
    return jsonify(course_json(course, role_in(g.user.id, course.id)).json_body())


@bp.post("/<course_id>/join-code")
@operation(public_api, tags=TAGS, ok={200: CourseOut}, errors={403: NOT_STAFF, 404: ""})
@login_required()
def rotate_code(course_id: str):
    """Draw a new join code (staff): the old one stops working; members stay enrolled."""
    course, role = course_or_404(g.user, course_id, *STAFF)
    return jsonify(course_json(rotate_join_code(course), role).json_body())


@bp.post("/<course_id>/staff")
@operation(
    public_api,
    tags=TAGS,
    body=StaffBody,
    ok={200: MemberOut},
    errors={
        403: NOT_INSTRUCTOR,
        404: "",
        409: "`course_owner`: the owner's role does not change",
        422: "`no_such_account`: staff need an account",
    },
)
@login_required()
def add_staff(course_id: str):
    """Make an account an instructor or TA of the course (its instructors)."""
    course, _ = course_or_404(g.user, course_id, CourseRole.INSTRUCTOR)
    body = parse_body(StaffBody)
    user = User.objects(email=body.email).first()
    if user is None:
        raise ApiError(422, "no_such_account", f"no account has the e-mail {body.email}")
    if user.id == course.owner_id:
        raise ApiError(409, "course_owner", "the course's owner stays its instructor")
    set_staff_role(course.id, user.id, CourseRole(body.role))
    return jsonify(MemberOut(user=user_json(user), role=body.role).json_body())


@bp.delete("/<course_id>/staff/<user_id>")
@operation(
    public_api,
    tags=TAGS,
    ok={204: "removed from the course"},
    errors={403: NOT_INSTRUCTOR, 404: "", 409: "`course_owner`: the owner cannot be removed"},
)
@login_required()
def remove_staff(course_id: str, user_id: str):
    """Remove an instructor or TA from the course (its instructors)."""
    course, _ = course_or_404(g.user, course_id, CourseRole.INSTRUCTOR)
    oid = object_id_or_404(user_id, "staff member")
    if oid == course.owner_id:
        raise ApiError(409, "course_owner", "the course's owner stays its instructor")
    removed = Membership.objects(
        course_id=course.id, user_id=oid, role__in=[str(r) for r in STAFF_ROLES]
    ).delete()
    if not removed:
        raise not_found("staff member")
    return "", 204


@bp.post("/<course_id>/students")
@operation(
    public_api,
    tags=TAGS,
    body=EnrolBody,
    ok={200: EnrolmentOut},
    errors={403: NOT_STAFF, 404: ""},
)
@login_required()
def enrol_students(course_id: str):
    """Enrol students by e-mail (staff); an address without an account is enrolled when it
    registers."""
    course, _ = course_or_404(g.user, course_id, *STAFF)
    report = enrol_emails(course, parse_body(EnrolBody).emails)
    return jsonify(EnrolmentOut(**vars(report)).json_body())


@bp.post("/<course_id>/roster")
@operation(
    public_api,
    tags=TAGS,
    body=RosterBody,
    ok={200: EnrolmentOut},
    errors={400: "`invalid_roster`: details.errors lists each bad line", 403: NOT_STAFF, 404: ""},
)
@login_required()
def upload_roster(course_id: str):
    """Enrol the students of a roster CSV (staff): all lines valid, or nothing is applied."""
    course, _ = course_or_404(g.user, course_id, *STAFF)
    try:
        emails = roster_emails(parse_body(RosterBody).csv)
    except RosterError as exc:
        raise ApiError(400, "invalid_roster", str(exc), {"errors": exc.problems}) from exc
    return jsonify(EnrolmentOut(**vars(enrol_emails(course, emails))).json_body())


@bp.delete("/<course_id>/students/<user_id>")
@operation(
    public_api,
    tags=TAGS,
    ok={204: "unenrolled (their submissions are kept)"},
    errors={403: NOT_STAFF, 404: ""},
)
@login_required()
def unenrol_student(course_id: str, user_id: str):
    """Remove a student from the course (staff)."""
    course, _ = course_or_404(g.user, course_id, *STAFF)
    oid = object_id_or_404(user_id, "student")
    if not Membership.objects(course_id=course.id, user_id=oid, role=CourseRole.STUDENT).delete():
        raise not_found("student")
    return "", 204


@bp.get("/<course_id>/students")
@operation(public_api, tags=TAGS, ok={200: RosterOut}, errors={403: NOT_STAFF, 404: ""})
@login_required()
def roster(course_id: str):
    """The roster (staff): each student with their standing, the pending e-mails and the
    staff."""
    course, _ = course_or_404(g.user, course_id, *STAFF)
    members = list(Membership.objects(course_id=course.id))
    users = {u.id: u for u in User.objects(id__in=[m.user_id for m in members])}
    assignments = list(Assignment.objects(course_id=course.id).only("id", "max_score"))
    standings = _standings(assignments, [m.user_id for m in members if m.role == "student"])
    students = [
        RosterEntryOut(
            student=StudentOut(id=str(user.id), name=user.name, email=user.email),
            enrolled_at=iso(member.created_at),
            standing=standings[member.user_id],
        )
        for member in members
        if member.role == CourseRole.STUDENT and (user := users.get(member.user_id))
    ]
    staff = [
        MemberOut(user=user_json(users[m.user_id]), role=m.role)
        for m in members
        if m.role in STAFF_ROLES and m.user_id in users
    ]
    pending = [p.email for p in PendingEnrolment.objects(course_id=course.id).order_by("email")]
    return jsonify(RosterOut(students=students, pending=pending, staff=staff).json_body())


def _standings(assignments: list[Assignment], student_ids: list) -> dict:
    """Per student, from their standings (kept as results are stored, webapp.stats_store):
    what they submitted to, what was accepted, their best scores."""
    own = defaultdict(list)
    for standing in StudentStanding.objects(
        assignment_id__in=[a.id for a in assignments], user_id__in=student_ids
    ).only("user_id", "submissions", "best_score", "first_accepted_attempt"):
        own[standing.user_id].append(standing)
    max_total = sum(a.max_score for a in assignments)
    return {
        student: StandingOut(
            assignments=len(assignments),
            submitted=sum(1 for s in own[student] if s.submissions),
            accepted=sum(1 for s in own[student] if s.first_accepted_attempt is not None),
            best_score_total=sum(s.best_score or 0.0 for s in own[student]),
            max_score_total=max_total,
            submissions=sum(s.submissions for s in own[student]),
        )
        for student in student_ids
    }


@bp.get("/<course_id>/gradebook.csv")
@operation(
    public_api,
    tags=TAGS,
    ok={200: "`text/csv`: one row per student (by name), one column per assignment"},
    errors={403: NOT_STAFF, 404: ""},
)
@login_required()
def gradebook(course_id: str):
    """The course's gradebook (staff): each student's best or last score of each
    assignment, as the assignment counts it, with totals; safe to open in a spreadsheet."""
    course, _ = course_or_404(g.user, course_id, *STAFF)
    student_ids = [
        m.user_id for m in Membership.objects(course_id=course.id, role=CourseRole.STUDENT)
    ]
    students = list(User.objects(id__in=student_ids).only("name", "email").order_by("name"))
    assignments = list(
        Assignment.objects(course_id=course.id)
        .only("title", "max_score", "counts")
        .order_by("created_at")
    )
    standings = {
        (standing.assignment_id, standing.user_id): standing
        for standing in StudentStanding.objects(
            assignment_id__in=[a.id for a in assignments], user_id__in=student_ids
        ).only("assignment_id", "user_id", "best_score", "latest_score")
    }
    return Response(
        stream_with_context(gradebook_lines(students, assignments, standings)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="course-{course.id}-gradebook.csv"',
            "Cache-Control": "no-store",
        },
    )
