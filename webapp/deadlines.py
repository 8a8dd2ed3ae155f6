"""Due dates, late windows and late penalties: pure rules, decided once per submission.

A submission made by its student's `due_at` is on time. One made after it but by
`late_until` is accepted and marked late; one made after `late_until` (or after `due_at`
when there is no late window) is refused. A late submission loses `late_penalty.percent`
percent of `max_score` per started hour (or day) past `due_at`, at most 100 %: the percent
is decided when the submission is made (from its `created_at`) and applied to the score
when its result is stored, never more than the raw score itself (a score is never
negative). A student's extension replaces the assignment's dates for that student."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field


class PenaltyPer(StrEnum):
    HOUR = "hour"
    DAY = "day"


UNIT = {PenaltyPer.HOUR: timedelta(hours=1), PenaltyPer.DAY: timedelta(days=1)}


class LatePenalty(BaseModel):
    percent: float = Field(gt=0, le=100, description="percent of max_score per started unit")
    per: PenaltyPer


@dataclass(frozen=True)
class Deadlines:
    due_at: datetime | None
    late_until: datetime | None = None


@dataclass(frozen=True)
class Lateness:
    late: bool
    penalty_percent: float = 0.0


ON_TIME = Lateness(late=False)


def deadline_problem(
    due_at: datetime | None, late_until: datetime | None, penalty: LatePenalty | None
) -> str | None:
    """What is inconsistent about an assignment's (or an extension's) dates, if anything."""
    if late_until is not None and due_at is None:
        return "late_until needs a due_at"
    if late_until is not None and due_at is not None and late_until <= due_at:
        return "late_until must be after due_at"
    if penalty is not None and late_until is None:
        return "a late_penalty needs a late window (late_until)"
    return None


def student_deadlines(assignment: Deadlines, extension: Deadlines | None) -> Deadlines:
    """An extension's dates replace the assignment's; without its own `late_until` it keeps
    the assignment's late window when that still ends after the extended due date. An
    assignment without a due date has none for anyone."""
    if extension is None or assignment.due_at is None:
        return assignment
    late_until = extension.late_until
    inherited = assignment.late_until
    if late_until is None and inherited is not None and inherited > extension.due_at:
        late_until = inherited
    return Deadlines(due_at=extension.due_at, late_until=late_until)


def penalty_percent(late_by: timedelta, penalty: LatePenalty | None) -> float:
    """`percent` per started unit past the due date, at most 100."""
    if penalty is None or late_by <= timedelta(0):
        return 0.0
    units = math.ceil(late_by / UNIT[penalty.per])
    return min(100.0, penalty.percent * units)


def lateness(
    submitted_at: datetime, deadlines: Deadlines, penalty: LatePenalty | None
) -> Lateness | None:
    """How late a submission made at `submitted_at` is, or None when it is past every
    window and must be refused."""
    if deadlines.due_at is None or submitted_at <= deadlines.due_at:
        return ON_TIME
    if deadlines.late_until is None or submitted_at > deadlines.late_until:
        return None
    late_by = submitted_at - deadlines.due_at
    return Lateness(late=True, penalty_percent=penalty_percent(late_by, penalty))


@dataclass(frozen=True)
class Scored:
    score: float | None
    raw_score: float | None
    penalty: float | None


def apply_penalty(raw_score: float | None, max_score: float, percent: float) -> Scored:
    """`score = raw_score - penalty`, the penalty being `percent` of `max_score` but never
    more than the raw score. No score (an `error`), no penalty."""
    if raw_score is None:
        return Scored(score=None, raw_score=None, penalty=None)
    penalty = round(min(raw_score, max_score * percent / 100), 6) if percent > 0 else 0.0
    return Scored(score=round(raw_score - penalty, 6), raw_score=raw_score, penalty=penalty)


def recorded_penalty(
    score: float | None, raw_score: float | None, penalty: float | None
) -> tuple[float | None, float | None]:
    """(raw_score, penalty) of a stored submission. A result stored before late penalties
    existed has neither: its score is its raw score."""
    if raw_score is None and score is not None:
        return score, 0.0
    return raw_score, penalty
