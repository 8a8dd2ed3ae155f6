"""Graded submissions as MongoDB stores them, made up in bulk: for the statistics tests and
bench/stats_read.py, where going through the API for each of 10,000 would measure the
API, not the statistics."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from runner_image.contract import Status, Verdict

START = datetime(2031, 1, 1)
FAILING = (Verdict.WRONG_ANSWER, Verdict.TIME_LIMIT_EXCEEDED, Verdict.RUNTIME_ERROR)


def submission_doc(
    assignment_id: ObjectId,
    user_id: ObjectId,
    attempt: int,
    verdicts: Mapping[str, str],
    *,
    created_at: datetime,
    hidden: frozenset[str] = frozenset(),
    max_score: float = 100.0,
) -> dict[str, Any]:
    """A submission graded as a runner would report `verdicts` (test name -> verdict):
    equal weights, `partial` when some but not all pass, each failing verdict a tag."""
    per_test = max_score / len(verdicts)
    passed = [name for name, verdict in verdicts.items() if verdict == Verdict.ACCEPTED]
    failing = [verdict for verdict in verdicts.values() if verdict != Verdict.ACCEPTED]
    score = round(per_test * len(passed), 6)
    tags = sorted(set(failing)) + (["partial"] if passed and failing else [])
    return {
        "_id": ObjectId(),
        "assignment_id": assignment_id,
        "user_id": user_id,
        "language": "python",
        "code": "print(1)\n",
        "attempt": attempt,
        "status": Status.GRADED if passed else Status.FAILED,
        "verdict": failing[0] if failing else Verdict.ACCEPTED,
        "score": score,
        "raw_score": score,
        "penalty": 0.0,
        "late": False,
        "penalty_percent": 0.0,
        "max_score": max_score,
        "fail_tags": tags,
        "instructor_tags": [],
        "feedback": "",
        "tests": [
            {
                "name": name,
                "verdict": verdict,
                "score": per_test if verdict == Verdict.ACCEPTED else 0.0,
                "max_score": per_test,
                "hidden": name in hidden,
            }
            for name, verdict in verdicts.items()
        ],
        "metrics": {"tests_passed": len(passed), "tests_total": len(verdicts)},
        "created_at": created_at,
        "enqueued_at": created_at,
        "finished_at": created_at + timedelta(seconds=5),
    }


def seeded_class(
    assignment_id: ObjectId,
    students: int,
    attempts: int,
    tests: tuple[str, ...],
    rng: random.Random,
) -> list[dict[str, Any]]:
    """`students` x `attempts` graded submissions; each test passes more often with each
    attempt, so the statistics have something to say."""
    docs = []
    for s in range(students):
        user_id = ObjectId()
        for attempt in range(1, attempts + 1):
            verdicts = {
                name: Verdict.ACCEPTED
                if rng.random() < 0.3 + 0.6 * attempt / attempts
                else rng.choice(FAILING)
                for name in tests
            }
            at = START + timedelta(minutes=s * attempts + attempt)
            docs.append(submission_doc(assignment_id, user_id, attempt, verdicts, created_at=at))
    return docs
