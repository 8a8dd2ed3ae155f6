"""GET /api/assignments/<id>/stats and the counters behind it: kept up to date as results
are stored (webapp.stats_store), equal to a rebuild from the submissions, read from one
document."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from bson import ObjectId
from click.testing import CliRunner

import webapp.services
import webapp.stats_store as stats_store
from runner_image.contract import Result, Verdict
from tests.stats_seed import START, seeded_class, submission_doc
from webapp.cli import main
from webapp.lifecycle import store_result
from webapp.models import AssignmentStats, StudentStanding, Submission, utcnow
from webapp.stats_store import rebuild_stats, refresh_student

TESTS = ("public", "secret")


def _result(verdicts: dict[str, str], score: float | None = None) -> dict[str, Any]:
    """A runner's result for the fixture assignment (public weight 1, secret weight 2)."""
    weights = {"public": 100 / 3, "secret": 200 / 3}
    passed = [name for name, verdict in verdicts.items() if verdict == Verdict.ACCEPTED]
    failing = [verdict for verdict in verdicts.values() if verdict != Verdict.ACCEPTED]
    total = round(sum(weights[name] for name in passed), 4) if score is None else score
    return {
        "status": "graded" if passed else "failed",
        "verdict": failing[0] if failing else "accepted",
        "score": total,
        "max_score": 100,
        "fail_tags": sorted(set(failing)) + (["partial"] if passed and failing else []),
        "tests": [
            {
                "name": name,
                "verdict": verdict,
                "score": weights[name] if verdict == Verdict.ACCEPTED else 0,
                "max_score": weights[name],
                "hidden": name == "secret",
            }
            for name, verdict in verdicts.items()
        ],
        "metrics": {"tests_passed": len(passed), "tests_total": len(verdicts)},
    }


ALL_PASS = {"public": "accepted", "secret": "accepted"}
SECRET_TLE = {"public": "accepted", "secret": "time_limit_exceeded"}
NOTHING = {"public": "wrong_answer", "secret": "wrong_answer"}


@pytest.fixture
def grade(submit, internal_post):
    """Submit as `who`, then store `verdicts` as the runner's result; the submission id."""

    def _grade(who, assignment_id: str, verdicts: dict[str, str] | None, **result: Any) -> str:
        made = submit(who, assignment_id)
        assert made.status_code == 202, made.get_json()
        submission_id = made.get_json()["id"]
        if verdicts is not None:
            stored = internal_post(submission_id, "result", _result(verdicts) | result)
            assert stored.status_code == 200, stored.get_json()
        return submission_id

    return _grade


@pytest.fixture
def stats(client, instructor):
    def _stats(assignment_id: str) -> dict[str, Any]:
        response = client.get(f"/api/assignments/{assignment_id}/stats", headers=instructor.headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    return _stats


def _snapshot(assignment_id: str) -> tuple[dict, dict]:
    """The totals and every standing, without the bookkeeping fields."""
    oid = ObjectId(assignment_id)
    totals = AssignmentStats.objects(assignment_id=oid).first()
    standings = {
        str(s.user_id): {
            k: v
            for k, v in s.to_mongo().to_dict().items()
            if k not in {"_id", "version", "updated_at"}
        }
        for s in StudentStanding.objects(assignment_id=oid)
    }
    return (_without_zeros(totals.counters) if totals else {}), standings


def _without_zeros(nested: dict) -> dict:
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            inner = _without_zeros(value)
            if inner:
                flat[key] = inner
        elif value:
            flat[key] = value
    return flat


def test_counts_after_a_sequence_of_results(grade, register, assignment, stats):
    ana, ben, cy = register(), register(), register()
    grade(ana, assignment["id"], NOTHING)
    grade(ana, assignment["id"], SECRET_TLE)
    grade(ana, assignment["id"], ALL_PASS)
    grade(ben, assignment["id"], SECRET_TLE)
    grade(cy, assignment["id"], None)  # still queued

    report = stats(assignment["id"])

    assert report["submissions"] == {
        "total": 5,
        "in_progress": 1,
        "graded": 3,
        "failed": 1,
        "error": 0,
    }
    assert report["students"] == {"submitted": 3, "judged": 2, "accepted": 1}
    public, secret = report["tests"]
    assert (public["runs"], public["passed"], public["pass_rate"]) == (4, 3, 0.75)
    assert (secret["hidden"], secret["runs"], secret["passed"]) == (True, 4, 1)
    # Ana passes everything now; only Ben's latest fails the hidden test.
    assert secret["students_failing"] == 1 and secret["verdicts"] == {"time_limit_exceeded": 1}
    assert public["students_failing"] == 0
    tags = {row["tag"]: row for row in report["fail_tags"]}
    assert tags["time_limit_exceeded"]["submissions"] == 2
    assert tags["time_limit_exceeded"]["students_failing"] == 1
    assert tags["wrong_answer"] == {
        "tag": "wrong_answer",
        "submissions": 1,
        "students_failing": 0,
        "failing_share": 0.0,
    }
    histogram = {b["from_percent"]: b["count"] for b in report["score_histogram"]}
    assert (histogram[0], histogram[30], histogram[90]) == (1, 2, 1)
    best = {b["from_percent"]: b["count"] for b in report["best_score_histogram"]}
    assert (best[30], best[90]) == (1, 1)
    assert report["attempts_to_first_accept"][2] == {"attempt": "3", "students": 1}
    assert report["alerts"] == []  # two judged students: under STATS_ALERT_MIN_STUDENTS
    assert report["alert_thresholds"] == {"share": 0.4, "min_students": 10}


def test_an_error_is_counted_but_judges_nothing(grade, student, assignment, stats, internal_post):
    submission_id = grade(student, assignment["id"], None)
    internal_post(submission_id, "result", Result.error("runner lost").model_dump(mode="json"))

    report = stats(assignment["id"])
    assert report["submissions"]["error"] == 1 and report["submissions"]["in_progress"] == 0
    assert report["students"] == {"submitted": 1, "judged": 0, "accepted": 0}
    assert [t["runs"] for t in report["tests"]] == [0, 0]


def test_a_replaced_result_takes_the_old_ones_share_out(
    grade, student, assignment, stats, internal_post
):
    """What a regrade does: the submission reopens for a new round and gets a new result."""
    submission_id = grade(student, assignment["id"], SECRET_TLE)
    before = stats(assignment["id"])
    assert before["tests"][1]["students_failing"] == 1

    Submission.objects(id=submission_id).update_one(set__status="queued")
    stored = internal_post(submission_id, "result", _result(ALL_PASS))
    assert stored.status_code == 200 and stored.get_json() == {"stored": True}

    after = stats(assignment["id"])
    assert after["submissions"]["graded"] == 1 and after["submissions"]["total"] == 1
    assert after["tests"][1] | {"pass_rate": None} == {
        "name": "secret",
        "hidden": True,
        "runs": 1,
        "passed": 1,
        "pass_rate": None,
        "students_failing": 0,
        "failing_share": 0.0,
        "verdicts": {},
    }
    assert after["students"]["accepted"] == 1
    assert [row["tag"] for row in after["fail_tags"]] == []
    assert sum(b["count"] for b in after["score_histogram"]) == 1


def test_rebuild_equals_the_incremental_counters(grade, register, assignment, stats, internal_post):
    rng = random.Random(11)
    for _ in range(8):
        who = register()
        for _ in range(rng.randint(1, 3)):
            roll = rng.random()
            if roll < 0.1:
                grade(who, assignment["id"], None)
            elif roll < 0.2:
                submission_id = grade(who, assignment["id"], None)
                error = Result.error("lost").model_dump(mode="json")
                internal_post(submission_id, "result", error)
            else:
                verdicts = {
                    name: rng.choice(["accepted", "accepted", "wrong_answer", "runtime_error"])
                    for name in TESTS
                }
                grade(who, assignment["id"], verdicts)
    incremental, report = _snapshot(assignment["id"]), stats(assignment["id"])
    assert incremental[0]["students"]["submitted"] == 8

    rebuilt = rebuild_stats(ObjectId(assignment["id"]))

    assert rebuilt.students == 8 and rebuilt.submissions == Submission.objects.count()
    assert _snapshot(assignment["id"]) == incremental
    assert stats(assignment["id"]) | {"updated_at": None} == report | {"updated_at": None}


def test_concurrent_refreshes_of_one_student_lose_nothing(
    monkeypatch, grade, student, assignment, internal_post
):
    """Two results of one student land at once: while one refresh computes from what it
    read, the other writes first. The first's write is refused (version) and it computes
    again, from both results."""
    first = grade(student, assignment["id"], None)
    second = grade(student, assignment["id"], None)
    read_facts = stats_store._facts
    interleaved = []

    def racing_facts(assignment_id, user_id):
        facts = read_facts(assignment_id, user_id)
        if not interleaved:
            interleaved.append(True)
            internal_post(second, "result", _result(ALL_PASS))  # refreshes in between
        return facts

    monkeypatch.setattr(stats_store, "_facts", racing_facts)
    internal_post(first, "result", _result(SECRET_TLE))
    monkeypatch.undo()

    assert interleaved
    raced = _snapshot(assignment["id"])
    assert raced[0]["status"] == {"graded": 2}
    assert raced[0]["students"] == {"submitted": 1, "judged": 1, "accepted": 1}
    rebuild_stats(ObjectId(assignment["id"]))
    assert _snapshot(assignment["id"]) == raced


def test_the_first_standing_of_a_student_created_concurrently(monkeypatch, assignment):
    """Both refreshes find no standing; the second one's insert hits the unique index and
    it computes again on the standing the first created."""
    assignment_id, user_id = ObjectId(assignment["id"]), ObjectId()
    doc = submission_doc(assignment_id, user_id, 1, {"public": "accepted"}, created_at=utcnow())
    Submission._get_collection().insert_one(doc)
    read_facts = stats_store._facts
    calls = []

    def racing_facts(a, u):
        facts = read_facts(a, u)
        calls.append(1)
        if len(calls) == 1:
            refresh_student(a, u)
        return facts

    monkeypatch.setattr(stats_store, "_facts", racing_facts)
    refresh_student(assignment_id, user_id)

    assert len(calls) == 3  # outer, inner, outer again after losing
    totals = AssignmentStats.objects.get(assignment_id=assignment_id).counters
    assert totals["submitted"] == 1 and totals["students"]["accepted"] == 1


def test_a_reference_solution_is_never_counted(assignment, stats):
    assignment_id, staff_id = ObjectId(assignment["id"]), ObjectId()
    reference = submission_doc(
        assignment_id, staff_id, 1, dict.fromkeys(TESTS, "accepted"), created_at=utcnow()
    )
    Submission._get_collection().insert_one(reference | {"is_reference": True})
    refresh_student(assignment_id, staff_id)
    assert stats(assignment["id"])["submissions"]["total"] == 0
    rebuild_stats(assignment_id)
    assert stats(assignment["id"])["submissions"]["total"] == 0
    assert StudentStanding.objects.count() == 0


def test_the_read_touches_neither_submissions_nor_standings(assignment, stats):
    """Seeded in bulk and rebuilt; the report stays the same once every submission and
    standing is gone, so it was read from the one counters document alone (bench/
    stats_read.py times it on 10,000)."""
    assignment_id = ObjectId(assignment["id"])
    docs = seeded_class(assignment_id, students=40, attempts=5, tests=TESTS, rng=random.Random(3))
    Submission._get_collection().insert_many(docs)
    rebuild_stats(assignment_id)
    report = stats(assignment["id"])
    assert report["submissions"]["total"] == 200 and report["students"]["submitted"] == 40

    Submission.objects.delete()
    StudentStanding.objects.delete()

    assert stats(assignment["id"]) == report


def test_a_cohort_alert_in_a_seeded_class(assignment, stats):
    """30 students; 14 of them fail hidden test `secret` with time_limit_exceeded in their
    latest submission (some passed it before: only the latest counts), 2 with a wrong
    answer; 14 pass. 16/30 = 53 % >= 40 % of >= 10 students."""
    assignment_id = ObjectId(assignment["id"])
    docs, minute = [], 0
    for n in range(30):
        user_id = ObjectId()
        latest = SECRET_TLE if n < 14 else ALL_PASS
        if n in (14, 15):
            latest = {"public": "accepted", "secret": "wrong_answer"}
        history = [ALL_PASS, latest] if n % 3 == 0 else [NOTHING, latest]
        for attempt, verdicts in enumerate(history, start=1):
            minute += 1
            at = START + timedelta(minutes=minute)
            docs.append(
                submission_doc(
                    assignment_id,
                    user_id,
                    attempt,
                    verdicts,
                    created_at=at,
                    hidden=frozenset({"secret"}),
                )
            )
    Submission._get_collection().insert_many(docs)
    for user_id in {doc["user_id"] for doc in docs}:
        refresh_student(assignment_id, user_id)

    report = stats(assignment["id"])

    assert report["students"]["judged"] == 30
    assert [(a["kind"], a["name"], a["share"]) for a in report["alerts"]] == [
        ("test", "secret", round(16 / 30, 4)),
        ("fail_tag", "partial", round(16 / 30, 4)),
        ("fail_tag", "time_limit_exceeded", round(14 / 30, 4)),
    ]
    test_alert = report["alerts"][0]
    assert test_alert["kind"] == "test" and test_alert["name"] == "secret"
    assert test_alert["hidden"] is True
    assert test_alert["students_failing"] == 16 and test_alert["students_judged"] == 30
    assert test_alert["verdicts"] == {"time_limit_exceeded": 14, "wrong_answer": 2}
    assert "mostly time_limit_exceeded" in test_alert["message"]
    tle = next(row for row in report["fail_tags"] if row["tag"] == "time_limit_exceeded")
    assert tle["students_failing"] == 14 and tle["failing_share"] == round(14 / 30, 4)


def test_alert_thresholds_are_settings(make_app, settings_with, instructor, assignment):
    app = make_app(settings_with(stats_alert_share=0.9, stats_alert_min_students=50))
    response = app.test_client().get(
        f"/api/assignments/{assignment['id']}/stats", headers=instructor.headers
    )
    assert response.get_json()["alert_thresholds"] == {"share": 0.9, "min_students": 50}


def test_only_the_assignments_staff_read_its_stats(
    client, student, make_instructor, instructor, create_assignment, assignment
):
    url = f"/api/assignments/{assignment['id']}/stats"
    assert client.get(url, headers=student.headers).status_code == 403
    draft = create_assignment(instructor, published=False)
    other = make_instructor()
    assert (
        client.get(f"/api/assignments/{draft['id']}/stats", headers=other.headers).status_code
        == 404
    )
    assert (
        client.get(f"/api/assignments/{draft['id']}/stats", headers=student.headers).status_code
        == 404
    )
    assert (
        client.get("/api/assignments/not-an-id/stats", headers=instructor.headers).status_code
        == 404
    )
    assert (
        client.get(f"/api/assignments/{ObjectId()}/stats", headers=instructor.headers).status_code
        == 404
    )
    assert client.get(url).status_code == 401


def test_rebuild_stats_command(monkeypatch, settings, database, assignment, stats):
    assignment_id = ObjectId(assignment["id"])
    docs = seeded_class(assignment_id, students=5, attempts=2, tests=TESTS, rng=random.Random(1))
    Submission._get_collection().insert_many(docs)
    for name, value in {
        "MONGO_URI": settings.mongo_uri,
        "DB_NAME": settings.db_name,
        "SECRET_KEY": settings.secret_key.get_secret_value(),
        "INTERNAL_RESULT_TOKEN": settings.internal_result_token.get_secret_value(),
        "REDIS_URL": settings.redis_url,
    }.items():
        monkeypatch.setenv(name, value)
    # The command refuses the in-process stand-in: it is given the test's, connected.
    monkeypatch.setattr(webapp.services, "connect_mongo", lambda _settings: database)

    done = CliRunner().invoke(main, ["rebuild-stats", "--assignment", assignment["id"]])

    assert done.exit_code == 0, done.output
    assert f"assignment {assignment['id']}: 10 submissions of 5 students" in done.output
    assert stats(assignment["id"])["submissions"]["total"] == 10
    everything = CliRunner().invoke(main, ["rebuild-stats"])
    assert everything.exit_code == 0 and assignment["id"] in everything.output
    unknown = CliRunner().invoke(main, ["rebuild-stats", "--assignment", str(ObjectId())])
    assert unknown.exit_code == 1 and "no assignment" in unknown.output
    bad = CliRunner().invoke(main, ["rebuild-stats", "--assignment", "nope"])
    assert bad.exit_code == 1 and "not an assignment id" in bad.output


def test_store_result_applies_to_the_stats_of_its_own_student_only(
    grade, register, assignment, fake_redis
):
    ana, ben = register(), register()
    grade(ana, assignment["id"], ALL_PASS)
    submission_id = grade(ben, assignment["id"], None)
    submission = Submission.objects.get(id=submission_id)
    store_result(fake_redis, submission, Result.model_validate(_result(NOTHING)))
    standings = {str(s.user_id): s for s in StudentStanding.objects}
    assert standings[ana.id].best_score == pytest.approx(100.0)
    assert standings[ben.id].best_score == 0.0 and standings[ben.id].first_accepted_attempt is None
