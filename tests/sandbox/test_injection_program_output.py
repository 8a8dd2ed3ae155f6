"""review.injection over what the corpus programs print: each program is run (a plain Python
subprocess) so that detection sees its real output, as the reviewer does."""

from __future__ import annotations

import subprocess
import sys

import pytest

from runner_image.review.injection import detect_injection
from tests.unit.llm.llm_cases import CLEAN_SUBMISSIONS, INJECTION_CORPUS


def program_output(code: str, stdin: str = "1 2\n") -> str:
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], input=stdin, capture_output=True, text=True, timeout=10
    )
    return done.stdout


@pytest.mark.parametrize(("name", "code"), INJECTION_CORPUS, ids=[n for n, _ in INJECTION_CORPUS])
def test_every_corpus_submission_is_detected_in_its_code_or_output(name, code):
    assert detect_injection(code, program_output(code)), name


@pytest.mark.parametrize(("name", "code"), CLEAN_SUBMISSIONS, ids=[n for n, _ in CLEAN_SUBMISSIONS])
def test_clean_submissions_are_not_flagged(name, code):
    assert detect_injection(code, program_output(code)) == [], name


def test_output_alone_can_carry_the_injection():
    code = dict(INJECTION_CORPUS)["printed_by_the_program"]
    assert detect_injection(code) == []
    assert detect_injection(code, program_output(code)) == [
        "disguised_command",
        "override_instructions",
    ]
