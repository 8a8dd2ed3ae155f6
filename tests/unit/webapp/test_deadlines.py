"""webapp.deadlines: when a submission is on time, late or refused, and what lateness costs."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from webapp.deadlines import (
    Deadlines,
    LatePenalty,
    apply_penalty,
    deadline_problem,
    lateness,
    penalty_percent,
    recorded_penalty,
    student_deadlines,
)

DUE = datetime(2031, 3, 1, 12, 0)
WINDOW = Deadlines(due_at=DUE, late_until=DUE + timedelta(days=3))
TEN_PER_HOUR = LatePenalty(percent=10, per="hour")
FIFTEEN_PER_DAY = LatePenalty(percent=15, per="day")


@pytest.mark.parametrize(
    ("late_by", "penalty", "percent"),
    [
        (timedelta(0), TEN_PER_HOUR, 0.0),
        (timedelta(seconds=1), TEN_PER_HOUR, 10.0),  # a started hour counts
        (timedelta(hours=1), TEN_PER_HOUR, 10.0),
        (timedelta(hours=1, milliseconds=1), TEN_PER_HOUR, 20.0),
        (timedelta(hours=9, minutes=30), TEN_PER_HOUR, 100.0),
        (timedelta(hours=30), TEN_PER_HOUR, 100.0),  # capped
        (timedelta(hours=23), FIFTEEN_PER_DAY, 15.0),
        (timedelta(days=2, minutes=1), FIFTEEN_PER_DAY, 45.0),
        (timedelta(days=2), None, 0.0),
    ],
)
def test_penalty_is_percent_per_started_unit_capped_at_100(late_by, penalty, percent):
    assert penalty_percent(late_by, penalty) == pytest.approx(percent)


def test_on_time_late_and_refused():
    assert lateness(DUE, WINDOW, TEN_PER_HOUR).late is False
    late = lateness(DUE + timedelta(minutes=90), WINDOW, TEN_PER_HOUR)
    assert late.late is True and late.penalty_percent == 20.0
    last_moment = lateness(WINDOW.late_until, WINDOW, TEN_PER_HOUR)
    assert last_moment.late is True and last_moment.penalty_percent == 100.0
    assert lateness(WINDOW.late_until + timedelta(milliseconds=1), WINDOW, TEN_PER_HOUR) is None


def test_without_a_late_window_after_the_due_date_is_refused():
    assert lateness(DUE + timedelta(seconds=1), Deadlines(due_at=DUE), None) is None
    assert lateness(datetime(2099, 1, 1), Deadlines(due_at=None), None).late is False


def test_late_without_a_penalty_costs_nothing():
    late = lateness(DUE + timedelta(days=1), WINDOW, None)
    assert late.late is True and late.penalty_percent == 0.0


def test_penalty_is_taken_from_the_raw_score_never_below_zero():
    scored = apply_penalty(80.0, 100.0, 30.0)
    assert (scored.score, scored.raw_score, scored.penalty) == (50.0, 80.0, 30.0)
    floored = apply_penalty(20.0, 100.0, 30.0)
    assert (floored.score, floored.raw_score, floored.penalty) == (0.0, 20.0, 20.0)
    on_time = apply_penalty(33.3, 100.0, 0.0)
    assert (on_time.score, on_time.raw_score, on_time.penalty) == (33.3, 33.3, 0.0)
    scaled = apply_penalty(9.0, 10.0, 10.0)  # percent of max_score, not of the raw score
    assert scaled.score == 8.0 and scaled.penalty == 1.0
    error = apply_penalty(None, 100.0, 30.0)
    assert (error.score, error.raw_score, error.penalty) == (None, None, None)


def test_results_stored_before_penalties_existed_read_as_unpenalised():
    assert recorded_penalty(70.0, None, None) == (70.0, 0.0)
    assert recorded_penalty(50.0, 80.0, 30.0) == (80.0, 30.0)
    assert recorded_penalty(None, None, None) == (None, None)


def test_an_extension_replaces_the_dates_and_keeps_a_later_late_window():
    extended = student_deadlines(WINDOW, Deadlines(due_at=DUE + timedelta(days=1)))
    assert extended == Deadlines(due_at=DUE + timedelta(days=1), late_until=WINDOW.late_until)
    beyond = student_deadlines(WINDOW, Deadlines(due_at=DUE + timedelta(days=5)))
    assert beyond == Deadlines(due_at=DUE + timedelta(days=5), late_until=None)
    own = Deadlines(due_at=DUE + timedelta(days=1), late_until=DUE + timedelta(days=9))
    assert student_deadlines(WINDOW, own) == own
    assert student_deadlines(WINDOW, None) == WINDOW
    no_due = Deadlines(due_at=None)
    assert student_deadlines(no_due, own) == no_due


@pytest.mark.parametrize(
    ("due_at", "late_until", "penalty", "problem"),
    [
        (DUE, None, None, None),
        (DUE, DUE + timedelta(hours=1), TEN_PER_HOUR, None),
        (None, DUE, None, "late_until needs a due_at"),
        (DUE, DUE, None, "late_until must be after due_at"),
        (DUE, None, TEN_PER_HOUR, "a late_penalty needs a late window (late_until)"),
    ],
)
def test_deadline_problems(due_at, late_until, penalty, problem):
    assert deadline_problem(due_at, late_until, penalty) == problem
