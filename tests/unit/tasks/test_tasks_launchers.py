"""Launchers: scoped runner tokens, idempotent local launches, launcher selection. (The local
launcher's kill timer on a real process is in tests/scheduler.)"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis
from pydantic import SecretStr

import tasks.launchers.local as local_module
from runner_image.contract import submission_token
from runner_image.settings import ConfigError
from tasks.launchers import LaunchError, make_launcher
from tasks.launchers.base import Launcher, llm_gateway_url, runner_name
from tasks.launchers.local import LocalLauncher
from tasks.launchers.runner_forks import ForkServerGone
from tasks.settings import SchedulerSettings
from webapp.blueprints.llm_gateway import bp as llm_gateway_blueprint
from webapp.settings import WebappSettings

SECRET = "r" * 40
SUBMISSION_ID = "65a0000000000000000000aa"


class _NoopLauncher(Launcher):
    def warm_up(self) -> None:
        pass

    def launch(self, submission_id: str, deadline_seconds: int) -> str:
        return runner_name(submission_id)


def _settings(**overrides: Any) -> SchedulerSettings:
    values: dict[str, Any] = {
        "internal_result_token": SECRET,
        "redis_url": "redis://127.0.0.1:1/0",
    }
    values.update(overrides)
    return SchedulerSettings.from_env({}, **values)


# --- runner_env ---------------------------------------------------------------------------


def test_runner_env_carries_a_per_submission_token_not_the_secret():
    # The webapp's settings extend the scheduler's: even given those, no server secret leaks.
    settings = WebappSettings.from_env(
        {},
        internal_result_token=SECRET,
        secret_key="k" * 32,
        mongo_uri="mongodb://mongo:27017",
        redis_url="redis://redis:6379/0",
        llm_api_key="sk-not-in-the-env",
    )
    env = _NoopLauncher(settings).runner_env(SUBMISSION_ID)

    assert env["SUBMISSION_ID"] == SUBMISSION_ID
    assert env["INTERNAL_RESULT_TOKEN"] == submission_token(SECRET, SUBMISSION_ID)
    assert SECRET not in env.values()
    assert all(SECRET not in value for value in env.values())
    assert "k" * 32 not in "".join(env.values())  # nor the JWT signing key
    assert "sk-not-in-the-env" not in "".join(env.values())  # nor the provider's key
    assert env["LLM_API_KEY"] == env["INTERNAL_RESULT_TOKEN"]  # the gateway's key


def test_with_the_llm_on_the_runner_gets_the_gateway_and_its_own_token():
    settings = _settings(
        llm_api_key="sk-provider",
        llm_base_url="https://llm.example/v1",
        backend_internal_url="http://backend:8000/internal/",
    )

    env = _NoopLauncher(settings).runner_env(SUBMISSION_ID)

    assert env["LLM_BASE_URL"] == f"http://backend:8000/internal/llm/{SUBMISSION_ID}/v1"
    assert env["LLM_API_KEY"] == submission_token(SECRET, SUBMISSION_ID)
    assert "sk-provider" not in "".join(env.values())
    assert "llm.example" not in "".join(env.values())


@pytest.mark.parametrize("key", [None, ""])
def test_with_the_llm_off_the_runner_gets_neither_url_nor_key(key):
    settings = _settings(llm_base_url="https://llm.example/v1")
    if key is not None:
        settings = settings.model_copy(update={"llm_api_key": SecretStr(key)})

    env = _NoopLauncher(settings).runner_env(SUBMISSION_ID)

    assert "LLM_API_KEY" not in env
    assert "LLM_BASE_URL" not in env


def test_the_gateway_url_is_the_one_the_backend_serves():
    url = llm_gateway_url("http://backend:8000/internal", SUBMISSION_ID)

    assert url == f"http://backend:8000/internal/llm/{SUBMISSION_ID}/v1"
    assert f"{url}/chat/completions".removeprefix("http://backend:8000") == (
        f"{llm_gateway_blueprint.url_prefix}/{SUBMISSION_ID}/v1/chat/completions"
    )


def test_runner_tokens_differ_between_submissions():
    launcher = _NoopLauncher(_settings())

    first = launcher.runner_env(SUBMISSION_ID)["INTERNAL_RESULT_TOKEN"]
    second = launcher.runner_env("65a0000000000000000000bb")["INTERNAL_RESULT_TOKEN"]

    assert first != second


def test_runner_env_tells_the_runner_where_things_are():
    settings = _settings(backend_internal_url="http://backend:8000/internal", llm_model="tiny")

    env = _NoopLauncher(settings).runner_env(SUBMISSION_ID)

    assert env["REDIS_URL"] == "redis://127.0.0.1:1/0"
    assert env["BACKEND_INTERNAL_URL"] == "http://backend:8000/internal"
    assert env["LLM_MODEL"] == "tiny"


def test_runner_env_passes_on_the_required_isolation():
    assert _NoopLauncher(_settings()).runner_env(SUBMISSION_ID)["RUNNER_REQUIRE_ISOLATION"] == (
        "basic"
    )
    strict = _NoopLauncher(_settings(runner_require_isolation="strict"))
    assert strict.runner_env(SUBMISSION_ID)["RUNNER_REQUIRE_ISOLATION"] == "strict"


def test_runner_env_passes_on_the_report_retries():
    assert _NoopLauncher(_settings()).runner_env(SUBMISSION_ID)["RESULT_POST_RETRIES"] == "2"
    patient = _NoopLauncher(_settings(result_post_retries=5))
    assert patient.runner_env(SUBMISSION_ID)["RESULT_POST_RETRIES"] == "5"


def test_runner_env_without_an_llm_key_has_no_llm_base_url():
    assert "LLM_BASE_URL" not in _NoopLauncher(_settings()).runner_env(SUBMISSION_ID)


# --- LocalLauncher ------------------------------------------------------------------------


@dataclass
class _FakeProcess:
    pid: int = 4242
    waited: list[float | None] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float | None = None) -> int:
        self.waited.append(timeout)
        self.done.set()
        return 0  # the runner "succeeded": the watcher thread reports nothing


@dataclass
class _ForkRecorder:
    """Stands in for the runner fork server (tasks.launchers.runner_forks): records each
    spawn's environment."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    processes: list[_FakeProcess] = field(default_factory=list)
    error: OSError | None = None
    with_llm: bool | None = None

    def __call__(self, with_llm: bool = False) -> _ForkRecorder:
        """As the RunnerForkServer class: the launcher makes its server."""
        self.with_llm = with_llm
        return self

    def spawn(self, env: dict[str, str]) -> _FakeProcess:
        if self.error is not None:
            raise self.error
        self.calls.append({"env": env})
        self.processes.append(_FakeProcess())
        return self.processes[-1]


@pytest.fixture
def shared_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> _ForkRecorder:
    recorder = _ForkRecorder()
    monkeypatch.setattr(local_module, "RunnerForkServer", recorder)
    return recorder


def test_local_launch_is_idempotent(shared_redis, forks):
    first = LocalLauncher(_settings(), redis_client=shared_redis).launch(SUBMISSION_ID, 120)
    # e.g. a redelivered task, on another worker process sharing the Redis
    second = LocalLauncher(_settings(), redis_client=shared_redis).launch(SUBMISSION_ID, 120)

    assert first == second == f"runner-{SUBMISSION_ID}"
    assert len(forks.calls) == 1
    assert shared_redis.get(f"launched:runner-{SUBMISSION_ID}") == b"1"
    assert 0 < shared_redis.ttl(f"launched:runner-{SUBMISSION_ID}") <= 24 * 3600


def test_local_launch_of_two_submissions_starts_two_runners(shared_redis, forks):
    launcher = LocalLauncher(_settings(), redis_client=shared_redis)

    launcher.launch(SUBMISSION_ID, 120)
    launcher.launch("65a0000000000000000000bb", 120)

    assert len(forks.calls) == 2


def test_the_local_runner_is_watched_with_the_deadline_it_was_launched_with(shared_redis, forks):
    LocalLauncher(_settings(), redis_client=shared_redis).launch(SUBMISSION_ID, 185)

    [process] = forks.processes
    assert process.done.wait(5), "the watcher never waited for the runner"
    assert process.waited == [185]


def test_local_runner_gets_a_scoped_token_and_no_server_secret(shared_redis, forks, monkeypatch):
    # Whatever the worker's own environment holds is not passed on...
    monkeypatch.setenv("LLM_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("SECRET_KEY", "leak-me-not-" * 3)
    monkeypatch.setenv("INTERNAL_RESULT_TOKEN", SECRET)

    # ...and the settings' provider key neither: the runner calls the backend's gateway.
    LocalLauncher(_settings(llm_api_key="sk-test"), redis_client=shared_redis).launch(
        SUBMISSION_ID, 120
    )

    [call] = forks.calls
    env = call["env"]
    assert env["INTERNAL_RESULT_TOKEN"] == submission_token(SECRET, SUBMISSION_ID)
    assert env["LLM_API_KEY"] == env["INTERNAL_RESULT_TOKEN"]
    assert env["LLM_BASE_URL"] == f"http://backend:8000/internal/llm/{SUBMISSION_ID}/v1"
    assert "SECRET_KEY" not in env
    assert all(SECRET not in value for value in env.values())
    assert not [value for value in env.values() if "sk-" in value]


@pytest.mark.parametrize("key", [None, "sk-test"])
def test_the_fork_server_imports_the_llm_client_only_when_runners_will_call_it(
    shared_redis, forks, key
):
    LocalLauncher(_settings(llm_api_key=key), redis_client=shared_redis)

    assert forks.with_llm is (key is not None)


def test_local_runner_without_an_llm_key_gets_none(shared_redis, forks, monkeypatch):
    monkeypatch.setenv("LLM_API_KEY", "sk-from-the-environment")

    LocalLauncher(_settings(), redis_client=shared_redis).launch(SUBMISSION_ID, 120)

    [call] = forks.calls
    assert "LLM_API_KEY" not in call["env"]
    assert "LLM_BASE_URL" not in call["env"]


def test_local_launch_failure_is_a_launch_error_and_can_be_retried(shared_redis, forks):
    forks.error = ForkServerGone("cannot start the runner fork server: no such file")
    launcher = LocalLauncher(_settings(), redis_client=shared_redis)

    with pytest.raises(LaunchError, match="cannot start"):
        launcher.launch(SUBMISSION_ID, 120)
    assert shared_redis.get(f"launched:runner-{SUBMISSION_ID}") is None

    forks.error = None
    assert launcher.launch(SUBMISSION_ID, 120) == f"runner-{SUBMISSION_ID}"
    assert len(forks.calls) == 1


def test_local_launch_with_redis_down_is_a_launch_error(forks):
    class _DownRedis:
        def set(self, *args: Any, **kwargs: Any) -> None:
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:1")

    launcher = LocalLauncher(_settings(), redis_client=_DownRedis())  # type: ignore[arg-type]

    with pytest.raises(LaunchError, match="cannot record"):
        launcher.launch(SUBMISSION_ID, 120)
    assert forks.calls == []


# --- make_launcher ------------------------------------------------------------------------


def test_make_launcher_local():
    assert isinstance(make_launcher(_settings(runner_launcher="local")), LocalLauncher)


def test_an_unknown_launcher_is_refused_with_the_settings():
    """Before any launch: the worker does not start on RUNNER_LAUNCHER=docker."""
    with pytest.raises(ConfigError, match="RUNNER_LAUNCHER='docker'"):
        SchedulerSettings.from_env(
            {
                "INTERNAL_RESULT_TOKEN": SECRET,
                "REDIS_URL": "redis://redis:6379/0",
                "RUNNER_LAUNCHER": "docker",
            }
        )
    with pytest.raises(ConfigError, match="RUNNER_LAUNCHER"):
        _settings(runner_launcher="docker")


# --- grading rounds -----------------------------------------------------------------------


def test_runner_names_round_0_as_before_and_regrades_apart():
    assert runner_name(SUBMISSION_ID) == f"runner-{SUBMISSION_ID}"
    assert runner_name(SUBMISSION_ID, 0) == f"runner-{SUBMISSION_ID}"
    assert runner_name(SUBMISSION_ID, 3) == f"runner-{SUBMISSION_ID}-r3"


def test_a_regrade_runner_gets_its_round_and_that_rounds_token():
    env = _NoopLauncher(_settings(llm_api_key="sk-provider")).runner_env(SUBMISSION_ID, 2)

    assert env["GRADING_ROUND"] == "2"
    assert env["INTERNAL_RESULT_TOKEN"] == submission_token(SECRET, SUBMISSION_ID, 2)
    assert env["INTERNAL_RESULT_TOKEN"] != submission_token(SECRET, SUBMISSION_ID)
    assert env["LLM_API_KEY"] == env["INTERNAL_RESULT_TOKEN"]


def test_a_regrade_round_is_a_new_local_runner_launched_once(shared_redis, forks):
    launcher = LocalLauncher(_settings(), redis_client=shared_redis)

    first = launcher.launch(SUBMISSION_ID, 120)
    regrade = launcher.launch(SUBMISSION_ID, 120, grading_round=1)
    again = launcher.launch(SUBMISSION_ID, 120, grading_round=1)  # a redelivered task

    assert first == f"runner-{SUBMISSION_ID}"
    assert regrade == again == f"runner-{SUBMISSION_ID}-r1"
    assert len(forks.calls) == 2
    assert forks.calls[1]["env"]["GRADING_ROUND"] == "1"
    assert forks.calls[1]["env"]["INTERNAL_RESULT_TOKEN"] == submission_token(
        SECRET, SUBMISSION_ID, 1
    )


def test_a_failed_regrade_runner_is_reported_for_its_round(shared_redis, forks, monkeypatch):
    posted: list[tuple[str, str, Any]] = []

    class _Client:
        def __init__(self, url: str, token: str) -> None:
            self.token = token

        def post_result(self, submission_id: str, result: Any) -> None:
            posted.append((submission_id, self.token, result))

        def close(self) -> None:
            pass

    class _Crashed:
        pid = 4242

        def wait(self, timeout: float | None = None) -> int:
            return 3

    monkeypatch.setattr(local_module, "InternalApiClient", _Client)
    launcher = LocalLauncher(_settings(), redis_client=shared_redis)

    launcher._watch(_Crashed(), SUBMISSION_ID, 120, 2)  # type: ignore[arg-type]

    [(submission_id, token, result)] = posted
    assert submission_id == SUBMISSION_ID
    assert token == submission_token(SECRET, SUBMISSION_ID, 2)
    assert result.status == "error" and result.round == 2
    assert "exited with code 3" in result.metrics["error"]


def test_a_fresh_runner_for_a_later_attempt_is_started_under_its_own_name(shared_redis, forks):
    launcher = LocalLauncher(_settings(), redis_client=shared_redis)

    first = launcher.launch(SUBMISSION_ID, 120)
    fresh = launcher.launch(SUBMISSION_ID, 120, attempt=2)
    again = launcher.launch(SUBMISSION_ID, 120, attempt=2)

    assert (first, fresh, again) == (
        f"runner-{SUBMISSION_ID}",
        f"runner-{SUBMISSION_ID}-2",
        f"runner-{SUBMISSION_ID}-2",
    )
    assert len(forks.calls) == 2


@dataclass
class _EndedProcess:
    code: int | None
    pid: int = 4243

    def wait(self, timeout: float | None = None) -> int | None:
        return self.code


@pytest.mark.parametrize(
    ("code", "reported"), [(0, False), (75, False), (None, False), (1, True), (-9, True)]
)
def test_the_watcher_reports_a_runner_that_failed_but_not_one_that_could_not_report(
    shared_redis, monkeypatch, code, reported
):
    """Exit code 75: the runner could not reach the backend (or had no bundle). An error
    reported now would end the submission for the platform's fault; the sweep sends a
    fresh runner instead. So for a runner whose end nobody saw (None: its fork server died
    first)."""
    posts: list[tuple[str, Any]] = []

    class _Client:
        def __init__(self, base_url: str, token: str) -> None:
            pass

        def post_result(self, submission_id: str, result: Any) -> None:
            posts.append((submission_id, result))

        def close(self) -> None:
            pass

    monkeypatch.setattr(local_module, "InternalApiClient", _Client)

    LocalLauncher(_settings(), redis_client=shared_redis)._watch(
        _EndedProcess(code), SUBMISSION_ID, 120
    )

    assert bool(posts) is reported
    marked = shared_redis.smembers("runners:unreported")
    assert marked == ({SUBMISSION_ID.encode()} if code in (75, None) else set())
    if reported:
        assert posts[0][1].status == "error"
        assert f"code {code}" in posts[0][1].feedback
