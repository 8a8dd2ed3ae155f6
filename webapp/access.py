"""Who may do what to an assignment and its submissions: decided here, once."""

from __future__ import annotations

from webapp.models import Assignment, User


def is_staff_of(user: User, assignment: Assignment | None) -> bool:
    """Reads everything about the assignment (hidden tests, every submission, statistics)
    and may regrade."""
    return assignment is not None and assignment.owner_id == user.id


def can_edit(user: User, assignment: Assignment | None) -> bool:
    """May change the assignment's tests and settings."""
    return assignment is not None and assignment.owner_id == user.id
