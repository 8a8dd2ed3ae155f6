"""Regrade of 200 submissions after a test fix (issue 11), through the real stack: gunicorn,
a Celery worker, the local launcher and one runner process per grading. The scenario and
its checks are tests/regrade_scenario.py (every score updated, every old result in
history, a late result of the earlier round refused); tests/integration/test_regrade.py
runs it with a handful.

Measured side by side in one run: the 200 first gradings, then the 200 regrades. Goal: the
regrade takes at most 1.25 x the first grading (it is the same pipeline, plus queueing 200
rounds in one request, which is reported on its own).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cloudemy_dev.devstack import dev_stack
from tests.integration.conftest import BURST_LIMITS
from tests.regrade_scenario import run_regrade_scenario

COUNT = 200
GOAL_RATIO = 1.25
TIMEOUT_SECONDS = 3600


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-regrade-") as logs:
        env = {"MONGO_URI": "mongomock://localhost", "DB_NAME": "bench", **BURST_LIMITS}
        with dev_stack(extra_env=env, log_dir=Path(logs)) as stack:
            timings = run_regrade_scenario(stack, COUNT, TIMEOUT_SECONDS)
    ratio = timings.regraded_seconds / timings.graded_seconds
    print(
        f"{COUNT} submissions: graded in {timings.graded_seconds:.1f} s, regraded in "
        f"{timings.regraded_seconds:.1f} s (ratio {ratio:.2f}, goal <= {GOAL_RATIO}); "
        f"the bulk request queued them in {timings.bulk_request_seconds:.2f} s"
    )
    return 0 if ratio <= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
