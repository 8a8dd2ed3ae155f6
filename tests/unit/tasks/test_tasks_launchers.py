"""Launchers: scoped runner tokens, idempotent local launches, launcher selection."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis

import tasks.launchers.local as local_module
from tasks.launchers import LaunchError, make_launcher
from tasks.launchers.base import Launcher, runner_name
from tasks.launchers.local import LocalLauncher
from tests.fake_internal_api import FakeInternalApi
from webapp.config import Settings
from webapp.security import result_token_for

SECRET = "r" * 40
SUBMISSION_ID = "65a0000000000000000000aa"


class _NoopLauncher(Launcher):
    def launch(self, submission_id: str) -> str:
        return runner_name(submission_id)


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "internal_result_token": SECRET,
        "secret_key": "k" * 32,
        "redis_url": "redis://127.0.0.1:1/0",
    }
    values.update(overrides)
    return Settings.from_env({}, **values)


# --- runner_env ---------------------------------------------------------------------------


def test_runner_env_carries_a_per_submission_token_not_the_secret():
    env = _NoopLauncher(_settings()).runner_env(SUBMISSION_ID)

    assert env["SUBMISSION_ID"] == SUBMISSION_ID
    assert env["INTERNAL_RESULT_TOKEN"] == result_token_for(SECRET, SUBMISSION_ID)
    assert SECRET not in env.values()
    assert all(SECRET not in value for value in env.values())
    assert "k" * 32 not in "".join(env.values())  # nor the JWT signing key


def test_runner_tokens_differ_between_submissions():
    launcher = _NoopLauncher(_settings())

    first = launcher.runner_env(SUBMISSION_ID)["INTERNAL_RESULT_TOKEN"]
    second = launcher.runner_env("65a0000000000000000000bb")["INTERNAL_RESULT_TOKEN"]

    assert first != second


def test_runner_env_tells_the_runner_where_things_are():
    settings = _settings(
        backend_internal_url="http://backend:8000/internal",
        llm_model="tiny",
        llm_base_url="http://llm.local/v1",
    )

    env = _NoopLauncher(settings).runner_env(SUBMISSION_ID)

    assert env["REDIS_URL"] == "redis://127.0.0.1:1/0"
    assert env["BACKEND_INTERNAL_URL"] == "http://backend:8000/internal"
    assert env["LLM_MODEL"] == "tiny"
    assert env["LLM_BASE_URL"] == "http://llm.local/v1"


def test_runner_env_omits_an_unset_llm_base_url():
    assert "LLM_BASE_URL" not in _NoopLauncher(_settings()).runner_env(SUBMISSION_ID)


# --- LocalLauncher ------------------------------------------------------------------------


@dataclass
class _FakeProcess:
    pid: int = 4242

    def wait(self, timeout: float | None = None) -> int:
        return 0  # the runner "succeeded": the watcher thread reports nothing


@dataclass
class _PopenRecorder:
    calls: list[dict[str, Any]] = field(default_factory=list)
    error: OSError | None = None

    def __call__(self, argv: list[str], **kwargs: Any) -> _FakeProcess:
        if self.error is not None:
            raise self.error
        self.calls.append({"argv": argv, **kwargs})
        return _FakeProcess()


@pytest.fixture
def shared_redis(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeRedis:
    server = fakeredis.FakeRedis()
    monkeypatch.setattr(redis.Redis, "from_url", lambda *args, **kwargs: server)
    return server


@pytest.fixture
def popen(monkeypatch: pytest.MonkeyPatch) -> _PopenRecorder:
    recorder = _PopenRecorder()
    monkeypatch.setattr(local_module.subprocess, "Popen", recorder)
    return recorder


def test_local_launch_is_idempotent(shared_redis, popen):
    first = LocalLauncher(_settings()).launch(SUBMISSION_ID)
    second = LocalLauncher(_settings()).launch(SUBMISSION_ID)  # e.g. a redelivered task

    assert first == second == f"runner-{SUBMISSION_ID}"
    assert len(popen.calls) == 1
    assert shared_redis.get(f"launched:runner-{SUBMISSION_ID}") == b"1"
    assert 0 < shared_redis.ttl(f"launched:runner-{SUBMISSION_ID}") <= 24 * 3600


def test_local_launch_of_two_submissions_starts_two_runners(shared_redis, popen):
    launcher = LocalLauncher(_settings())

    launcher.launch(SUBMISSION_ID)
    launcher.launch("65a0000000000000000000bb")

    assert len(popen.calls) == 2


def test_local_runner_gets_a_scoped_token_and_no_server_secret(shared_redis, popen, monkeypatch):
    monkeypatch.setenv("LLM_API_KEY", "sk-test")
    monkeypatch.setenv("SECRET_KEY", "leak-me-not-" * 3)
    monkeypatch.setenv("INTERNAL_RESULT_TOKEN", SECRET)

    LocalLauncher(_settings()).launch(SUBMISSION_ID)

    [call] = popen.calls
    env = call["env"]
    assert call["argv"][1:] == ["-m", "runner_image"]
    assert env["INTERNAL_RESULT_TOKEN"] == result_token_for(SECRET, SUBMISSION_ID)
    assert env["LLM_API_KEY"] == "sk-test"
    assert "SECRET_KEY" not in env
    assert all(SECRET not in value for value in env.values())
    assert call["start_new_session"] is True


def test_local_launch_failure_is_a_launch_error_and_can_be_retried(shared_redis, popen):
    popen.error = OSError("no such interpreter")
    launcher = LocalLauncher(_settings())

    with pytest.raises(LaunchError, match="cannot start"):
        launcher.launch(SUBMISSION_ID)
    assert shared_redis.get(f"launched:runner-{SUBMISSION_ID}") is None

    popen.error = None
    assert launcher.launch(SUBMISSION_ID) == f"runner-{SUBMISSION_ID}"
    assert len(popen.calls) == 1


def test_local_launch_with_redis_down_is_a_launch_error(monkeypatch, popen):
    class _DownRedis:
        def set(self, *args: Any, **kwargs: Any) -> None:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1")

    monkeypatch.setattr(redis.Redis, "from_url", lambda *args, **kwargs: _DownRedis())

    with pytest.raises(LaunchError, match="cannot record"):
        LocalLauncher(_settings()).launch(SUBMISSION_ID)
    assert popen.calls == []


# --- make_launcher ------------------------------------------------------------------------


def test_make_launcher_local(shared_redis):
    assert isinstance(make_launcher(_settings(runner_launcher="local")), LocalLauncher)


def test_make_launcher_unknown_is_a_launch_error():
    with pytest.raises(LaunchError):
        make_launcher(_settings(runner_launcher="docker"))


def test_local_runner_past_its_deadline_is_killed_and_reported(shared_redis):
    """As a Job's activeDeadlineSeconds would: the whole runner group dies, and the
    submission ends in `error` instead of waiting forever."""
    backend = FakeInternalApi()
    try:
        launcher = LocalLauncher(_settings(backend_internal_url=backend.url))
        runner = subprocess.Popen(["sleep", "60"], start_new_session=True)
        started = time.monotonic()

        launcher._watch(runner, SUBMISSION_ID, deadline=1)

        assert time.monotonic() - started < 10
        assert runner.poll() is not None
        [post] = backend.posts
        assert post["path"] == f"/internal/submissions/{SUBMISSION_ID}/result"
        assert post["body"]["status"] == "error"
        assert "deadline of 1 s" in post["body"]["feedback"]
    finally:
        backend.stop()
