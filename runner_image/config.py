"""The runner's settings, read from the environment the launcher gives it."""

from __future__ import annotations

import os
from dataclasses import dataclass

SECRET_VARIABLES = ("INTERNAL_RESULT_TOKEN", "LLM_API_KEY")


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
            llm_model=env.get("LLM_MODEL", "gpt-4o-mini"),
            llm_base_url=env.get("LLM_BASE_URL") or None,
            require_isolation=env.get("RUNNER_REQUIRE_ISOLATION", "basic"),
        )
        for name in SECRET_VARIABLES:
            env.pop(name, None)
        return settings
