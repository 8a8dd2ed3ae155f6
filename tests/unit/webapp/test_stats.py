"""webapp.stats: what one student's submissions add to the counters, and the report."""

from __future__ import annotations

from datetime import datetime, timedelta

from bson import ObjectId

from runner_image.contract import TestCase
from webapp.stats import (
    SubmissionFacts,
    Thresholds,
    counter_delta,
    escape_key,
    flatten,
    nest,
    score_bin,
    standing_of,
    stats_report,
    unescape_key,
)

T0 = datetime(2031, 1, 1)


def fact(minute, attempt, status, verdict, score, tests=(), tags=()):
    return SubmissionFacts(
        id=ObjectId(),
        created_at=T0 + timedelta(minutes=minute),
        attempt=attempt,
        status=status,
        verdict=verdict,
        score=score,
        max_score=100.0,
        fail_tags=tuple(tags),
        tests=tuple(tests),
    )


def test_keys_are_escaped_into_single_field_names_and_back():
    for name in ("plain", "a.b", "$where", "100%", "a%2Eb", "nul\x00byte", "ünï côdé"):
        key = escape_key(name)
        assert "." not in key and not key.startswith("$") and "\x00" not in key
        assert unescape_key(key) == name
    assert escape_key("a.b") != escape_key("a%2Eb")


def test_score_bins():
    assert [score_bin(s, 100) for s in (0, 9.99, 10, 33.3, 99.9, 100)] == [0, 0, 1, 3, 9, 9]
    assert score_bin(3, 10) == 3  # 30 %, not 2 by a rounding error
    assert score_bin(7, 10) == 7


def test_a_students_standing():
    first = fact(
        1,
        1,
        "failed",
        "wrong_answer",
        0.0,
        [("a", "wrong_answer"), ("b.x", "runtime_error")],
        ["wrong_answer", "runtime_error"],
    )
    errored = fact(2, 2, "error", "internal_error", None)
    accepted = fact(3, 2, "graded", "accepted", 100.0, [("a", "accepted"), ("b.x", "accepted")])
    latest = fact(
        4,
        3,
        "graded",
        "time_limit_exceeded",
        50.0,
        [("a", "accepted"), ("b.x", "time_limit_exceeded")],
        ["time_limit_exceeded", "partial"],
    )
    pending = fact(5, 4, "queued", None, None)

    standing = standing_of([latest, pending, first, accepted, errored])  # any order

    assert standing.submissions == 5 and standing.judged == 3
    assert standing.latest is latest and standing.best is accepted
    assert standing.first_accepted is accepted
    assert standing.counters == {
        "submitted": 5,
        "status.graded": 2,
        "status.failed": 1,
        "status.error": 1,
        "hist.0": 1,
        "hist.5": 1,
        "hist.9": 1,
        "test_runs.a": 3,
        "test_passed.a": 2,
        "test_runs.b%2Ex": 3,
        "test_passed.b%2Ex": 1,
        "tag_submissions.wrong_answer": 1,
        "tag_submissions.runtime_error": 1,
        "tag_submissions.time_limit_exceeded": 1,
        "tag_submissions.partial": 1,
        "students.submitted": 1,
        "students.judged": 1,
        "students.accepted": 1,
        # The latest judged submission decides what the student is failing now.
        "failing.b%2Ex.time_limit_exceeded": 1,
        "failing_tags.time_limit_exceeded": 1,
        "failing_tags.partial": 1,
        "best_hist.9": 1,
        "first_accept.2": 1,
    }


def test_a_student_with_nothing_judged_only_counts_as_submitted():
    standing = standing_of([fact(1, 1, "running", None, None), fact(0, 1, "error", None, None)])
    assert standing.latest is None and standing.best is None
    assert standing.counters == {"submitted": 2, "status.error": 1, "students.submitted": 1}
    assert standing_of([]).counters == {}


def test_attempts_past_the_cap_count_together():
    late = fact(1, 14, "graded", "accepted", 100.0, [("a", "accepted")])
    assert standing_of([late]).counters["first_accept.10"] == 1


def test_best_prefers_the_earliest_of_equal_scores():
    one = fact(1, 1, "graded", "wrong_answer", 50.0)
    two = fact(2, 2, "graded", "wrong_answer", 50.0)
    assert standing_of([two, one]).best is one


def test_delta_replaces_old_counters_by_new_and_nest_round_trips():
    old = {"status.graded": 1, "hist.3": 1, "failing.a.wrong_answer": 1}
    new = {"status.graded": 1, "hist.9": 1}
    assert counter_delta(old, new) == {"hist.3": -1, "hist.9": 1, "failing.a.wrong_answer": -1}
    assert counter_delta(new, new) == {}
    assert flatten(nest(old)) == old
    assert nest(old) == {
        "status": {"graded": 1},
        "hist": {"3": 1},
        "failing": {"a": {"wrong_answer": 1}},
    }


TESTS = [
    TestCase(name="small", stdin="1", expected_stdout="1"),
    TestCase(name="big.one", stdin="2", expected_stdout="2", hidden=True),
]


def _counters(judged: int, failing_big: int, tle_share: int) -> dict:
    return nest(
        {
            "submitted": judged + 2,
            "status.graded": judged,
            "test_runs.small": judged,
            "test_passed.small": judged,
            "test_runs.big%2Eone": judged,
            "test_passed.big%2Eone": judged - failing_big,
            "students.submitted": judged,
            "students.judged": judged,
            "students.accepted": judged - failing_big,
            "failing.big%2Eone.time_limit_exceeded": tle_share,
            "failing.big%2Eone.wrong_answer": failing_big - tle_share,
            "failing_tags.time_limit_exceeded": tle_share,
            "tag_submissions.time_limit_exceeded": tle_share,
            "first_accept.1": judged - failing_big,
            "hist.9": judged,
        }
    )


DEFAULTS = Thresholds(share=0.4, min_students=10)


def _report(counters, thresholds=DEFAULTS):
    return stats_report("a1", 100.0, TESTS, counters, thresholds, None)


def test_report_counts_rates_and_a_cohort_alert():
    report = _report(_counters(judged=30, failing_big=14, tle_share=12))

    assert report.submissions.total == 32 and report.submissions.in_progress == 2
    assert report.submissions.graded == 30 and report.submissions.error == 0
    assert report.students.judged == 30 and report.students.accepted == 16
    big = report.tests[1]
    assert (big.name, big.hidden, big.runs, big.passed) == ("big.one", True, 30, 16)
    assert big.pass_rate == round(16 / 30, 4)
    assert big.students_failing == 14
    assert big.verdicts == {"time_limit_exceeded": 12, "wrong_answer": 2}
    assert report.score_histogram[9].count == 30 and report.score_histogram[9].to_percent == 100
    assert report.attempts_to_first_accept[0].students == 16
    assert report.attempts_to_first_accept[-1].attempt == "10+"
    assert [(a.kind, a.name) for a in report.alerts] == [
        ("test", "big.one"),
        ("fail_tag", "time_limit_exceeded"),
    ]
    alert = report.alerts[0]
    assert alert.hidden is True and alert.students_failing == 14 and alert.students_judged == 30
    assert "hidden test 'big.one'" in alert.message and "time_limit_exceeded" in alert.message
    assert report.fail_tags[0].tag == "time_limit_exceeded"
    assert report.fail_tags[0].students_failing == 12


def test_no_alert_below_the_share_or_the_class_size():
    assert _report(_counters(judged=30, failing_big=11, tle_share=11)).alerts == []  # 37 %
    assert _report(_counters(judged=9, failing_big=9, tle_share=9)).alerts == []  # 9 students
    lenient = Thresholds(share=0.3, min_students=5)
    assert len(_report(_counters(judged=30, failing_big=11, tle_share=11), lenient).alerts) == 2


def test_an_empty_report():
    report = _report({})
    assert report.submissions.total == 0 and report.students.submitted == 0
    assert [t.pass_rate for t in report.tests] == [None, None]
    assert report.alerts == [] and report.fail_tags == []
    assert sum(b.count for b in report.score_histogram) == 0
