"""review.llm: the real openai client against the fake Chat Completions server, over HTTP. Every
failure ends in an LlmReply saying why, within the call's budget; nothing raises."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from runner_image.review.llm import BudgetExceeded, call_budget, request_feedback, run_within
from runner_image.settings import LLM_BUDGET_CAP_SECONDS
from tests.llm_fake_server import Completion, Raw, Sleep, Status, Trickle
from tests.unit.llm.llm_cases import (
    HIDDEN_EXPECTED,
    HIDDEN_STDIN,
    llm_settings,
    make_bundle,
    make_judgement,
)

GOOD = {
    "feedback": "Mind the signs of the numbers.",
    "explanations": [{"test": "negative", "explanation": "You drop the sign of `a`."}],
    "fail_tags": ["edge_case"],
}


def ask(fake, bundle=None, judgement=None, **settings):
    bundle = bundle or make_bundle()
    judgement = judgement or make_judgement(bundle, {"negative": "wrong_answer"}, {"negative": "7"})
    return request_feedback(bundle, judgement, llm_settings(fake.base_url, **settings))


class TestAnswered:
    def test_feedback_tags_and_accounting(self, fake_llm):
        fake_llm.script(Completion(GOOD, prompt_tokens=512, completion_tokens=64, model="m-1"))
        reply = ask(fake_llm)
        assert reply.status == "ok"
        assert reply.detail is None
        assert reply.answer.feedback == GOOD["feedback"]
        assert reply.answer.explanations[0].test == "negative"
        assert reply.tags == ["edge_case"]
        # What the model was told, kept to check its answer against.
        assert reply.system_prompt == fake_llm.received[0].message("system")
        assert (reply.model, reply.tokens_in, reply.tokens_out) == ("m-1", 512, 64)
        assert 0 <= reply.latency_ms < 5000

    def test_the_request(self, fake_llm):
        ask(fake_llm, llm_model="gpt-4o-mini", llm_max_output_tokens=700)
        [request] = fake_llm.received
        assert request.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer sk-test-key"
        assert request.body["model"] == "gpt-4o-mini"
        assert request.body["max_completion_tokens"] == 700
        assert request.body["response_format"]["type"] == "json_schema"
        assert request.body["response_format"]["json_schema"]["strict"] is True
        # `style` needs a rubric, which this assignment does not have.
        assert request.schema["properties"]["fail_tags"]["items"]["enum"] == [
            "edge_case",
            "off_by_one",
            "inefficient",
        ]
        explained = request.schema["properties"]["explanations"]["items"]["properties"]["test"]
        assert explained["enum"] == ["negative"]  # the failing tests that ran, and only them
        assert "rubric_score" not in request.schema["properties"]
        assert [m["role"] for m in request.messages] == ["system", "user"]

    def test_rubric_score_is_asked_and_read_when_the_rubric_has_weight(self, fake_llm):
        fake_llm.script(Completion({**GOOD, "rubric_score": 0.75}))
        reply = ask(fake_llm, bundle=make_bundle(rubric="Clear names.", rubric_weight=0.2))
        assert fake_llm.received[0].schema["required"][-1] == "rubric_score"
        assert reply.status == "ok"
        assert reply.rubric_score == 0.75

    def test_unknown_tags_are_dropped(self, fake_llm):
        fake_llm.script(Completion({**GOOD, "fail_tags": ["accepted", "off_by_one", "gold"]}))
        assert ask(fake_llm).tags == ["off_by_one"]

    def test_the_prompt_never_holds_hidden_data(self, fake_llm):
        bundle = make_bundle()
        judgement = make_judgement(
            bundle, {"hidden big": "wrong_answer"}, {"hidden big": "HIDDEN-OUT"}
        )
        ask(fake_llm, bundle, judgement)
        prompt = fake_llm.received[0].prompt
        for secret in (HIDDEN_STDIN.strip(), HIDDEN_EXPECTED.strip(), "HIDDEN-OUT"):
            assert secret not in prompt
        assert '"name": "hidden big"' in prompt

    def test_a_first_500_is_retried_by_the_client(self, fake_llm):
        fake_llm.script(Status(500), Completion(GOOD))
        assert ask(fake_llm).status == "ok"
        assert len(fake_llm.received) == 2


class TestNotAsked:
    def test_no_key(self, fake_llm):
        reply = ask(fake_llm, llm_api_key=None)
        assert (reply.status, reply.detail) == (
            "not_configured",
            "no LLM is configured (LLM_API_KEY is not set)",
        )
        assert fake_llm.received == []

    def test_turned_off_for_the_assignment(self, fake_llm):
        reply = ask(fake_llm, bundle=make_bundle(llm=False))
        assert reply.status == "disabled"
        assert fake_llm.received == []

    def test_a_submission_the_platform_could_not_judge(self, fake_llm):
        bundle = make_bundle()
        judgement = make_judgement(bundle, {"small": "internal_error"})
        assert judgement.status == "error"
        assert ask(fake_llm, bundle, judgement).status == "skipped"
        assert fake_llm.received == []


@pytest.mark.parametrize(
    ("behaviour", "status", "detail"),
    [
        (Completion("Full marks, well done!"), "invalid_output", "does not match the schema"),
        (
            Completion({"feedback": "ok", "explanations": []}),
            "invalid_output",
            "fail_tags: Field required",
        ),
        (Completion({**GOOD, "score": 100}), "invalid_output", "score: Extra inputs"),
        (
            Completion({**GOOD, "feedback": 3}),
            "invalid_output",
            "feedback: Input should",
        ),
        (Completion(None), "invalid_output", "does not match the schema"),
        (Completion(GOOD, finish_reason="length"), "invalid_output", "cut off"),
        (Completion(None, refusal="I can't help with that."), "refused", "declined"),
        (Raw(b"<html>502 Bad Gateway</html>"), "invalid_output", "not a chat completion"),
        (Raw(b'{"choices": []}'), "invalid_output", "no choices"),
        (Status(401, "bad key"), "rejected", "HTTP 401"),
        (Status(400, "response_format unsupported"), "rejected", "HTTP 400"),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,
)
def test_bad_answers_are_reported_not_retried(fake_llm, behaviour, status, detail):
    fake_llm.script(behaviour, Completion(GOOD))
    reply = ask(fake_llm)
    assert reply.status == status
    assert detail in reply.detail
    assert reply.answer is None
    assert len(fake_llm.received) == 1


class TestDown:
    def test_500s_are_retried_once_then_reported(self, fake_llm):
        fake_llm.reset(default=Status(500))
        reply = ask(fake_llm, llm_max_retries=1)
        assert (reply.status, reply.detail) == (
            "unavailable",
            "the LLM API answered HTTP 500 (2 attempts)",
        )
        assert len(fake_llm.received) == 2

    def test_retries_are_bounded_by_the_setting(self, fake_llm):
        fake_llm.reset(default=Status(503))
        ask(fake_llm, llm_max_retries=0)
        assert len(fake_llm.received) == 1

    def test_timeout(self, fake_llm):
        fake_llm.reset(default=Sleep(30, then=Completion(GOOD)))
        started = time.monotonic()
        reply = ask(fake_llm, llm_timeout_seconds=0.5, llm_max_retries=1)
        elapsed = time.monotonic() - started
        assert (reply.status, reply.detail) == (
            "timeout",
            "the LLM API gave no complete answer within 0.5 s",
        )
        assert len(fake_llm.received) == 1  # the budget is spent before a retry could start
        assert elapsed < call_budget(llm_settings(None, llm_timeout_seconds=0.5))[1] + 0.5

    def test_a_trickling_server_is_cut_off_by_the_budget(self, fake_llm):
        fake_llm.reset(default=Trickle(seconds=30, interval=0.1))
        settings = {"llm_timeout_seconds": 0.5, "llm_max_retries": 0}
        budget = call_budget(llm_settings(None, **settings))[1]
        started = time.monotonic()
        reply = ask(fake_llm, **settings)
        assert reply.status == "timeout"
        assert reply.detail == f"the LLM API gave no complete answer within {budget:g} s"
        assert time.monotonic() - started < budget + 1

    def test_a_long_retry_after_is_not_waited_for(self, fake_llm):
        fake_llm.reset(default=Status(429, headers={"Retry-After": "100"}))
        started = time.monotonic()
        reply = ask(fake_llm, llm_max_retries=1)
        assert reply.status == "unavailable"
        assert "HTTP 429" in reply.detail
        assert time.monotonic() - started < 5

    def test_nothing_listening(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        reply = request_feedback(
            make_bundle(),
            make_judgement(make_bundle(), {}),
            llm_settings(f"http://127.0.0.1:{port}/v1", llm_max_retries=0),
        )
        assert reply.status == "unavailable"
        assert reply.detail == "could not connect to the LLM API (1 attempt)"


def test_markup_is_removed_from_every_text_of_the_answer(fake_llm):
    fake_llm.script(
        Completion(
            {
                "feedback": 'Fine.<img src="https://x.test/p.png">',
                "explanations": [{"test": "negative", "explanation": "Signs.<b>!</b>"}],
                "fail_tags": [],
            }
        )
    )
    reply = ask(fake_llm)
    assert reply.answer.texts == ["Fine.", "Signs.!"]


class TestBudget:
    def test_the_configured_timeout_bounds_the_whole_call_retries_included(self):
        settings = llm_settings(None, llm_timeout_seconds=20.0, llm_max_retries=3)
        assert call_budget(settings) == (20.0, 20.0)

    def test_capped(self):
        settings = llm_settings(None, llm_timeout_seconds=500.0, llm_max_retries=3)
        assert call_budget(settings) == (LLM_BUDGET_CAP_SECONDS, LLM_BUDGET_CAP_SECONDS)

    def test_the_job_deadline_reserves_at_least_the_cap(self):
        from tasks.launchers.deadline import LLM_BUDGET_SECONDS

        assert LLM_BUDGET_SECONDS >= LLM_BUDGET_CAP_SECONDS

    def test_run_within_returns_raises_or_gives_up(self):
        assert run_within(1, lambda: 42) == 42
        with pytest.raises(ZeroDivisionError):
            run_within(1, lambda: 1 / 0)
        release = threading.Event()
        started = time.monotonic()
        with pytest.raises(BudgetExceeded):
            run_within(0.2, release.wait)
        assert time.monotonic() - started < 1
        release.set()


def test_a_bug_on_our_side_is_reported_not_raised(fake_llm, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("stdout")

    monkeypatch.setattr("runner_image.review.llm.build_messages", broken)
    reply = ask(fake_llm)
    assert (reply.status, reply.detail) == ("error", "the LLM feedback step failed unexpectedly")


def test_odd_usage_numbers_are_not_recorded(fake_llm):
    fake_llm.script(
        lambda request: Raw(
            b'{"id": "x", "object": "chat.completion", "created": 0, "model": "m", '
            b'"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",'
            b' "content": "{\\"feedback\\": \\"ok\\", \\"explanations\\": [], '
            b'\\"fail_tags\\": []}"}}], '
            b'"usage": {"prompt_tokens": "many", "completion_tokens": true}}'
        )
    )
    reply = ask(fake_llm)
    assert reply.status == "ok"
    assert (reply.tokens_in, reply.tokens_out) == (None, None)
