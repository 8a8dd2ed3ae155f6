"""The HTTP side of the LLM call, through the official `openai` client: one completion
request, and the sentence that says why a failed one failed. Kept apart from `llm` so that
only a runner that calls the model imports the client."""

from __future__ import annotations

from typing import Any

import openai

from runner_image.review.llm import (
    ERROR,
    INVALID_OUTPUT,
    REJECTED,
    TIMEOUT,
    UNAVAILABLE,
    BudgetExceeded,
)
from runner_image.settings import RunnerSettings

_CONNECT_TIMEOUT_SECONDS = 5.0


def _drop_retry_after(response: Any) -> None:
    """httpx response hook. A Retry-After of minutes would stall grading; the client's own
    short backoff applies instead."""
    for name in ("retry-after", "retry-after-ms"):
        if name in response.headers:
            del response.headers[name]


def complete(
    settings: RunnerSettings,
    per_attempt: float,
    messages: list[dict[str, str]],
    schema: dict[str, Any],
) -> Any:
    extra: dict[str, Any] = {}
    if settings.llm_max_output_tokens:
        extra["max_completion_tokens"] = settings.llm_max_output_tokens
    http_client = openai.DefaultHttpxClient(event_hooks={"response": [_drop_retry_after]})
    with openai.OpenAI(
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        base_url=settings.llm_base_url,
        timeout=openai.Timeout(per_attempt, connect=min(per_attempt, _CONNECT_TIMEOUT_SECONDS)),
        max_retries=settings.llm_max_retries,
        http_client=http_client,
    ) as client:
        return client.chat.completions.create(
            model=settings.llm_model,
            messages=messages,  # type: ignore[arg-type]
            response_format=schema,  # type: ignore[arg-type]
            **extra,
        )


def failure(exc: BaseException, per_attempt: float, attempts: int) -> tuple[str, str]:
    """The status and the sentence recorded for a call that raised."""
    tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
    if isinstance(exc, BudgetExceeded):
        return TIMEOUT, f"the LLM API gave {exc}"
    if isinstance(exc, openai.APITimeoutError):
        return TIMEOUT, f"the LLM API did not answer within {per_attempt:g} s ({tries})"
    if isinstance(exc, openai.APIConnectionError):
        return UNAVAILABLE, f"could not connect to the LLM API ({tries})"
    if isinstance(exc, openai.RateLimitError):
        return UNAVAILABLE, f"the LLM API is rate limiting us (HTTP 429, {tries})"
    if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
        return UNAVAILABLE, f"the LLM API answered HTTP {exc.status_code} ({tries})"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return REJECTED, f"the LLM API refused our key (HTTP {exc.status_code}); check LLM_API_KEY"
    if isinstance(exc, openai.APIStatusError):
        return REJECTED, f"the LLM API refused the request (HTTP {exc.status_code})"
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return INVALID_OUTPUT, "the LLM API answered something that is not a chat completion"
    return ERROR, f"the LLM call failed ({type(exc).__name__})"
