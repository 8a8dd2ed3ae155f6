"""The one interface both launchers implement."""

from __future__ import annotations

from abc import ABC, abstractmethod

from webapp.config import Settings
from webapp.security import result_token_for


class LaunchError(RuntimeError):
    """The runner could not be started now; the scheduler retries, then gives up loudly."""


def runner_name(submission_id: str) -> str:
    return f"runner-{submission_id}"


class Launcher(ABC):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def runner_env(self, submission_id: str) -> dict[str, str]:
        """What a runner is told; its token only works for this one submission."""
        env = {
            "SUBMISSION_ID": submission_id,
            "REDIS_URL": self.settings.redis_url,
            "BACKEND_INTERNAL_URL": self.settings.backend_internal_url,
            "INTERNAL_RESULT_TOKEN": result_token_for(
                self.settings.internal_result_token, submission_id
            ),
            "LLM_MODEL": self.settings.llm_model,
            "LLM_TIMEOUT_SECONDS": str(self.settings.llm_timeout_seconds),
            "LLM_MAX_RETRIES": str(self.settings.llm_max_retries),
            "LLM_MAX_OUTPUT_TOKENS": str(self.settings.llm_max_output_tokens),
        }
        if self.settings.llm_base_url:
            env["LLM_BASE_URL"] = self.settings.llm_base_url
        return env

    @abstractmethod
    def launch(self, submission_id: str) -> str:
        """Start the runner for `submission_id` once; return its name. Launching an already
        launched submission is a success, not a second runner."""
