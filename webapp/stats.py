"""An assignment's statistics as counters, and what they say to its staff. Pure: the
storage and the atomic updates are in webapp.stats_store.

Each student's submissions make up that student's *standing* (`standing_of`): the counters
it adds to the assignment's totals. Per submission: its final status, its score's bin, each
test run and passed, each fail tag. Per student: whether they submitted, were judged (have
a graded or failed submission), were accepted, their best score's bin, the attempt of their
first accepted submission, and the tests (by failing verdict) and fail tags their *latest*
judged submission fails. The assignment's counters are the sum over its students, moved by
the difference between a student's old and new standing whenever it changes, so a result
that replaces another (a regrade) takes the old one's share back out.

Counter keys are dotted paths (`status.graded`, `test_runs.<test>`); a name inside one is
escaped (`escape_key`) so that a test or tag called `a.b` or `$x` stays one MongoDB field."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from bson import ObjectId

from runner_image.contract import FINAL_STATUSES, Status, TestCase, Verdict
from webapp.responses import (
    AlertThresholds,
    AssignmentStatsOut,
    AttemptsBin,
    CohortAlertOut,
    FailTagStatsOut,
    HistogramBin,
    StatusCounts,
    StudentCounts,
    TestStatsOut,
)

BINS = 10
# Attempts to first accept beyond this are counted together ("10+").
ATTEMPTS_CAP = 10
JUDGED = (Status.GRADED, Status.FAILED)
_UNSAFE = re.compile(r"[%.$\x00]")


def escape_key(name: str) -> str:
    """A name as one MongoDB field name: `%`, `.`, `$` and NUL percent-encoded."""
    return _UNSAFE.sub(lambda match: f"%{ord(match.group()):02X}", name)


def unescape_key(key: str) -> str:
    return unquote(key)


# What standing_of reads of a submission (a projection: never the code or outputs).
FACT_FIELDS = (
    "id",
    "created_at",
    "attempt",
    "status",
    "verdict",
    "score",
    "max_score",
    "fail_tags",
    "tests.name",
    "tests.verdict",
)


@dataclass(frozen=True)
class SubmissionFacts:
    id: ObjectId
    created_at: datetime
    attempt: int
    status: str
    verdict: str | None
    score: float | None
    max_score: float
    fail_tags: tuple[str, ...] = ()
    tests: tuple[tuple[str, str], ...] = ()  # (name, verdict) of each test row

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> SubmissionFacts:
        """From a raw (`as_pymongo`) submission projected on FACT_FIELDS."""
        return cls(
            id=doc["_id"],
            created_at=doc["created_at"],
            attempt=doc["attempt"],
            status=doc["status"],
            verdict=doc.get("verdict"),
            score=doc.get("score"),
            max_score=doc["max_score"],
            fail_tags=tuple(doc.get("fail_tags") or ()),
            tests=tuple((row["name"], row["verdict"]) for row in doc.get("tests") or ()),
        )

    @property
    def judged(self) -> bool:
        """Graded or failed: the code was judged (an `error` says nothing about it)."""
        return self.status in JUDGED

    @property
    def accepted(self) -> bool:
        return self.judged and self.verdict == Verdict.ACCEPTED

    @property
    def order(self) -> tuple[datetime, ObjectId]:
        return (self.created_at, self.id)


@dataclass(frozen=True)
class Standing:
    submissions: int
    judged: int
    latest: SubmissionFacts | None  # latest judged
    best: SubmissionFacts | None  # highest score among judged, the earliest on a tie
    first_accepted: SubmissionFacts | None
    counters: Counter[str]


def score_bin(score: float, max_score: float) -> int:
    """0..BINS-1: the tenth of max_score the score falls in; a full score is in the last."""
    ratio = min(max(score / max_score, 0.0), 1.0) if max_score > 0 else 0.0
    return min(int(ratio * BINS + 1e-9), BINS - 1)


def standing_of(facts: Iterable[SubmissionFacts]) -> Standing:
    """One student's standing at one assignment, from all of their submissions."""
    facts = sorted(facts, key=lambda f: f.order)
    counters: Counter[str] = Counter()
    judged = [f for f in facts if f.judged]
    for fact in facts:
        counters["submitted"] += 1
        if fact.status in FINAL_STATUSES:
            counters[f"status.{fact.status}"] += 1
    for fact in judged:
        if fact.score is not None:
            counters[f"hist.{score_bin(fact.score, fact.max_score)}"] += 1
        for name, verdict in fact.tests:
            counters[f"test_runs.{escape_key(name)}"] += 1
            counters[f"test_passed.{escape_key(name)}"] += verdict == Verdict.ACCEPTED
        for tag in set(fact.fail_tags):
            counters[f"tag_submissions.{escape_key(tag)}"] += 1
    latest = judged[-1] if judged else None
    scored = [f for f in judged if f.score is not None]
    best = min(scored, key=lambda f: (-f.score, f.order)) if scored else None
    first_accepted = next((f for f in judged if f.accepted), None)
    if facts:
        counters["students.submitted"] = 1
    if latest is not None:
        counters["students.judged"] = 1
        for name, verdict in dict(latest.tests).items():
            if verdict != Verdict.ACCEPTED:
                counters[f"failing.{escape_key(name)}.{escape_key(verdict)}"] = 1
        for tag in set(latest.fail_tags):
            counters[f"failing_tags.{escape_key(tag)}"] = 1
    if best is not None:
        counters[f"best_hist.{score_bin(best.score, best.max_score)}"] = 1
    if first_accepted is not None:
        counters["students.accepted"] = 1
        counters[f"first_accept.{min(first_accepted.attempt, ATTEMPTS_CAP)}"] = 1
    return Standing(
        submissions=len(facts),
        judged=len(judged),
        latest=latest,
        best=best,
        first_accepted=first_accepted,
        counters=+counters,
    )


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, int]:
    """{"status": {"graded": 2}} -> {"status.graded": 2}"""
    flat: dict[str, int] = {}
    for key, value in nested.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{path}.")
        else:
            flat[path] = int(value)
    return flat


def nest(flat: Mapping[str, int]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def counter_delta(old: Mapping[str, int], new: Mapping[str, int]) -> dict[str, int]:
    """What to $inc so that totals holding `old` hold `new` instead; zeros left out."""
    delta = {path: new.get(path, 0) - old.get(path, 0) for path in old.keys() | new.keys()}
    return {path: change for path, change in delta.items() if change}


@dataclass(frozen=True)
class Thresholds:
    share: float
    min_students: int


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _histogram(counts: Mapping[str, int]) -> list[HistogramBin]:
    return [
        HistogramBin(
            from_percent=i * 100 // BINS,
            to_percent=(i + 1) * 100 // BINS,
            count=counts.get(str(i), 0),
        )
        for i in range(BINS)
    ]


def _named(counts: Mapping[str, Any]) -> dict[str, Any]:
    return {unescape_key(key): value for key, value in counts.items()}


def stats_report(
    assignment_id: str,
    max_score: float,
    tests: Sequence[TestCase],
    nested: Mapping[str, Any],
    thresholds: Thresholds,
    updated_at: str | None,
) -> AssignmentStatsOut:
    """The assignment's counters as its staff read them, with the cohort alerts: a test or
    fail tag that at least `thresholds.share` of the judged students fail in their latest
    judged submission, once at least `thresholds.min_students` were judged. Tests are the
    assignment's current ones, in its order."""
    status = nested.get("status", {})
    students = nested.get("students", {})
    judged_students = students.get("judged", 0)
    finals = {s: status.get(s, 0) for s in FINAL_STATUSES}
    submitted = nested.get("submitted", 0)
    runs, passed = _named(nested.get("test_runs", {})), _named(nested.get("test_passed", {}))
    failing = {
        name: {unescape_key(v): n for v, n in by_verdict.items() if n}
        for name, by_verdict in _named(nested.get("failing", {})).items()
    }
    alerting = judged_students >= thresholds.min_students

    def alarming(count: int) -> bool:
        return alerting and count > 0 and count / judged_students >= thresholds.share

    test_rows, alerts = [], []
    for case in tests:
        verdicts = dict(sorted(failing.get(case.name, {}).items(), key=lambda kv: -kv[1]))
        students_failing = sum(verdicts.values())
        test_rows.append(
            TestStatsOut(
                name=case.name,
                hidden=case.hidden,
                runs=runs.get(case.name, 0),
                passed=passed.get(case.name, 0),
                pass_rate=_share(passed.get(case.name, 0), runs.get(case.name, 0)),
                students_failing=students_failing,
                failing_share=_share(students_failing, judged_students),
                verdicts=verdicts,
            )
        )
        if alarming(students_failing):
            kind = "hidden test" if case.hidden else "test"
            mostly = next(iter(verdicts))
            alerts.append(
                CohortAlertOut(
                    kind="test",
                    name=case.name,
                    hidden=case.hidden,
                    students_failing=students_failing,
                    students_judged=judged_students,
                    share=_share(students_failing, judged_students),
                    verdicts=verdicts,
                    message=f"{students_failing} of {judged_students} students fail {kind} "
                    f"{case.name!r} in their latest submission (mostly {mostly})",
                )
            )
    tag_submissions = _named(nested.get("tag_submissions", {}))
    tag_students = _named(nested.get("failing_tags", {}))
    tag_rows = sorted(
        (
            FailTagStatsOut(
                tag=tag,
                submissions=tag_submissions.get(tag, 0),
                students_failing=tag_students.get(tag, 0),
                failing_share=_share(tag_students.get(tag, 0), judged_students),
            )
            for tag in tag_submissions.keys() | tag_students.keys()
            if tag_submissions.get(tag, 0) or tag_students.get(tag, 0)
        ),
        key=lambda row: (-row.students_failing, -row.submissions, row.tag),
    )
    for row in tag_rows:
        if alarming(row.students_failing):
            alerts.append(
                CohortAlertOut(
                    kind="fail_tag",
                    name=row.tag,
                    hidden=None,
                    verdicts=None,
                    students_failing=row.students_failing,
                    students_judged=judged_students,
                    share=row.failing_share,
                    message=f"{row.students_failing} of {judged_students} students' latest "
                    f"submission has fail tag {row.tag!r}",
                )
            )
    first_accept = nested.get("first_accept", {})
    return AssignmentStatsOut(
        assignment_id=assignment_id,
        max_score=max_score,
        submissions=StatusCounts(
            total=submitted, in_progress=max(submitted - sum(finals.values()), 0), **finals
        ),
        students=StudentCounts(
            submitted=students.get("submitted", 0),
            judged=judged_students,
            accepted=students.get("accepted", 0),
        ),
        score_histogram=_histogram(nested.get("hist", {})),
        best_score_histogram=_histogram(nested.get("best_hist", {})),
        tests=test_rows,
        fail_tags=tag_rows,
        attempts_to_first_accept=[
            AttemptsBin(
                attempt=f"{n}+" if n == ATTEMPTS_CAP else str(n),
                students=first_accept.get(str(n), 0),
            )
            for n in range(1, ATTEMPTS_CAP + 1)
        ],
        alerts=sorted(alerts, key=lambda alert: -alert.share),
        alert_thresholds=AlertThresholds(
            share=thresholds.share, min_students=thresholds.min_students
        ),
        updated_at=updated_at,
    )
