"""review.evidence: a tag the model suggests is kept only when the run shows what it claims.
One class per rule; every rule is checked both ways (kept with its evidence, dropped
without)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from runner_image.contract import FeedbackSettings, TestCase
from runner_image.grading.judge import compile_failure, judge
from runner_image.review.evidence import grounded_tags, tag_problem
from runner_image.review.tags import FEEDBACK_TAGS, suggestible_tags
from tests.unit.llm.llm_cases import make_bundle, make_judgement

LOOPS = (
    TestCase(name="one", stdin="1\n", expected_stdout="1\n"),
    TestCase(name="many", stdin="5\n", expected_stdout="15\n"),
    TestCase(name="huge", stdin="100000000\n", expected_stdout="5000000050000000\n"),
)


def run(verdicts=None, tests=LOOPS, time_ms=None, memory_kb=None, **feedback):
    """The bundle and a judgement with the given verdicts (accepted by default), and each
    listed test's measured time and memory."""
    bundle = make_bundle(tests=tests, **feedback)
    judgement = make_judgement(bundle, verdicts or {})
    for row in judgement.tests:
        row.time_ms = (time_ms or {}).get(row.name, 15)
        row.memory_kb = (memory_kb or {}).get(row.name, 9000)
    return bundle, judgement


def problem(tag, verdicts=None, rubric_score=None, **run_args):
    bundle, judgement = run(verdicts, **run_args)
    return tag_problem(tag, bundle, judgement, rubric_score)


class TestNoFailureTagOnAPassingSubmission:
    @pytest.mark.parametrize("tag", [*FEEDBACK_TAGS, "recursion"])
    def test_every_tag_is_dropped(self, tag):
        assert problem(tag, time_ms={"huge": 1990}, rubric="Clear", tags=["recursion"]) == (
            "every test passed"
        )

    def test_the_model_suggesting_every_tag_gets_none(self):
        bundle, judgement = run(rubric="Clear", rubric_weight=0.2, tags=["recursion"])
        kept, dropped = grounded_tags(suggestible_tags(bundle), bundle, judgement, 0.5)
        assert kept == []
        assert set(dropped) == {*FEEDBACK_TAGS, "recursion"}


class TestEdgeCase:
    def test_some_passed_and_some_failed(self):
        assert problem("edge_case", {"huge": "wrong_answer"}) is None

    def test_all_failed(self):
        verdicts = dict.fromkeys(("one", "many", "huge"), "wrong_answer")
        assert problem("edge_case", verdicts) == "needs some tests passed and some failed"

    def test_a_compile_error_is_not_a_failure_that_ran(self):
        bundle = make_bundle(tests=LOOPS)
        judgement = judge(bundle, compile_failure(LOOPS, "error"), "syntax_error")
        assert tag_problem("edge_case", bundle, judgement, None) is not None


class TestOffByOne:
    @pytest.mark.parametrize("verdict", ["wrong_answer", "runtime_error"])
    def test_a_wrong_answer_or_a_crash(self, verdict):
        assert problem("off_by_one", {"many": verdict}) is None

    def test_not_a_timeout(self):
        assert problem("off_by_one", {"huge": "time_limit_exceeded"}) == (
            "needs a wrong answer or a crash"
        )


class TestInefficient:
    @pytest.mark.parametrize("verdict", ["time_limit_exceeded", "memory_limit_exceeded"])
    def test_a_resource_verdict(self, verdict):
        assert problem("inefficient", {"huge": verdict}) is None

    def test_a_wrong_answer_near_the_time_limit(self):
        # The limit is 2000 ms: 80 % of it is 1600 ms.
        assert problem("inefficient", {"one": "wrong_answer"}, time_ms={"huge": 1600}) is None

    def test_a_wrong_answer_near_the_memory_limit(self):
        # The limit is 256 MB: 80 % of it is 209,716 KB.
        verdicts = {"one": "wrong_answer"}
        assert problem("inefficient", verdicts, memory_kb={"huge": 210_000}) is None

    def test_a_wrong_answer_well_within_the_limits(self):
        verdicts = {"one": "wrong_answer"}
        assert problem("inefficient", verdicts, time_ms={"huge": 1599}) == (
            "needs a time or memory limit exceeded, or a test within 80% of a limit"
        )


class TestStyle:
    def test_needs_a_rubric(self):
        assert problem("style", {"one": "wrong_answer"}) == "needs a rubric to judge style by"

    def test_with_a_rubric_the_model_must_not_have_given_it_full_marks(self):
        verdicts = {"one": "wrong_answer"}
        assert problem("style", verdicts, 0.6, rubric="Clear names", rubric_weight=0.2) is None
        assert problem("style", verdicts, 1.0, rubric="Clear names", rubric_weight=0.2) == (
            "the model gave the rubric full marks"
        )
        assert problem("style", verdicts, None, rubric="Clear names") is None


class TestAssignmentTags:
    def test_a_linked_tag_needs_one_of_its_tests_to_fail(self):
        links = {"tags": ["overflow"], "tag_tests": {"overflow": ["huge"]}}
        assert problem("overflow", {"huge": "wrong_answer"}, **links) is None
        assert problem("overflow", {"one": "wrong_answer"}, **links) == (
            "needs one of its linked tests to fail"
        )

    def test_a_linked_test_that_did_not_build_is_no_evidence(self):
        bundle = make_bundle(tests=LOOPS, tags=["overflow"], tag_tests={"overflow": ["huge"]})
        judgement = judge(bundle, compile_failure(LOOPS, "error"), "syntax_error")
        assert tag_problem("overflow", bundle, judgement, None) is not None

    def test_an_unlinked_tag_needs_some_test_to_fail(self):
        assert problem("naming", {"one": "runtime_error"}, tags=["naming"]) is None

    def test_links_are_matched_as_tags_are_spelled_by_the_runner(self):
        links = {"tags": [" Overflow "], "tag_tests": {"OVERFLOW": ["huge"]}}
        assert problem("overflow", {"huge": "wrong_answer"}, **links) is None

    def test_a_link_must_name_a_tag_of_the_assignment(self):
        with pytest.raises(ValidationError, match="tag_tests links tags that are not in tags"):
            FeedbackSettings(tags=["overflow"], tag_tests={"recursion": ["huge"]})

    def test_bundles_without_links_still_load(self):
        settings = FeedbackSettings.model_validate({"llm": True, "tags": ["naming"]})
        assert settings.tag_tests == {}
        assert settings.linked_tests() == {}


def test_an_assignment_without_tests_grounds_only_style():
    bundle = make_bundle(tests=(), rubric="Clear names", tags=["naming"])
    judgement = judge(bundle, [], "syntax_error")
    kept, dropped = grounded_tags([*FEEDBACK_TAGS, "naming"], bundle, judgement, 0.4)
    assert kept == ["style"]
    assert set(dropped) == {"edge_case", "off_by_one", "inefficient", "naming"}
