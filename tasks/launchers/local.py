"""Runs the runner as a local process: the laptop, the tests and the embedded default. Each
runner is forked by a fork server that has imported the runner already (runner_forks)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading

import redis

from runner_image.contract import (
    UNREPORTED_EXIT_CODE,
    UNREPORTED_KEY,
    CallbackError,
    InternalApiClient,
    Result,
)
from tasks.launchers.base import Launcher, LaunchError, runner_name
from tasks.launchers.runner_forks import ForkedRunner, ForkServerGone, RunnerForkServer
from tasks.settings import SchedulerSettings

log = logging.getLogger(__name__)

LAUNCH_MARK_TTL_SECONDS = 24 * 3600


class LocalLauncher(Launcher):
    def __init__(
        self,
        settings: SchedulerSettings,
        redis_client: redis.Redis | None = None,
        forks: RunnerForkServer | None = None,
    ) -> None:
        super().__init__(settings)
        self.redis = redis_client or redis.Redis.from_url(
            settings.redis_url, socket_timeout=5, socket_connect_timeout=5
        )
        self.forks = forks or RunnerForkServer(with_llm=self.llm_enabled)

    def warm_up(self) -> None:
        self.forks.start()

    def launch(
        self,
        submission_id: str,
        deadline_seconds: int,
        grading_round: int = 0,
        low_priority: bool = False,
        attempt: int = 1,
    ) -> str:
        """No cap on local runners, so `low_priority` changes nothing here: the queue order
        (bulk regrades on their own, lower-priority queue) is what keeps them behind."""
        name = runner_name(submission_id, grading_round, attempt)
        try:
            first = self.redis.set(f"launched:{name}", "1", nx=True, ex=LAUNCH_MARK_TTL_SECONDS)
        except redis.RedisError as exc:
            raise LaunchError(f"cannot record the launch of {name}: {exc}") from exc
        if not first:
            log.info("%s was already launched; not starting it twice", name)
            return name
        # Nothing of the worker's own environment but PATH: runner_env is all a runner gets
        # (the LLM through the backend's gateway, never the provider's key).
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **self.runner_env(submission_id, grading_round),
        }
        try:
            process = self.forks.spawn(env)
        except ForkServerGone as exc:
            self.redis.delete(f"launched:{name}")
            raise LaunchError(f"cannot start {name}: {exc}") from exc
        threading.Thread(
            target=self._watch,
            args=(process, submission_id, deadline_seconds, grading_round),
            name=name,
            daemon=True,
        ).start()
        log.info("started %s as pid %d", name, process.pid)
        return name

    def _watch(
        self, process: ForkedRunner, submission_id: str, deadline: int, grading_round: int = 0
    ) -> None:
        """A runner that dies before reporting, or outlives its deadline (as a Job's
        activeDeadlineSeconds would stop it), leaves its submission in `error`, not waiting.
        One whose end nobody saw (its fork server died first) is left to the sweep."""
        try:
            code = process.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            reason = f"the runner did not finish within its deadline of {deadline} s"
        else:
            if code == 0:
                return
            if code in (UNREPORTED_EXIT_CODE, None):
                # It could not report (or had no bundle): an error now would end the
                # submission for a fault of the platform; the sweep sends a fresh runner,
                # at its next pass when this mark gets through, else once it is overdue.
                log.warning("runner for %s could not report; left to the sweep", submission_id)
                with contextlib.suppress(redis.RedisError):
                    self.redis.sadd(UNREPORTED_KEY, submission_id)
                return
            reason = f"the runner exited with code {code}"
        log.error("runner for %s: %s", submission_id, reason)
        env = self.runner_env(submission_id, grading_round)
        client = InternalApiClient(env["BACKEND_INTERNAL_URL"], env["INTERNAL_RESULT_TOKEN"])
        try:
            client.post_result(submission_id, Result.error(reason, grading_round))
        except CallbackError as exc:
            log.warning("could not report the runner failure of %s: %s", submission_id, exc)
        finally:
            client.close()
