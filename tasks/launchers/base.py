"""The one interface both launchers implement."""

from __future__ import annotations

from abc import ABC, abstractmethod

from runner_image.contract import submission_token
from tasks.settings import SchedulerSettings


class LaunchError(RuntimeError):
    """The runner could not be started now; the scheduler retries, then gives up loudly."""


class LaunchDeferred(Exception):
    """Not now, and not a failure: the cluster is at MAX_RUNNING_JOBS or asked us to slow
    down (429). The scheduler retries after `countdown` seconds without spending its budget
    of launch failures, so a busy cluster delays submissions but never fails them."""

    def __init__(self, message: str, countdown: float) -> None:
        super().__init__(message)
        self.countdown = countdown


def runner_name(submission_id: str, grading_round: int = 0, attempt: int = 1) -> str:
    """`runner-<id>` for a submission's first grading (the seed's name), `runner-<id>-r<n>`
    for regrade round n: each round is a runner (a Job, a process) of its own, launched once.
    A fresh runner that the sweep sends after one never reported adds `-<attempt>`, so
    launching stays idempotent per attempt."""
    name = f"runner-{submission_id}"
    if grading_round:
        name += f"-r{grading_round}"
    return name if attempt == 1 else f"{name}-{attempt}"


def llm_gateway_url(backend_internal_url: str, submission_id: str) -> str:
    """The OpenAI base URL of one submission's runner: the backend's LLM gateway."""
    return f"{backend_internal_url.rstrip('/')}/llm/{submission_id}/v1"


class Launcher(ABC):
    def __init__(self, settings: SchedulerSettings) -> None:
        self.settings = settings

    @property
    def llm_enabled(self) -> bool:
        """Whether runners ask the model for feedback (through the backend's gateway)."""
        key = self.settings.llm_api_key
        return bool(key and key.get_secret_value())

    def runner_env(self, submission_id: str, grading_round: int = 0) -> dict[str, str]:
        """What a runner is told (runner_image.settings.RunnerSettings reads it); its token
        only works for this one grading round of this one submission.

        No provider key ever reaches a runner: student code shares its pod and uid. With
        LLM feedback on (this side has LLM_API_KEY), the runner's OpenAI base URL is the
        backend's LLM gateway for this submission (webapp/blueprints/llm_gateway.py) and
        its API key is its own result token, which the gateway checks and budgets."""
        settings = self.settings
        token = submission_token(
            settings.internal_result_token.get_secret_value(), submission_id, grading_round
        )
        env = {
            "SUBMISSION_ID": submission_id,
            "GRADING_ROUND": str(grading_round),
            "REDIS_URL": settings.redis_url,
            "BACKEND_INTERNAL_URL": settings.backend_internal_url,
            "INTERNAL_RESULT_TOKEN": token,
            "RUNNER_REQUIRE_ISOLATION": str(settings.runner_require_isolation),
            "RESULT_POST_RETRIES": str(settings.result_post_retries),
            "LLM_MODEL": settings.llm_model,
            "LLM_TIMEOUT_SECONDS": str(settings.llm_timeout_seconds),
            "LLM_MAX_RETRIES": str(settings.llm_max_retries),
            "LLM_MAX_OUTPUT_TOKENS": str(settings.llm_max_output_tokens),
        }
        if self.llm_enabled:
            env["LLM_BASE_URL"] = llm_gateway_url(settings.backend_internal_url, submission_id)
            env["LLM_API_KEY"] = token
        return env

    @abstractmethod
    def warm_up(self) -> None:
        """What the first launch would otherwise wait for, started as the worker process
        starts: the local launcher's fork server, the Kubernetes launcher's watch."""

    @abstractmethod
    def launch(
        self,
        submission_id: str,
        deadline_seconds: int,
        grading_round: int = 0,
        low_priority: bool = False,
        attempt: int = 1,
    ) -> str:
        """Start runner number `attempt` for round `grading_round` of `submission_id` once,
        to be stopped after `deadline_seconds`; return its name. Launching an already
        launched round and attempt is a success, not a second runner. A `low_priority`
        launch (a bulk regrade) leaves room for submissions where the launcher counts
        runners in flight."""
