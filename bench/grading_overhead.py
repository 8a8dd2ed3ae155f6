"""Grading overhead: one Python submission against 10 io tests, through the runner's full
path, side by side with ten bare `python3 main.py` runs of the same solution. Goal (issue
14): graded <= 1.2 x bare + 80 ms, namespaces included.

Each graded round is a runner as the local launcher's fork server makes one: a child forked
from this process, where the isolation layers were proven once beforehand; the child takes
its own sandbox uid, cgroup and seccomp filter and grades (sandboxed runs, judging); the
round is timed to its verdict, then the child removes its cgroup as a runner does when it
exits, after posting its result.

Both are measured interleaved in one process, so machine noise hits both alike.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runner_image.contract import Bundle, TestCase, Verdict
from runner_image.forkserver import end_runner
from runner_image.grading.grader import grade
from runner_image.sandbox.isolation import probe_isolation, proven_layers
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
    """Seconds from the fork to the verdict, which a runner posts before it cleans up and
    exits (that part is waited for, not timed: the student is not waiting on it)."""
    verdict_read, verdict_write = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        accepted = False
        try:
            os.close(verdict_read)
            judgement = grade(
                Bundle(submission_id="bench", language="python", code=SOLUTION, tests=TESTS),
                probe_isolation(),
            )
            accepted = judgement.verdict == Verdict.ACCEPTED
            os.write(verdict_write, b"1" if accepted else b"0")
        finally:
            end_runner(0 if accepted else 1)
    os.close(verdict_write)
    verdict = os.read(verdict_read, 1)
    elapsed = time.perf_counter() - started
    os.close(verdict_read)
    _, status = os.waitpid(pid, 0)
    if verdict != b"1" or os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("a graded round was not accepted")
    return elapsed


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="cloudemy-bench-"))
    (workdir / "main.py").write_text(SOLUTION)
    proven_layers()
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
