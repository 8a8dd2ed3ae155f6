"""bench/llm_quality: the labelled set matches its recorded executions, and the script scores
a stand-in model through the real review step (openai client, prompt, vetting). The honest
stand-in names every failing test and some causes; a praising one scores nothing."""

from __future__ import annotations

import json

from bench.llm_quality import quality
from bench.llm_quality.cases import CASES
from runner_image.review.answer import FeedbackAnswer, TestExplanation
from runner_image.review.llm import LlmReply
from runner_image.sandbox.languages import LANGUAGES


def test_the_set_spans_the_five_languages_with_bugs_the_recording_shows():
    assert len(CASES) >= 20
    assert {case.language for case in CASES} == set(LANGUAGES)
    assert len({case.id for case in CASES}) == len(CASES)
    recorded = quality.load_recorded()
    assert set(recorded) == {case.id for case in CASES}
    for case in CASES:
        assert quality.label_problem(case, recorded[case.id]) is None
        assert case.cause not in quality.bundle_of(case).model_dump_json()  # never shown


def test_the_script_scores_the_honest_stand_in(tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert quality.main(["--stand-in", "explain", "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert scores["model"] == "stand-in:explain"
    assert (scores["cases"], scores["languages"]) == (len(CASES), 5)
    assert scores["answers_kept"] == len(CASES)
    assert scores["named_rate"] == 1.0
    # Verdict-based explanations find some causes (a crash's message, a timeout), not most.
    assert 0 < scores["cases_right_cause"] < len(CASES) / 2
    assert f"failing tests named: {scores['failing_tests']}/{scores['failing_tests']}" in printed


def test_a_praising_model_scores_nothing():
    with quality.model_settings("praise", 10) as (_, settings):
        scores = quality.evaluate(settings, quality.load_recorded(), CASES[:5])
    total = quality.summary(scores)
    assert total["answers_kept"] == 0
    assert (total["failing_tests_named"], total["cases_right_cause"]) == (0, 0)


def test_a_test_name_is_not_a_cause():
    case = next(c for c in CASES if c.id == "js_max_of_nothing")
    judgement = quality.load_recorded()[case.id]

    def reply(text: str) -> LlmReply:
        items = [TestExplanation(test="empty", explanation=text)]
        answer = FeedbackAnswer(feedback="See below.", explanations=items, fail_tags=[])
        return LlmReply("ok", answer=answer)

    assert not quality.score_reply(case, judgement, reply("`empty` prints -5.")).cause
    named = quality.score_reply(case, judgement, reply("An empty input gives -Infinity."))
    assert (named.named, named.failing, named.cause) == (1, 1, True)
