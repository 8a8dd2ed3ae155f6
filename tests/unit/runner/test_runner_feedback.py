"""review.feedback: the deterministic markdown feedback and its code fences."""

from __future__ import annotations

import re

import pytest

from runner_image.contract import Bundle, TestCase, Verdict
from runner_image.grading.judge import TestOutcome as Outcome
from runner_image.grading.judge import compile_failure, judge
from runner_image.review.feedback import deterministic_feedback, fenced
from runner_image.sandbox.process import Execution


def spec(name: str, stdin: str, expected_stdout: str, **fields) -> TestCase:
    return TestCase(name=name, stdin=stdin, expected_stdout=expected_stdout, **fields)


def execution(stdout: bytes = b"", exit_code: int = 0, cpu_ms: int = 12) -> Execution:
    return Execution(
        exit_code=exit_code,
        signal=None,
        stdout=stdout,
        stderr=b"",
        wall_ms=20,
        cpu_ms=cpu_ms,
        max_rss_kb=1000,
        timed_out=False,
        output_exceeded=False,
    )


def judgement_of(*rows: tuple[TestCase, str, Execution | None, str | None]):
    tests = tuple(row[0] for row in rows)
    bundle = Bundle(submission_id="s1", language="python", code="", tests=tests)
    outcomes = [Outcome(test, Verdict(verdict), *rest) for test, verdict, *rest in rows]
    return judge(bundle, outcomes, "syntax_error")


class TestFenced:
    def test_plain_text_uses_three_backticks(self):
        assert fenced("hello") == "```\nhello\n```"

    @pytest.mark.parametrize(
        ("text", "fence"),
        [
            ("```\n# not a heading", "````"),
            ("a ```` b", "`````"),
            ("x`y``z", "```"),
        ],
    )
    def test_fence_is_longer_than_any_backtick_run(self, text, fence):
        assert fenced(text) == f"{fence}\n{text}\n{fence}"

    def test_text_cannot_close_the_fence(self):
        text = "before\n```\n**injected markdown**\n```\nafter"
        block = fenced(text)
        fence = block.split("\n", 1)[0]
        inner = block[len(fence) + 1 : -(len(fence) + 1)]
        assert inner == text
        runs = re.findall(r"`+", inner)
        assert all(len(run) < len(fence) for run in runs)


class TestDeterministicFeedback:
    def test_header_and_passed_lines(self):
        a, b = spec("a", "", "1\n"), spec("b", "", "2\n")
        feedback = deterministic_feedback(
            judgement_of(
                (a, "accepted", execution(b"1\n", cpu_ms=12), None),
                (b, "wrong_answer", execution(b"3\n"), "output differs"),
            )
        )
        assert feedback.splitlines() == [
            "**Score: 50 / 100**: 1 of 2 tests passed.",
            "",
            "- `a`: passed (12 ms)",
            "- `b`: **wrong_answer**: the output differs from the expected output.",
        ]

    def test_public_runtime_error_shows_the_fenced_message(self):
        test = spec("crash", "", "1\n")
        message = "exited with code 1\nTraceback\n```\nValueError: boom"
        feedback = deterministic_feedback(
            judgement_of((test, "runtime_error", execution(exit_code=1), message))
        )
        assert "- `crash`: **runtime_error**: the program crashed" in feedback
        assert fenced(message) in feedback

    def test_runtime_error_message_is_truncated_to_its_tail(self):
        test = spec("crash", "", "1\n")
        message = "H" * 1000 + "T" * 1500
        feedback = deterministic_feedback(
            judgement_of((test, "runtime_error", execution(exit_code=1), message))
        )
        assert fenced("T" * 1500) in feedback
        assert "H" not in feedback.split("```", 1)[1]

    def test_hidden_tests_never_show_stdout_or_message(self):
        hidden_rte = spec("h1", "", "1\n", hidden=True)
        hidden_wa = spec("h2", "", "1\n", hidden=True)
        feedback = deterministic_feedback(
            judgement_of(
                (
                    hidden_rte,
                    "runtime_error",
                    execution(b"STDOUT-OF-HIDDEN-1", exit_code=1),
                    "MESSAGE-OF-HIDDEN-1",
                ),
                (hidden_wa, "wrong_answer", execution(b"STDOUT-OF-HIDDEN-2"), "MESSAGE-2"),
            )
        )
        assert "- `h1` (hidden test): **runtime_error**" in feedback
        assert "- `h2` (hidden test): **wrong_answer**" in feedback
        for secret in ("STDOUT-OF-HIDDEN", "MESSAGE-OF-HIDDEN", "MESSAGE-2"):
            assert secret not in feedback
        assert "```" not in feedback

    def test_public_wrong_answer_does_not_echo_stdout(self):
        test = spec("p", "", "1\n")
        feedback = deterministic_feedback(
            judgement_of((test, "wrong_answer", execution(b"PRINTED"), "differs"))
        )
        assert "PRINTED" not in feedback

    def test_compile_error_shows_the_message_once_and_stops(self):
        tests = (spec("a", "", "1\n"), spec("b", "", "1\n", hidden=True))
        bundle = Bundle(submission_id="s1", language="python", code="", tests=tests)
        message = '  File "main.py", line 1\n    def f(:\nSyntaxError: invalid syntax'
        feedback = deterministic_feedback(
            judge(bundle, compile_failure(tests, message), "syntax_error")
        )
        assert feedback == "\n".join(
            [
                "**Score: 0 / 100**: 0 of 2 tests passed.",
                "",
                "Your code does not compile:",
                "",
                fenced(message),
            ]
        )

    def test_compile_message_is_capped(self):
        tests = (spec("a", "", "1\n"),)
        bundle = Bundle(submission_id="s1", language="python", code="", tests=tests)
        feedback = deterministic_feedback(
            judge(bundle, compile_failure(tests, "E" * 5000), "syntax_error")
        )
        assert feedback.count("E") == 4000

    def test_internal_error_advice(self):
        test = spec("a", "", "1\n")
        feedback = deterministic_feedback(judgement_of((test, "internal_error", None, "why")))
        assert "- `a`: **internal_error**: the grader could not run this test." in feedback
