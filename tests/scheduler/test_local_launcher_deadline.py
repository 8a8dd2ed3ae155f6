"""The local launcher's kill timer on a real process, reporting to a stand-in for the
backend's internal API (moved out of tests/unit: it starts a process and a server)."""

from __future__ import annotations

import subprocess
import time

import fakeredis

from runner_image.contract import submission_token
from tasks.launchers.local import LocalLauncher
from tasks.settings import SchedulerSettings
from tests.fake_internal_api import FakeInternalApi

SECRET = "r" * 40
SUBMISSION_ID = "65a0000000000000000000aa"


def test_local_runner_past_its_deadline_is_killed_and_reported():
    """As a Job's activeDeadlineSeconds would: the whole runner group dies, and the
    submission ends in `error` instead of waiting forever."""
    backend = FakeInternalApi()
    try:
        settings = SchedulerSettings.from_env(
            {"REDIS_URL": "redis://127.0.0.1:1/0"},  # the launcher gets a fake Redis below
            internal_result_token=SECRET,
            backend_internal_url=backend.url,
        )
        launcher = LocalLauncher(settings, redis_client=fakeredis.FakeRedis())
        runner = subprocess.Popen(["sleep", "60"], start_new_session=True)
        started = time.monotonic()

        launcher._watch(runner, SUBMISSION_ID, deadline=1)

        assert time.monotonic() - started < 10
        assert runner.poll() is not None
        [post] = backend.posts
        assert post["path"] == f"/internal/submissions/{SUBMISSION_ID}/result"
        assert post["token"] == submission_token(SECRET, SUBMISSION_ID)
        assert post["body"]["status"] == "error"
        assert "deadline of 1 s" in post["body"]["feedback"]
    finally:
        backend.stop()
