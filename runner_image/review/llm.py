"""The LLM call: one bounded request to an OpenAI-compatible Chat Completions API (OpenAI,
vLLM, Ollama...) through the official `openai` client.

The call is bounded twice. The client's own per-attempt timeout and `max_retries` (with its
short exponential backoff) handle the common failures. A hard wall-clock budget around the
whole call handles the rest: an HTTP read timeout is per read, so a server trickling bytes
never trips it, and a server's Retry-After could ask for minutes (we drop that header; the
client's backoff applies instead). Whatever happens, `request_feedback` returns an `LlmReply`
saying why there is or is no feedback; it never raises, so the submission is always graded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import ValidationError

from runner_image.contract import Bundle, Status
from runner_image.grading.judge import Judgement
from runner_image.grading.score import rubric_weight
from runner_image.review.answer import (
    FeedbackAnswer,
    RubricFeedbackAnswer,
    parse_answer,
    response_format,
)
from runner_image.review.filters import plain_markdown
from runner_image.review.prompt import build_messages, explained_tests
from runner_image.review.tags import kept_tags, suggestible_tags
from runner_image.settings import LLM_BUDGET_CAP_SECONDS, RunnerSettings

log = logging.getLogger("runner.llm")

T = TypeVar("T")

OK = "ok"
NOT_CONFIGURED = "not_configured"
DISABLED = "disabled"
SKIPPED = "skipped"
TIMEOUT = "timeout"
UNAVAILABLE = "unavailable"
REJECTED = "rejected"
INVALID_OUTPUT = "invalid_output"
REFUSED = "refused"
LEAK_FILTERED = "leak_filtered"
INCONSISTENT = "inconsistent"
ERROR = "error"


@dataclass(frozen=True)
class LlmReply:
    """The outcome of the LLM step: `status` is one of the constants above, `detail` says
    in a sentence why there is no feedback when there is none. `system_prompt` is what the
    model was told, to check its answer against; the vetting (review.vetting) fills in
    `discarded_reason`, `dropped_tags` and `dropped_explanations`."""

    status: str
    detail: str | None = None
    answer: FeedbackAnswer | None = None
    tags: list[str] = field(default_factory=list)
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency_ms: int | None = None
    system_prompt: str | None = None
    discarded_reason: str | None = None
    dropped_tags: dict[str, str] = field(default_factory=dict)
    dropped_explanations: int = 0

    @property
    def rubric_score(self) -> float | None:
        if isinstance(self.answer, RubricFeedbackAnswer):
            return self.answer.rubric_score
        return None


class BudgetExceeded(TimeoutError):
    """The whole call, retries included, did not finish within its wall-clock budget."""


def call_budget(settings: RunnerSettings) -> tuple[float, float]:
    """(per-attempt timeout, whole-call budget) in seconds. LLM_TIMEOUT_SECONDS bounds the
    whole step, retries included, so an LLM that is down adds at most that to grading;
    retries only help when a failure comes fast (a 500, a refused connection). Never more
    than LLM_BUDGET_CAP_SECONDS, which the Job deadline reserves."""
    budget = min(float(settings.llm_timeout_seconds), LLM_BUDGET_CAP_SECONDS)
    return budget, budget


def run_within(budget_seconds: float, call: Callable[[], T]) -> T:
    """`call()` in a daemon thread, abandoned after `budget_seconds`. A daemon thread rather
    than an executor: a stuck executor thread would hold up the runner's exit, a daemon one
    dies with the process once the result is reported."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="llm-call", daemon=True).start()
    if not done.wait(budget_seconds):
        raise BudgetExceeded(f"no complete answer within {budget_seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _schema_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "answer"
    count = exc.error_count()
    errors = f"{count} error{'s' if count > 1 else ''}"
    return f"the LLM answer does not match the schema ({errors}; {where}: {first['msg']})"


def request_feedback(bundle: Bundle, judgement: Judgement, settings: RunnerSettings) -> LlmReply:
    """Ask the model to explain the test outcomes. Never raises: even a bug on this side
    must leave the submission graded from its tests."""
    try:
        return _ask(bundle, judgement, settings)
    except Exception:
        log.exception("the LLM feedback step failed")
        return LlmReply(ERROR, "the LLM feedback step failed unexpectedly")


def _ask(bundle: Bundle, judgement: Judgement, settings: RunnerSettings) -> LlmReply:
    if not settings.llm_api_key:
        return LlmReply(NOT_CONFIGURED, "no LLM is configured (LLM_API_KEY is not set)")
    if not bundle.feedback.llm:
        return LlmReply(DISABLED, "LLM feedback is turned off for this assignment")
    if judgement.status == Status.ERROR:
        return LlmReply(
            SKIPPED, "the submission could not be judged, so there is nothing to explain"
        )
    tags = suggestible_tags(bundle)
    with_rubric = rubric_weight(bundle) > 0
    messages = build_messages(bundle, judgement, tags, with_rubric)
    schema = response_format(tags, with_rubric, explained_tests(judgement))
    # Imported here: the openai client takes about a second of CPU to import, which a
    # runner without LLM feedback (or with nothing to explain) must not pay.
    from runner_image.review.llm_call import complete, failure

    per_attempt, budget = call_budget(settings)
    model = settings.llm_model
    started = time.monotonic()
    try:
        response = run_within(budget, lambda: complete(settings, per_attempt, messages, schema))
    except Exception as exc:
        status, detail = failure(exc, per_attempt, settings.llm_max_retries + 1)
        latency = round((time.monotonic() - started) * 1000)
        log.warning("LLM feedback unavailable after %d ms: %s", latency, detail)
        return LlmReply(status, detail, model=model, latency_ms=latency)
    latency = round((time.monotonic() - started) * 1000)
    reply = _read_response(response, tags, with_rubric, model, latency)
    return replace(reply, system_prompt=messages[0]["content"])


def _count(value: Any) -> int | None:
    """A token count as reported by a server we do not control: an int, or nothing."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read_response(
    response: Any, tags: list[str], with_rubric: bool, model: str, latency: int
) -> LlmReply:
    usage = getattr(response, "usage", None)
    accounting: dict[str, Any] = {
        "model": str(getattr(response, "model", None) or model)[:200],
        "tokens_in": _count(getattr(usage, "prompt_tokens", None)),
        "tokens_out": _count(getattr(usage, "completion_tokens", None)),
        "latency_ms": latency,
    }
    choices = getattr(response, "choices", None) or []
    if not choices:
        return LlmReply(INVALID_OUTPUT, "the LLM API answered with no choices", **accounting)
    choice = choices[0]
    message = choice.message
    if getattr(message, "refusal", None):
        return LlmReply(REFUSED, "the model declined to give feedback", **accounting)
    if choice.finish_reason == "length":
        return LlmReply(
            INVALID_OUTPUT, "the LLM answer was cut off at its token limit", **accounting
        )
    try:
        answer = parse_answer(message.content or "", with_rubric)
    except ValidationError as exc:
        return LlmReply(INVALID_OUTPUT, _schema_problem(exc), **accounting)
    explanations = [
        item.model_copy(update={"explanation": plain_markdown(item.explanation)})
        for item in answer.explanations
    ]
    answer = answer.model_copy(
        update={"feedback": plain_markdown(answer.feedback), "explanations": explanations}
    )
    return LlmReply(OK, None, answer, kept_tags(answer.fail_tags, tags), **accounting)
