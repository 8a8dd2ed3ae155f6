"""grading.grader.grade where it refuses before running anything: no process is started and
no working directory is made. (Grading that runs programs is in tests/sandbox.)"""

from __future__ import annotations

from runner_image.contract import Bundle, TestCase
from runner_image.grading import grader
from runner_image.sandbox.isolation import Isolation


def test_unknown_language_is_an_internal_error(workdirs):
    bundle = Bundle(
        submission_id="s1",
        language="cobol",
        code="DISPLAY 'HI'.",
        tests=(
            TestCase(name="a", stdin="", expected_stdout="HI\n"),
            TestCase(name="b", stdin="", expected_stdout="HI\n"),
        ),
    )
    judgement = grader.grade(bundle, Isolation())
    assert judgement.status == "error"
    assert judgement.verdict == "internal_error"
    assert judgement.score == 0.0
    assert [row.verdict for row in judgement.tests] == ["internal_error", "internal_error"]
    assert "unknown language 'cobol'" in judgement.tests[0].message
    assert workdirs == []
