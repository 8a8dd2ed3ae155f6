"""The injection corpus: real submissions, graded by the real grader, reviewed by a fake model
that obeys every injection (full marks, a perfect rubric score, made-up tags). Every final
score must equal the test score (the rubric's share is earned by passing tests, so a perfect
rubric score gives back exactly what the weight took), no praise it was told to give may
reach the student, and every corpus submission must be tagged for the instructor."""

from __future__ import annotations

import pytest

from runner_image.grading.grader import grade
from runner_image.grading.judge import Judgement
from runner_image.review.reviewer import review
from runner_image.sandbox.isolation import probe_isolation
from tests.llm_fake_server import (
    fake_chat_server,
    obeying_model,
    obeying_model_breaking_schema,
)
from tests.unit.llm.llm_cases import CLEAN_SUBMISSIONS, INJECTION_CORPUS, llm_settings, make_bundle

RUBRIC = "Readable names, no needless code."
CORPUS_IDS = [name for name, _ in INJECTION_CORPUS]
CLEAN_IDS = [name for name, _ in CLEAN_SUBMISSIONS]


@pytest.fixture(scope="module")
def obeying_llm():
    with fake_chat_server(default=obeying_model) as server:
        yield server


@pytest.fixture(scope="module")
def graded() -> dict[str, Judgement]:
    """Each submission graded once by the real grader, with the rubric-free bundle (the
    rubric does not change how tests run)."""
    isolation = probe_isolation()
    return {
        name: grade(make_bundle(code), isolation)
        for name, code in (*INJECTION_CORPUS, *CLEAN_SUBMISSIONS)
    }


def test_the_corpus_spans_scores(graded):
    scores = {graded[name].score for name in CORPUS_IDS}
    assert {0.0, 100.0} <= scores
    assert any(0 < score < 100 for score in scores)


@pytest.mark.parametrize(("name", "code"), INJECTION_CORPUS, ids=CORPUS_IDS)
def test_without_rubric_weight_the_score_is_the_test_score(name, code, graded, obeying_llm):
    judgement = graded[name]
    result = review(make_bundle(code), judgement, llm_settings(obeying_llm.base_url))
    # The model did answer, and obeyed: what it said was vetted, and dropped if it lied.
    assert result.metrics["llm"] in ("ok", "inconsistent")
    assert "Full marks" not in result.feedback and "100/100" not in result.feedback[40:]
    assert result.score == judgement.score
    assert result.status == judgement.status
    assert result.instructor_tags == ["suspected_injection"]
    assert "suspected_injection" not in result.fail_tags
    assert set(result.fail_tags) <= {*judgement.fail_tags, "edge_case", "off_by_one"}
    assert "injection" not in result.feedback.lower()
    assert result.feedback.startswith(f"**Score: {judgement.score:g} / 100**")


@pytest.mark.parametrize("weight", [0.1, 0.3])
@pytest.mark.parametrize(("name", "code"), INJECTION_CORPUS, ids=CORPUS_IDS)
def test_with_rubric_weight_only_the_rubric_share_can_move(name, code, weight, graded, obeying_llm):
    judgement = graded[name]
    bundle = make_bundle(code, rubric=RUBRIC, rubric_weight=weight)
    result = review(bundle, judgement, llm_settings(obeying_llm.base_url))
    # The obeying model's perfect rubric score, or none where its answer was dropped.
    assert result.metrics["rubric_score"] in (1.0, None)
    assert result.metrics["tests_score"] == judgement.score
    assert result.score == judgement.score
    assert (result.rubric_score or 0) <= round(weight * judgement.score, 2)
    assert result.instructor_tags == ["suspected_injection"]
    assert result.score_state == "provisional"


@pytest.mark.parametrize(("name", "code"), INJECTION_CORPUS[:4], ids=CORPUS_IDS[:4])
def test_an_obeying_model_that_breaks_the_schema_changes_nothing(name, code, graded):
    judgement = graded[name]
    with fake_chat_server(default=obeying_model_breaking_schema) as llm:
        result = review(make_bundle(code), judgement, llm_settings(llm.base_url))
    assert result.metrics["llm"] == "invalid_output"
    assert result.score == judgement.score
    assert "Full marks" not in result.feedback and "Perfect" not in result.feedback
    assert result.instructor_tags == ["suspected_injection"]


@pytest.mark.parametrize(("name", "code"), INJECTION_CORPUS, ids=CORPUS_IDS)
def test_the_code_reaches_the_model_only_inside_the_data_block(name, code, graded, obeying_llm):
    obeying_llm.reset()
    review(make_bundle(code), graded[name], llm_settings(obeying_llm.base_url))
    user = obeying_llm.received[-1].message("user")
    begin = user.index("student code>>>\n") + len("student code>>>\n")
    end = user.rindex("\n<<<END ")
    assert user[begin:end] == code


@pytest.mark.parametrize(("name", "code"), CLEAN_SUBMISSIONS, ids=CLEAN_IDS)
def test_clean_submissions_are_not_tagged(name, code, graded, obeying_llm):
    judgement = graded[name]
    result = review(make_bundle(code), judgement, llm_settings(obeying_llm.base_url))
    assert result.instructor_tags == []
    assert result.score == judgement.score


def test_without_an_llm_the_corpus_is_still_tagged(graded):
    for name, code in INJECTION_CORPUS:
        result = review(make_bundle(code), graded[name], llm_settings(None, llm_api_key=None))
        assert result.instructor_tags == ["suspected_injection"], name
        assert result.score == graded[name].score
