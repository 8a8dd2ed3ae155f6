"""Grading overhead: one Python submission against 10 io tests, through the runner's full
path (isolation probe, sandboxed runs, judging), side by side with ten bare
`python3 main.py` runs of the same solution. Goal (issue 14): graded <= 1.2 x bare + 80 ms,
namespaces included.

Both are measured interleaved in one process, so machine noise hits both alike.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner_image.contract import Bundle, TestCase, Verdict
from runner_image.grading.grader import grade
from runner_image.sandbox.isolation import probe_isolation
from runner_image.sandbox.languages import SANDBOX_PATH

SOLUTION = "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()[1:]))\n"
TESTS = tuple(
    TestCase(
        name=f"t{i}",
        stdin=f"{i + 1}\n" + " ".join(str(n) for n in range(i + 1)) + "\n",
        expected_stdout=f"{sum(range(i + 1))}\n",
    )
    for i in range(10)
)
ROUNDS = 15
# The interpreter the sandbox itself runs, so both sides start the same python3.
PYTHON = shutil.which("python3", path=SANDBOX_PATH)


def bare_runs(workdir: Path) -> float:
    started = time.perf_counter()
    for test in TESTS:
        subprocess.run(
            [PYTHON, "main.py"],
            input=test.stdin.encode(),
            cwd=workdir,
            capture_output=True,
            check=True,
        )
    return time.perf_counter() - started


def graded_run() -> float:
    started = time.perf_counter()
    isolation = probe_isolation()
    judgement = grade(
        Bundle(submission_id="bench", language="python", code=SOLUTION, tests=TESTS), isolation
    )
    elapsed = time.perf_counter() - started
    assert judgement.verdict == Verdict.ACCEPTED, judgement
    return elapsed


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="cloudemy-bench-"))
    (workdir / "main.py").write_text(SOLUTION)
    try:
        bare, graded = [], []
        for _ in range(ROUNDS):
            bare.append(bare_runs(workdir))
            graded.append(graded_run())
    finally:
        shutil.rmtree(workdir)
    bare_ms = statistics.median(bare) * 1000
    graded_ms = statistics.median(graded) * 1000
    budget_ms = 1.2 * bare_ms + 80
    print(f"ten bare python3 runs : {bare_ms:7.1f} ms (median of {ROUNDS})")
    print(f"graded, 10 io tests   : {graded_ms:7.1f} ms (median of {ROUNDS})")
    print(f"ratio graded / bare   : {graded_ms / bare_ms:7.2f}")
    verdict = "OK" if graded_ms <= budget_ms else "OVER"
    print(f"budget 1.2 x bare+80  : {budget_ms:7.1f} ms -> {verdict}")
    return 0 if graded_ms <= budget_ms else 1


if __name__ == "__main__":
    sys.exit(main())
