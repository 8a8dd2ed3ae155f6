"""Statistics read: GET /api/assignments/<id>/stats on an assignment with 10,000 graded
submissions (1,000 students x 10 attempts, 10 tests) and on one with 10, side by side,
through the production app factory on mongomock (the unit tests' MongoDB stand-in).
Goal: the 10,000-submission read answers in under 300 ms (median), and costs about what
the 10-submission one does, because it reads one counters document either way.

    .venv/bin/python bench/stats_read.py [--students 1000] [--attempts 10] [--rounds 21]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fakeredis
import mongoengine
from bson import ObjectId

from cloudemy_dev.embedded import connect_embedded_mongo
from tests.stats_seed import seeded_class
from webapp.app import create_app
from webapp.blueprints.accounts import create_user
from webapp.models import Submission
from webapp.services import Services
from webapp.settings import WebappSettings
from webapp.stats_store import rebuild_stats

GOAL_MS = 300.0
TESTS = tuple(f"t{i}" for i in range(10))
PASSWORD = "bench password"


def make_client():
    settings = WebappSettings.from_env(
        {},
        mongo_uri="mongomock://localhost",
        db_name=f"bench_{uuid.uuid4().hex}",
        internal_result_token="b" * 32,
        secret_key="s" * 32,
        redis_url="redis://127.0.0.1:1/0",
        rate_limit_storage_uri="memory://",
    )
    database = connect_embedded_mongo(settings)
    services = Services(database=database, redis=fakeredis.FakeRedis(), celery=None)
    app = create_app(settings, services=services)
    with app.app_context():
        create_user("bench@example.org", "Bench", PASSWORD, role="instructor")
    client = app.test_client()
    token = client.post(
        "/api/auth/login", json={"email": "bench@example.org", "password": PASSWORD}
    ).get_json()["access_token"]
    return client, {"Authorization": f"Bearer {token}"}


def seeded_assignment(client, headers, students: int, attempts: int) -> str:
    body = {
        "title": f"{students * attempts} submissions",
        "tests": [{"name": name, "stdin": "1\n", "expected_stdout": "1\n"} for name in TESTS],
        "feedback": {"llm": False},
    }
    assignment_id = client.post("/api/assignments", json=body, headers=headers).get_json()["id"]
    docs = seeded_class(ObjectId(assignment_id), students, attempts, TESTS, random.Random(7))
    Submission._get_collection().insert_many(docs)
    rebuild_stats(ObjectId(assignment_id))
    return assignment_id


def timed_reads(client, headers, assignment_id: str, rounds: int) -> tuple[float, dict]:
    times, report = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(f"/api/assignments/{assignment_id}/stats", headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.get_json()
        report = response.get_json()
    return statistics.median(times), report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--attempts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()

    client, headers = make_client()
    small = seeded_assignment(client, headers, students=1, attempts=10)
    started = time.perf_counter()
    large = seeded_assignment(client, headers, args.students, args.attempts)
    seed_s = time.perf_counter() - started
    # Interleaved, so that machine noise hits both alike.
    small_ms, large_ms = [], []
    for _ in range(args.rounds):
        small_ms.append(timed_reads(client, headers, small, 1)[0])
        large_ms.append(timed_reads(client, headers, large, 1)[0])
    _, report = timed_reads(client, headers, large, 1)
    mongoengine.disconnect()

    total = report["submissions"]["total"]
    small_median, large_median = statistics.median(small_ms), statistics.median(large_ms)
    print(f"seeded and rebuilt {total} submissions in {seed_s:.1f} s")
    print(f"{'submissions':>12} {'median ms':>10} {'max ms':>8}")
    print(f"{10:>12} {small_median:>10.1f} {max(small_ms):>8.1f}")
    print(f"{total:>12} {large_median:>10.1f} {max(large_ms):>8.1f}")
    print(f"ratio {total} / 10 : {large_median / small_median:.2f}")
    met = large_median < GOAL_MS and total == args.students * args.attempts
    print(f"goal: median under {GOAL_MS:.0f} ms -> {'met' if met else 'MISSED'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
