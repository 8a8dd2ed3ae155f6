"""Who may do what to an assignment and its submissions: decided here, once, from the
caller's role in the assignment's course."""

from __future__ import annotations

from webapp.courses import role_in
from webapp.models import STAFF_ROLES, Assignment, CourseRole, User


def course_role(user: User, assignment: Assignment | None) -> CourseRole | None:
    """An assignment from before courses (not yet migrated) has only its owner."""
    if assignment is None:
        return None
    if assignment.course_id is None:
        return CourseRole.INSTRUCTOR if assignment.owner_id == user.id else None
    return role_in(user.id, assignment.course_id)


def is_staff_of(user: User, assignment: Assignment | None) -> bool:
    """Reads everything about the assignment (hidden tests, every submission and who made
    it, statistics) and may regrade: the course's instructors and TAs."""
    return course_role(user, assignment) in STAFF_ROLES


def can_edit(user: User, assignment: Assignment | None) -> bool:
    """May change the assignment's tests and settings: the course's instructors."""
    return course_role(user, assignment) == CourseRole.INSTRUCTOR


def can_see(user: User, assignment: Assignment | None) -> bool:
    """Staff see drafts too; enrolled students see what is published."""
    role = course_role(user, assignment)
    return role in STAFF_ROLES or (role == CourseRole.STUDENT and assignment.published)
