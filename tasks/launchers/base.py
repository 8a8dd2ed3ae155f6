"""The one interface both launchers implement."""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from typing import Any

import redis

from runner_image.bundle import BUNDLE_KEY
from tasks.launchers.deadline import runner_deadline_seconds
from webapp.config import Settings
from webapp.security import result_token_for

log = logging.getLogger(__name__)


class LaunchError(RuntimeError):
    """The runner could not be started now; the scheduler retries, then gives up loudly."""


def runner_name(submission_id: str) -> str:
    return f"runner-{submission_id}"


class Launcher(ABC):
    def __init__(self, settings: Settings, redis_client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = redis_client or redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=5
        )

    def deadline_seconds(self, submission_id: str) -> int:
        """How long this submission's runner may take, sized from its bundle."""
        return runner_deadline_seconds(
            self._bundle(submission_id),
            self.settings.runner_min_deadline_seconds,
            self.settings.runner_max_deadline_seconds,
        )

    def _bundle(self, submission_id: str) -> dict[str, Any] | None:
        """The grading bundle; without it the minimum deadline applies (and the runner,
        which needs it too, reports the problem itself)."""
        try:
            raw = self.redis.get(BUNDLE_KEY.format(id=submission_id))
            bundle = json.loads(raw) if raw else None
        except (redis.RedisError, ValueError) as exc:
            log.warning("cannot read the bundle of %s to size its deadline: %s", submission_id, exc)
            return None
        return bundle if isinstance(bundle, dict) else None

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
