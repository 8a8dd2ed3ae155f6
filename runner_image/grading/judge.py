"""From executions to verdicts, scores and tags. Pure: no I/O, easy to test exhaustively.

The score comes from execution alone; nothing here reads what the program says about itself.
"""

from __future__ import annotations

import json
import math
import signal
from dataclasses import dataclass, field
from typing import Any

from runner_image.contract import (
    ALL_TESTS_METRICS,
    PARTIAL_TAG,
    SYNTAX_ERROR_TAG,
    Bundle,
    Compare,
    Status,
    TestCase,
    TestResult,
    Verdict,
)
from runner_image.sandbox.process import Execution

# The fail tags execution alone decides: a failing verdict is its own tag, `syntax_error`
# stands for a compile error in an interpreted language, `partial` for a partial score.
TAGGED_VERDICTS = (
    Verdict.WRONG_ANSWER,
    Verdict.TIME_LIMIT_EXCEEDED,
    Verdict.MEMORY_LIMIT_EXCEEDED,
    Verdict.OUTPUT_LIMIT_EXCEEDED,
    Verdict.RUNTIME_ERROR,
    Verdict.COMPILE_ERROR,
)
VERDICT_TAGS = (*(str(v) for v in TAGGED_VERDICTS), SYNTAX_ERROR_TAG, PARTIAL_TAG)


@dataclass(frozen=True)
class TestOutcome:
    test: TestCase
    verdict: Verdict
    execution: Execution | None = None
    message: str | None = None


@dataclass(frozen=True)
class Judgement:
    """What the tests say, before any feedback: the result without its feedback text.
    `verdict` is None when nothing was run (an assignment without tests, graded by its
    rubric); `build_error` is the compiler's message when the build failed."""

    status: Status
    verdict: Verdict | None
    score: float
    max_score: float
    fail_tags: list[str]
    tests: list[TestResult]
    metrics: dict[str, Any] = field(default_factory=dict)
    build_error: str | None = None

    @property
    def build_message(self) -> str | None:
        """The compiler's message, if the build failed: it depends on the code only."""
        if self.build_error is not None:
            return self.build_error
        messages = (t.message for t in self.tests if t.verdict == Verdict.COMPILE_ERROR)
        return next((m for m in messages if m), None)

    @property
    def tests_fraction(self) -> float:
        """The share of the test weight passed, in [0, 1]. Without tests: 1, unless the
        code does not build (then nothing of it can be credited)."""
        if not self.tests:
            return 0.0 if self.verdict == Verdict.COMPILE_ERROR else 1.0
        return min(max(self.score / self.max_score, 0.0), 1.0)


def outputs_match(expected: str, got: str, mode: Compare, tolerance: float = 1e-6) -> bool:
    if mode == Compare.EXACT:
        return expected == got
    if mode == Compare.TOKENS:
        return expected.split() == got.split()
    if mode == Compare.FLOAT:
        return _floats_match(expected.split(), got.split(), tolerance)
    return _normalised_lines(expected) == _normalised_lines(got)


def _normalised_lines(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _floats_match(expected: list[str], got: list[str], tolerance: float) -> bool:
    if len(expected) != len(got):
        return False
    for want, have in zip(expected, got, strict=True):
        try:
            a, b = float(want), float(have)
        except ValueError:
            if want != have:
                return False
            continue
        if not math.isfinite(b) or not math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance):
            return False
    return True


def values_match(expected: Any, got: Any, tolerance: float = 1e-6) -> bool:
    """Deep equality of JSON values; floats within `tolerance`; True is not 1."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, int | float) and isinstance(got, int | float):
        if isinstance(expected, int) and isinstance(got, int):
            return expected == got
        return math.isfinite(got) and math.isclose(
            expected, got, rel_tol=tolerance, abs_tol=tolerance
        )
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(
            values_match(a, b, tolerance) for a, b in zip(expected, got, strict=True)
        )
    if isinstance(expected, dict) and isinstance(got, dict):
        return expected.keys() == got.keys() and all(
            values_match(expected[k], got[k], tolerance) for k in expected
        )
    return type(expected) is type(got) and expected == got


def _memory_exceeded(
    execution: Execution, memory_limit_mb: int, out_of_memory_markers: tuple[bytes, ...]
) -> bool:
    """Out of memory whatever the exit: a run whose peak went over its budget is reported so
    even when the kernel's cap (which leaves room for the runner) let it finish. Otherwise
    only a failed run: one that says so, or crashed at the edge of the limit."""
    if execution.out_of_memory:
        return True
    if execution.exit_code == 0:
        return False
    if any(marker in execution.stderr for marker in out_of_memory_markers):
        return True
    # A crash at the edge of the limit is an allocation that failed (C's malloc returning
    # NULL and the program using it anyway), not an unrelated bug.
    near_limit = (execution.max_rss_kb or 0) >= memory_limit_mb * 1024 * 0.8
    return near_limit and execution.signal in (signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT)


def _describe_exit(execution: Execution) -> str:
    if execution.signal is not None:
        try:
            name = signal.Signals(execution.signal).name
        except ValueError:  # real-time signals have no name
            name = str(execution.signal)
        return f"killed by signal {name}"
    return f"exited with code {execution.exit_code}"


def _answer_is_right(test: TestCase, stdout: bytes) -> bool:
    if test.call is None:
        return outputs_match(
            test.expected_stdout, stdout.decode("utf-8", "replace"), test.compare, test.tolerance
        )
    try:
        return values_match(test.expected, json.loads(stdout), test.tolerance)
    except (ValueError, RecursionError, OverflowError):
        # Not JSON, nested past any sensible answer, or a number beyond float: all wrong,
        # and none of them may crash the judge (a crash would be a free, uncounted attempt).
        return False


def judge_execution(
    test: TestCase,
    execution: Execution,
    time_limit_ms: int,
    memory_limit_mb: int,
    out_of_memory_markers: tuple[bytes, ...] = (),
) -> TestOutcome:
    """One test's verdict; resource verdicts win over the output comparison."""
    stderr_tail = execution.stderr.decode("utf-8", "replace")[-2000:]
    if execution.output_exceeded:
        return TestOutcome(test, Verdict.OUTPUT_LIMIT_EXCEEDED, execution, "output limit exceeded")
    if (
        execution.timed_out
        or execution.cpu_ms > time_limit_ms
        or execution.signal == signal.SIGXCPU
    ):
        return TestOutcome(
            test,
            Verdict.TIME_LIMIT_EXCEEDED,
            execution,
            f"time limit of {time_limit_ms} ms exceeded",
        )
    if _memory_exceeded(execution, memory_limit_mb, out_of_memory_markers):
        return TestOutcome(
            test,
            Verdict.MEMORY_LIMIT_EXCEEDED,
            execution,
            f"memory limit of {memory_limit_mb} MB exceeded",
        )
    if execution.exit_code != 0:
        return TestOutcome(
            test,
            Verdict.RUNTIME_ERROR,
            execution,
            f"{_describe_exit(execution)}\n{stderr_tail}".strip(),
        )
    if _answer_is_right(test, execution.stdout):
        return TestOutcome(test, Verdict.ACCEPTED, execution)
    return TestOutcome(
        test, Verdict.WRONG_ANSWER, execution, "output differs from the expected output"
    )


# What a result row keeps of a program's output and of a message: enough to show a student
# what went wrong, small enough that 200 rows always fit the backend's request limit. The
# comparison itself always uses the whole output.
REPORTED_CHARS = 4096


def clip(text: str, limit: int = REPORTED_CHARS) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... {len(text) - limit} more characters not shown]"


def compile_failure(tests: tuple[TestCase, ...], message: str) -> list[TestOutcome]:
    return [TestOutcome(t, Verdict.COMPILE_ERROR, None, message) for t in tests]


def judge(
    bundle: Bundle,
    outcomes: list[TestOutcome],
    syntax_error_tag: str,
    build_error: str | None = None,
) -> Judgement:
    """`build_error`: the compiler's message, given when the build failed; with tests it is
    also on each test's row."""
    total_weight = sum(o.test.weight for o in outcomes) or 1.0
    rows = []
    score = 0.0
    for outcome in outcomes:
        test_max = bundle.max_score * outcome.test.weight / total_weight
        test_score = test_max if outcome.verdict == Verdict.ACCEPTED else 0.0
        score += test_score
        execution = outcome.execution
        rows.append(
            TestResult(
                name=outcome.test.name,
                verdict=outcome.verdict,
                score=round(test_score, 2),
                max_score=round(test_max, 2),
                time_ms=execution.cpu_ms if execution else None,
                memory_kb=execution.max_rss_kb if execution else None,
                hidden=outcome.test.hidden,
                stdout=clip(execution.stdout.decode("utf-8", "replace")) if execution else None,
                message=clip(outcome.message) if outcome.message else None,
            )
        )
    score = round(score, 2)
    failing = [o.verdict for o in outcomes if o.verdict != Verdict.ACCEPTED]
    passed = len(outcomes) - len(failing)
    verdicts = failing or ([Verdict.COMPILE_ERROR] if build_error is not None else [])
    tags = sorted({str(v) for v in verdicts if v in TAGGED_VERDICTS})
    if Verdict.COMPILE_ERROR in verdicts and syntax_error_tag != Verdict.COMPILE_ERROR:
        tags = sorted({*tags, syntax_error_tag})
    if 0 < score < bundle.max_score:
        tags.append(PARTIAL_TAG)
    if Verdict.INTERNAL_ERROR in verdicts:
        status = Status.ERROR
    elif verdicts and passed == 0:
        status = Status.FAILED
    else:
        # Every test passed, some did, or there were none to run (the rubric grades).
        status = Status.GRADED
    return Judgement(
        status=status,
        verdict=verdicts[0] if verdicts else (Verdict.ACCEPTED if outcomes else None),
        score=score,
        max_score=bundle.max_score,
        fail_tags=tags,
        tests=rows,
        metrics={
            "tests_passed": passed,
            "tests_total": len(outcomes),
            **_resource_metrics([o for o in outcomes if not o.test.hidden]),
            **{
                ALL_TESTS_METRICS[name]: value
                for name, value in _resource_metrics(outcomes).items()
            },
        },
        build_error=build_error,
    )


def _resource_metrics(outcomes: list[TestOutcome]) -> dict[str, int]:
    """Time and memory summed up over `outcomes`. What students see covers public tests
    only: a hidden test's figures could spell out its input (allocate input[k] x 512 KiB)."""
    executions = [o.execution for o in outcomes if o.execution]
    return {
        "run_ms": sum(e.wall_ms for e in executions),
        "max_rss_kb": max((e.max_rss_kb or 0 for e in executions), default=0),
    }
