"""The runner's settings, read from the environment the launcher gives it."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

SECRET_VARIABLES = ("INTERNAL_RESULT_TOKEN", "LLM_API_KEY")

# The most the LLM feedback step may take, whatever the settings say. A runner Job's deadline
# reserves this much for it (tasks/launchers/deadline.py LLM_BUDGET_SECONDS must not be lower).
LLM_BUDGET_CAP_SECONDS = 60.0

N = TypeVar("N", int, float)
log = logging.getLogger("runner")


class RunnerConfigError(RuntimeError):
    pass


@dataclass(frozen=True)
class RunnerSettings:
    submission_id: str
    redis_url: str
    backend_internal_url: str
    result_token: str
    result_retries: int = 2
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_base_url: str | None = None
    require_isolation: str = "basic"
    llm_timeout_seconds: float = 20.0
    llm_max_retries: int = 1
    llm_max_output_tokens: int = 1000

    @classmethod
    def from_env(cls) -> RunnerSettings:
        """Read the settings, then drop the secrets from os.environ so nothing inherits them."""
        env = os.environ
        missing = [
            name
            for name in (
                "SUBMISSION_ID",
                "REDIS_URL",
                "BACKEND_INTERNAL_URL",
                "INTERNAL_RESULT_TOKEN",
            )
            if not env.get(name)
        ]
        if missing:
            raise RunnerConfigError(f"missing environment variables: {', '.join(missing)}")
        settings = cls(
            submission_id=env["SUBMISSION_ID"],
            redis_url=env["REDIS_URL"],
            backend_internal_url=env["BACKEND_INTERNAL_URL"],
            result_token=env["INTERNAL_RESULT_TOKEN"],
            result_retries=int(env.get("RESULT_POST_RETRIES", "2")),
            llm_api_key=env.get("LLM_API_KEY") or None,
            llm_model=env.get("LLM_MODEL") or "gpt-4o-mini",
            llm_base_url=env.get("LLM_BASE_URL") or None,
            require_isolation=env.get("RUNNER_REQUIRE_ISOLATION", "basic"),
            llm_timeout_seconds=_number(env, "LLM_TIMEOUT_SECONDS", 20.0, float, minimum=0.1),
            llm_max_retries=_number(env, "LLM_MAX_RETRIES", 1, int, minimum=0),
            llm_max_output_tokens=_number(env, "LLM_MAX_OUTPUT_TOKENS", 1000, int, minimum=0),
        )
        for name in SECRET_VARIABLES:
            env.pop(name, None)
        return settings


def _number(env: Mapping[str, str], name: str, default: N, kind: type[N], minimum: N) -> N:
    """An optional LLM setting. A malformed one falls back to its default with a warning
    instead of stopping the runner: grading must never depend on the LLM's configuration."""
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = None
    if value is None or not value >= minimum:  # `not >=` also refuses NaN
        log.warning("%s=%r is not a number >= %s; using %s", name, raw, minimum, default)
        return default
    return value
