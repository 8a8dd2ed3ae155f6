"""Runs the runner as a local process: the laptop, the tests and the embedded default."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import redis

from runner_image.callback import CallbackError, InternalApiClient, error_result
from tasks.launchers.base import Launcher, LaunchError, runner_name

log = logging.getLogger(__name__)

LAUNCH_MARK_TTL_SECONDS = 24 * 3600


class LocalLauncher(Launcher):
    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5)

    def launch(self, submission_id: str) -> str:
        name = runner_name(submission_id)
        try:
            first = self.redis.set(f"launched:{name}", "1", nx=True, ex=LAUNCH_MARK_TTL_SECONDS)
        except redis.RedisError as exc:
            raise LaunchError(f"cannot record the launch of {name}: {exc}") from exc
        if not first:
            log.info("%s was already launched; not starting it twice", name)
            return name
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "RUNNER_REQUIRE_ISOLATION": self.settings.runner_require_isolation,
            **self.runner_env(submission_id),
        }
        if os.environ.get("LLM_API_KEY"):
            env["LLM_API_KEY"] = os.environ["LLM_API_KEY"]
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "runner_image"], env=env, start_new_session=True
            )
        except OSError as exc:
            self.redis.delete(f"launched:{name}")
            raise LaunchError(f"cannot start {name}: {exc}") from exc
        threading.Thread(
            target=self._watch, args=(process, submission_id), name=name, daemon=True
        ).start()
        log.info("started %s as pid %d", name, process.pid)
        return name

    def _watch(self, process: subprocess.Popen, submission_id: str) -> None:
        """A runner that dies before reporting leaves its submission in `error`, not waiting."""
        code = process.wait()
        if code == 0:
            return
        log.error("runner for %s exited with %d", submission_id, code)
        env = self.runner_env(submission_id)
        client = InternalApiClient(env["BACKEND_INTERNAL_URL"], env["INTERNAL_RESULT_TOKEN"])
        try:
            client.post_result(submission_id, error_result(f"the runner exited with code {code}"))
        except CallbackError as exc:
            log.warning("could not report the runner failure of %s: %s", submission_id, exc)
        finally:
            client.close()
