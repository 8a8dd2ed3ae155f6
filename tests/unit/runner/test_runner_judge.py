"""grading.judge: output comparison, one test's verdict, and the whole judgement."""

from __future__ import annotations

import dataclasses
import json
import signal

import pytest
from pydantic import ValidationError

from runner_image.contract import Bundle, Compare, TestCase, TestResult, Verdict
from runner_image.grading.judge import TestOutcome as Outcome
from runner_image.grading.judge import (
    compile_failure,
    judge,
    judge_execution,
    outputs_match,
    values_match,
)
from runner_image.sandbox.languages import LANGUAGES
from runner_image.sandbox.process import Execution

TIME_LIMIT_MS = 1000
MEMORY_LIMIT_MB = 64
PYTHON_OOM = LANGUAGES["python"].out_of_memory_markers
CPP_OOM = LANGUAGES["cpp"].out_of_memory_markers


def make_execution(**overrides) -> Execution:
    fields = {
        "exit_code": 0,
        "signal": None,
        "stdout": b"",
        "stderr": b"",
        "wall_ms": 10,
        "cpu_ms": 5,
        "max_rss_kb": 1000,
        "timed_out": False,
        "output_exceeded": False,
    }
    fields.update(overrides)
    return Execution(**fields)


def spec(name: str = "t", expected: str = "42\n", **overrides) -> TestCase:
    return TestCase(name=name, stdin="", expected_stdout=expected, **overrides)


def verdict_of(
    execution: Execution, test: TestCase | None = None, markers: tuple[bytes, ...] = PYTHON_OOM
) -> Outcome:
    return judge_execution(test or spec(), execution, TIME_LIMIT_MS, MEMORY_LIMIT_MB, markers)


# --- outputs_match -------------------------------------------------------------------------


class TestLinesMode:
    @pytest.mark.parametrize(
        ("expected", "got"),
        [
            ("a\nb\n", "a\nb\n"),
            ("a\nb\n", "a  \nb\t\n"),
            ("a\nb\n", "a\nb"),
            ("a\nb\n", "a\nb\n\n\n"),
            ("a\nb\n", "a\nb\n  \n\t\n"),
            ("a\r\nb\r\n", "a\nb\n"),
            ("a\nb\n", "a\r\nb\r\n"),
            ("", "\n\n"),
        ],
    )
    def test_equivalent(self, expected, got):
        assert outputs_match(expected, got, "lines") is True

    @pytest.mark.parametrize(
        ("expected", "got"),
        [
            ("a\nb\n", " a\nb\n"),  # leading whitespace is significant
            ("a\nb\n", "a\n\nb\n"),  # an inner blank line is significant
            ("a b\n", "a  b\n"),
            ("a\nb\n", "a\n"),
            ("a\n", "A\n"),
            ("", "x"),
        ],
    )
    def test_different(self, expected, got):
        assert outputs_match(expected, got, "lines") is False

    def test_unknown_mode_compares_lines(self):
        assert outputs_match("a\n", "a   \n\n", "no-such-mode") is True
        assert outputs_match("a\n", "b\n", "no-such-mode") is False

    def test_a_test_case_accepts_only_the_known_modes(self):
        assert {m.value for m in Compare} == {"lines", "exact", "tokens", "float"}
        with pytest.raises(ValidationError, match="compare"):
            spec(compare="no-such-mode")


class TestExactMode:
    def test_identical(self):
        assert outputs_match("a b\n", "a b\n", "exact") is True

    @pytest.mark.parametrize("got", ["a b", "a b \n", "a b\n\n", "a b\r\n", "a  b\n"])
    def test_any_difference_fails(self, got):
        assert outputs_match("a b\n", got, "exact") is False


class TestTokensMode:
    @pytest.mark.parametrize("got", ["1 2 3", "1\t2\n3\n", "  1   2\r\n3  \n\n"])
    def test_whitespace_is_irrelevant(self, got):
        assert outputs_match("1 2\n3\n", got, "tokens") is True

    @pytest.mark.parametrize("got", ["12 3", "1 2", "1 2 3 4", "3 2 1"])
    def test_token_differences(self, got):
        assert outputs_match("1 2\n3\n", got, "tokens") is False


class TestFloatMode:
    @pytest.mark.parametrize(
        ("expected", "got"),
        [
            ("0.3", "0.30000000000000004"),
            ("1.5 2.5\n", "1.5000000001\n2.4999999999"),
            ("1e-7", "0"),  # within the absolute tolerance
            ("1000000", "1000000.5"),  # within the relative tolerance
            ("-0", "0.0"),
            ("x = 1.0", "x = 1.0000000001"),  # equal non-numeric tokens pass
        ],
    )
    def test_within_default_tolerance(self, expected, got):
        assert outputs_match(expected, got, "float") is True

    @pytest.mark.parametrize(
        ("expected", "got"),
        [
            ("1.0", "1.001"),
            ("1.0", "-1.0"),
            ("1000000", "1000002"),
        ],
    )
    def test_outside_default_tolerance(self, expected, got):
        assert outputs_match(expected, got, "float") is False

    def test_explicit_tolerance(self):
        assert outputs_match("1.0", "1.001", "float", tolerance=1e-2) is True
        assert outputs_match("1.0", "1.02", "float", tolerance=1e-2) is False

    @pytest.mark.parametrize("got", ["nan", "NaN", "inf", "-inf", "infinity"])
    def test_non_finite_output_rejected(self, got):
        assert outputs_match("1.0", got, "float") is False

    @pytest.mark.parametrize("value", ["nan", "inf"])
    def test_non_finite_output_rejected_even_when_expected(self, value):
        assert outputs_match(value, value, "float") is False

    @pytest.mark.parametrize(("expected", "got"), [("1.0 2.0", "1.0"), ("1.0", "1.0 2.0")])
    def test_token_count_mismatch(self, expected, got):
        assert outputs_match(expected, got, "float") is False

    @pytest.mark.parametrize(
        ("expected", "got"),
        [("1.0", "abc"), ("abc", "1.0"), ("x = 1", "y = 1"), ("ok", "OK")],
    )
    def test_non_numeric_tokens_must_be_equal(self, expected, got):
        assert outputs_match(expected, got, "float") is False


# --- judge_execution -----------------------------------------------------------------------


class TestJudgeExecution:
    def test_accepted(self):
        outcome = verdict_of(make_execution(stdout=b"42  \n\n"))
        assert outcome.verdict == "accepted"
        assert outcome.message is None

    def test_wrong_answer(self):
        outcome = verdict_of(make_execution(stdout=b"41\n"))
        assert outcome.verdict == "wrong_answer"
        assert outcome.message == "output differs from the expected output"

    def test_uses_the_tests_compare_mode(self):
        test = spec(expected="0.3\n", compare="float")
        assert verdict_of(make_execution(stdout=b"0.30000000000000004"), test).verdict == (
            "accepted"
        )
        exact = spec(expected="42\n", compare="exact")
        assert verdict_of(make_execution(stdout=b"42"), exact).verdict == "wrong_answer"

    def test_invalid_utf8_output_is_a_wrong_answer(self):
        assert verdict_of(make_execution(stdout=b"\xff\xfe42\n")).verdict == "wrong_answer"

    def test_output_limit_wins_over_everything(self):
        execution = make_execution(
            output_exceeded=True,
            timed_out=True,
            cpu_ms=5000,
            exit_code=None,
            signal=signal.SIGKILL,
            stderr=b"MemoryError",
        )
        outcome = verdict_of(execution)
        assert outcome.verdict == "output_limit_exceeded"
        assert outcome.message == "output limit exceeded"

    def test_timeout_wins_over_memory_and_crash(self):
        execution = make_execution(
            timed_out=True, exit_code=None, signal=signal.SIGKILL, stderr=b"MemoryError"
        )
        outcome = verdict_of(execution)
        assert outcome.verdict == "time_limit_exceeded"
        assert outcome.message == "time limit of 1000 ms exceeded"

    def test_cpu_over_limit_is_tle_even_with_correct_output(self):
        execution = make_execution(stdout=b"42\n", cpu_ms=TIME_LIMIT_MS + 1)
        assert verdict_of(execution).verdict == "time_limit_exceeded"

    def test_cpu_exactly_at_limit_is_fine(self):
        execution = make_execution(stdout=b"42\n", cpu_ms=TIME_LIMIT_MS)
        assert verdict_of(execution).verdict == "accepted"

    def test_sigxcpu_is_tle(self):
        execution = make_execution(exit_code=None, signal=signal.SIGXCPU, cpu_ms=10)
        assert verdict_of(execution).verdict == "time_limit_exceeded"

    def test_python_memory_error_is_mle(self):
        stderr = b'Traceback (most recent call last):\n  File "main.py"\nMemoryError\n'
        outcome = verdict_of(make_execution(exit_code=1, stderr=stderr))
        assert outcome.verdict == "memory_limit_exceeded"
        assert outcome.message == "memory limit of 64 MB exceeded"

    def test_cpp_bad_alloc_is_mle(self):
        stderr = b"terminate called after throwing an instance of 'std::bad_alloc'\n"
        execution = make_execution(exit_code=None, signal=signal.SIGABRT, stderr=stderr)
        assert verdict_of(execution, markers=CPP_OOM).verdict == "memory_limit_exceeded"

    def test_markers_are_per_language(self):
        """A Python MemoryError text printed by some other language's program means nothing."""
        execution = make_execution(exit_code=1, stderr=b"MemoryError\n")
        assert verdict_of(execution, markers=CPP_OOM).verdict == "runtime_error"
        assert verdict_of(execution, markers=()).verdict == "runtime_error"

    @pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT])
    def test_crash_near_the_memory_limit_is_mle(self, sig):
        execution = make_execution(
            exit_code=None, signal=sig, max_rss_kb=int(MEMORY_LIMIT_MB * 1024 * 0.85)
        )
        assert verdict_of(execution, markers=()).verdict == "memory_limit_exceeded"

    def test_killed_far_from_the_memory_limit_is_a_runtime_error(self):
        execution = make_execution(exit_code=None, signal=signal.SIGKILL, max_rss_kb=2000)
        outcome = verdict_of(execution)
        assert outcome.verdict == "runtime_error"
        assert outcome.message == "killed by signal SIGKILL"

    def test_memory_error_text_with_exit_zero_is_judged_on_output(self):
        execution = make_execution(exit_code=0, stdout=b"42\n", stderr=b"MemoryError")
        assert verdict_of(execution).verdict == "accepted"

    def test_non_zero_exit_is_a_runtime_error_even_with_correct_output(self):
        execution = make_execution(exit_code=3, stdout=b"42\n", stderr=b"ValueError: boom\n")
        outcome = verdict_of(execution)
        assert outcome.verdict == "runtime_error"
        assert outcome.message == "exited with code 3\nValueError: boom"

    def test_signal_is_a_runtime_error(self):
        execution = make_execution(exit_code=None, signal=signal.SIGSEGV, stderr=b"")
        outcome = verdict_of(execution)
        assert outcome.verdict == "runtime_error"
        assert outcome.message == "killed by signal SIGSEGV"

    def test_unnamed_realtime_signal_is_a_runtime_error(self):
        outcome = verdict_of(make_execution(exit_code=None, signal=40))
        assert outcome.verdict == "runtime_error"
        assert "40" in outcome.message

    def test_runtime_error_message_keeps_only_the_stderr_tail(self):
        stderr = b"A" * 3000 + b"B" * 2000
        outcome = verdict_of(make_execution(exit_code=1, stderr=stderr))
        assert outcome.message == "exited with code 1\n" + "B" * 2000

    def test_outcome_keeps_test_and_execution(self):
        test = spec(name="first")
        execution = make_execution(stdout=b"42\n")
        outcome = verdict_of(execution, test)
        assert outcome.test is test
        assert outcome.execution is execution


class TestValuesMatch:
    @pytest.mark.parametrize(
        ("expected", "got"),
        [
            (5, 5),
            (0.3, 0.1 + 0.2),
            (1.0, 1),
            ([1, [2.0, "x"]], [1, [2.0000000001, "x"]]),
            ({"a": 1, "b": [True, None]}, {"b": [True, None], "a": 1}),
            (None, None),
        ],
    )
    def test_equal(self, expected, got):
        assert values_match(expected, got) is True

    @pytest.mark.parametrize(
        ("expected", "got"),
        [
            (5, 6),
            (True, 1),  # True is not 1
            (1, True),
            (0, False),
            (1.0, 1.1),
            (1.0, float("nan")),
            (1.0, float("inf")),
            ([1, 2], [1, 2, 3]),
            ([1, 2], (1, 2)),
            ({"a": 1}, {"a": 1, "b": 2}),
            ("5", 5),
            (None, 0),
        ],
    )
    def test_different(self, expected, got):
        assert values_match(expected, got) is False

    def test_tolerance(self):
        assert values_match(1.0, 1.05, tolerance=0.1) is True
        assert values_match(1.0, 1.2, tolerance=0.1) is False


class TestCallTestJudging:
    def test_returned_json_value_is_compared(self):
        test = TestCase(name="call", call="add(2, 3)", expected=5)
        assert verdict_of(make_execution(stdout=b"5"), test).verdict == "accepted"
        assert verdict_of(make_execution(stdout=b"6"), test).verdict == "wrong_answer"

    def test_stdout_that_is_not_json_is_a_wrong_answer(self):
        test = TestCase(name="call", call="f()", expected=[1, 2])
        assert verdict_of(make_execution(stdout=b"[1, 2"), test).verdict == "wrong_answer"
        assert verdict_of(make_execution(stdout=b""), test).verdict == "wrong_answer"


# --- judge ---------------------------------------------------------------------------------


def bundle(*tests: TestCase, max_score: float = 100.0) -> Bundle:
    return Bundle(submission_id="s1", language="python", code="", tests=tests, max_score=max_score)


def outcome(test: TestCase, verdict: str, **execution) -> Outcome:
    return Outcome(test, Verdict(verdict), make_execution(**execution))


class TestJudge:
    def test_all_accepted(self):
        tests = [spec(f"t{i}") for i in range(3)]
        judgement = judge(bundle(*tests), [outcome(t, "accepted") for t in tests], "syntax_error")
        assert judgement.status == "graded"
        assert judgement.verdict == "accepted"
        assert judgement.score == 100.0
        assert judgement.max_score == 100.0
        assert judgement.fail_tags == []
        assert [row.max_score for row in judgement.tests] == [33.33, 33.33, 33.33]
        assert judgement.metrics["tests_passed"] == 3
        assert judgement.metrics["tests_total"] == 3

    def test_weights_split_the_max_score(self):
        light, heavy = spec("light", weight=1), spec("heavy", weight=3)
        judgement = judge(
            bundle(light, heavy),
            [outcome(light, "accepted"), outcome(heavy, "wrong_answer")],
            "syntax_error",
        )
        rows = {row.name: row for row in judgement.tests}
        assert rows["light"].max_score == 25.0
        assert rows["light"].score == 25.0
        assert rows["heavy"].max_score == 75.0
        assert rows["heavy"].score == 0.0
        assert judgement.score == 25.0
        assert judgement.status == "graded"
        assert judgement.verdict == "wrong_answer"
        assert judgement.fail_tags == ["wrong_answer", "partial"]
        assert judgement.metrics["tests_passed"] == 1
        assert judgement.metrics["tests_total"] == 2

    def test_total_is_rounded_to_two_decimals(self):
        tests = [spec(f"t{i}") for i in range(3)]
        verdicts = ["accepted", "accepted", "wrong_answer"]
        judgement = judge(
            bundle(*tests, max_score=10),
            [outcome(t, v) for t, v in zip(tests, verdicts, strict=True)],
            "syntax_error",
        )
        assert judgement.score == 6.67
        assert [row.score for row in judgement.tests] == [3.33, 3.33, 0.0]

    def test_all_failing_is_failed_and_verdict_is_the_first_failure(self):
        tests = [spec("a"), spec("b"), spec("c")]
        judgement = judge(
            bundle(*tests),
            [
                outcome(tests[0], "time_limit_exceeded"),
                outcome(tests[1], "wrong_answer"),
                outcome(tests[2], "time_limit_exceeded"),
            ],
            "syntax_error",
        )
        assert judgement.status == "failed"
        assert judgement.verdict == "time_limit_exceeded"
        assert judgement.score == 0.0
        assert judgement.fail_tags == ["time_limit_exceeded", "wrong_answer"]
        assert judgement.metrics["tests_passed"] == 0

    def test_verdict_is_first_failure_in_test_order(self):
        tests = [spec("a"), spec("b"), spec("c")]
        judgement = judge(
            bundle(*tests),
            [
                outcome(tests[0], "accepted"),
                outcome(tests[1], "runtime_error"),
                outcome(tests[2], "memory_limit_exceeded"),
            ],
            "syntax_error",
        )
        assert judgement.verdict == "runtime_error"
        assert judgement.fail_tags == ["memory_limit_exceeded", "runtime_error", "partial"]

    def test_internal_error_makes_the_status_error(self):
        tests = [spec("a"), spec("b")]
        judgement = judge(
            bundle(*tests),
            [outcome(tests[0], "accepted"), Outcome(tests[1], Verdict.INTERNAL_ERROR, None, "x")],
            "syntax_error",
        )
        assert judgement.status == "error"
        assert judgement.verdict == "internal_error"
        assert "internal_error" not in judgement.fail_tags

    def test_python_compile_error_adds_syntax_error_tag(self):
        tests = (spec("a"), spec("b"))
        judgement = judge(bundle(*tests), compile_failure(tests, "SyntaxError"), "syntax_error")
        assert judgement.status == "failed"
        assert judgement.verdict == "compile_error"
        assert judgement.score == 0.0
        assert "syntax_error" in judgement.fail_tags
        assert "partial" not in judgement.fail_tags
        assert [row.verdict for row in judgement.tests] == ["compile_error"] * 2
        assert [row.message for row in judgement.tests] == ["SyntaxError"] * 2
        assert judgement.tests[0].stdout is None
        assert judgement.tests[0].time_ms is None

    def test_compiled_language_compile_error_has_no_syntax_error_tag(self):
        tests = (spec("a"),)
        judgement = judge(bundle(*tests), compile_failure(tests, "error"), "compile_error")
        assert judgement.fail_tags == ["compile_error"]

    def test_rows_and_metrics_come_from_the_executions(self):
        public, hidden = spec("public"), spec("hidden", hidden=True)
        judgement = judge(
            bundle(public, hidden),
            [
                outcome(public, "accepted", stdout=b"42\n", cpu_ms=7, wall_ms=30, max_rss_kb=900),
                outcome(hidden, "accepted", stdout=b"42\n", cpu_ms=9, wall_ms=40, max_rss_kb=1200),
            ],
            "syntax_error",
        )
        first, second = judgement.tests
        assert isinstance(first, TestResult)
        assert first.model_dump() == {
            "name": "public",
            "verdict": "accepted",
            "score": 50.0,
            "max_score": 50.0,
            "time_ms": 7,
            "memory_kb": 900,
            "hidden": False,
            "stdout": "42\n",
            "message": None,
        }
        assert second.hidden is True
        assert second.time_ms == 9
        # What students see covers the public test only; staff also get every test's sum.
        assert judgement.metrics == {
            "tests_passed": 2,
            "tests_total": 2,
            "run_ms": 30,
            "max_rss_kb": 900,
            "run_ms_all_tests": 70,
            "max_rss_kb_all_tests": 1200,
        }

    def test_judgement_is_json_ready(self):
        """Every field is plain JSON, or a TestResult row that dumps to JSON."""
        test = spec("a")
        judgement = judge(bundle(test), [outcome(test, "accepted")], "syntax_error")
        fields = {f.name: getattr(judgement, f.name) for f in dataclasses.fields(judgement)}
        fields["tests"] = [row.model_dump(mode="json") for row in judgement.tests]
        data = json.loads(json.dumps(fields))
        assert data["score"] == 100.0
        assert (data["status"], data["verdict"]) == ("graded", "accepted")
        assert data["tests"][0]["verdict"] == "accepted"


# --- what a student's output can do to the judge ------------------------------------------


@pytest.mark.parametrize(
    "stdout",
    [b"[" * 30_000 + b"]" * 30_000, b"1" + b"0" * 400, b"NaN", b"not json"],
    ids=["nested-past-recursion", "beyond-float", "nan", "not-json"],
)
def test_a_call_answer_that_cannot_be_compared_is_wrong_not_a_crash(stdout):
    call_test = TestCase(name="c", call="f()", expected=1.5)
    assert verdict_of(make_execution(stdout=stdout), call_test).verdict == "wrong_answer"


def test_reported_output_is_clipped_but_judged_whole():
    expected = "x" * 10_000 + "\n"
    outcome = verdict_of(make_execution(stdout=expected.encode()), spec(expected=expected))
    bundle = Bundle(submission_id="s", language="python", code="", tests=(outcome.test,))
    row = judge(bundle, [outcome], "syntax_error").tests[0]
    assert outcome.verdict == "accepted"
    assert row.stdout.startswith("x" * 4096 + "\n[... ")
    assert len(row.stdout) < 4200


class TestWithoutTests:
    """An assignment graded by its rubric alone: nothing runs, the build may still fail."""

    def test_nothing_to_run_is_graded_with_no_verdict(self):
        judgement = judge(bundle(), [], "syntax_error")
        assert (judgement.status, judgement.verdict, judgement.score) == ("graded", None, 0.0)
        assert judgement.fail_tags == []
        assert judgement.tests_fraction == 1.0
        assert judgement.build_message is None

    @pytest.mark.parametrize(
        ("tag", "tags"),
        [("syntax_error", ["compile_error", "syntax_error"]), ("compile_error", ["compile_error"])],
    )
    def test_a_failed_build_is_kept_on_the_judgement(self, tag, tags):
        judgement = judge(bundle(), [], tag, build_error="main.c:1: error: expected ';'")
        assert (judgement.status, judgement.verdict) == ("failed", Verdict.COMPILE_ERROR)
        assert judgement.fail_tags == tags
        assert judgement.build_message == "main.c:1: error: expected ';'"
        assert judgement.tests_fraction == 0.0


def test_the_share_of_test_weight_passed():
    heavy = TestCase(name="heavy", weight=3)
    light = TestCase(name="light", weight=1)
    judgement = judge(
        bundle(heavy, light), [outcome(heavy, "accepted"), outcome(light, "wrong_answer")], "x"
    )
    assert judgement.tests_fraction == 0.75
    compiled = judge(bundle(heavy), compile_failure((heavy,), "boom"), "x")
    assert compiled.build_message == "boom"
