"""Regrading through the real stack (gunicorn, a Celery worker, the local launcher, runner
processes): the issue's scenario with REGRADE_COUNT submissions (bench/regrade.py runs it
with 200)."""

from __future__ import annotations

from tests.regrade_scenario import run_regrade_scenario

# Submissions graded, then regraded after a test fix. Each grading is a runner process; on
# 2 shared cores a handful keeps this test near 30 s, and bench/regrade.py runs the 200.
REGRADE_COUNT = 8


def test_a_bulk_regrade_after_a_test_fix_updates_every_score_and_keeps_history(stack):
    timings = run_regrade_scenario(stack, REGRADE_COUNT, timeout=120)

    print(
        f"\n{REGRADE_COUNT} graded in {timings.graded_seconds:.1f} s, regraded in "
        f"{timings.regraded_seconds:.1f} s (bulk request {timings.bulk_request_seconds:.2f} s)"
    )
