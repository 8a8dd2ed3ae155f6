"""config.RunnerSettings.from_env."""

from __future__ import annotations

import os

import pytest

from runner_image.config import RunnerConfigError, RunnerSettings

REQUIRED = {
    "SUBMISSION_ID": "sub-1",
    "REDIS_URL": "redis://redis:6379/0",
    "BACKEND_INTERNAL_URL": "http://backend:8000/internal",
    "INTERNAL_RESULT_TOKEN": "token-abc",
}
OPTIONAL_PREFIXES = ("RESULT_", "LLM_", "RUNNER_")


@pytest.fixture
def env(monkeypatch):
    """Exactly the required variables; none of the optional ones from the outer environment."""
    for name in list(os.environ):
        if name.startswith(OPTIONAL_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_reads_settings_with_defaults(env):
    settings = RunnerSettings.from_env()
    assert settings == RunnerSettings(
        submission_id="sub-1",
        redis_url="redis://redis:6379/0",
        backend_internal_url="http://backend:8000/internal",
        result_token="token-abc",
        result_retries=2,
        llm_api_key=None,
        llm_model="gpt-4o-mini",
        llm_base_url=None,
    )


def test_reads_optional_settings(env):
    env.setenv("RESULT_POST_RETRIES", "5")
    env.setenv("LLM_API_KEY", "sk-test")
    env.setenv("LLM_MODEL", "other-model")
    env.setenv("LLM_BASE_URL", "http://llm:9000/v1")
    settings = RunnerSettings.from_env()
    assert settings.result_retries == 5
    assert settings.llm_api_key == "sk-test"
    assert settings.llm_model == "other-model"
    assert settings.llm_base_url == "http://llm:9000/v1"


def test_secrets_are_removed_from_the_environment(env):
    env.setenv("LLM_API_KEY", "sk-test")
    settings = RunnerSettings.from_env()
    assert settings.result_token == "token-abc"
    assert settings.llm_api_key == "sk-test"
    assert "INTERNAL_RESULT_TOKEN" not in os.environ
    assert "LLM_API_KEY" not in os.environ
    assert os.environ["SUBMISSION_ID"] == "sub-1"
    assert os.environ["REDIS_URL"] == "redis://redis:6379/0"


def test_missing_variables_are_all_listed(env):
    for name in REQUIRED:
        env.delenv(name)
    with pytest.raises(RunnerConfigError) as raised:
        RunnerSettings.from_env()
    assert str(raised.value) == (
        "missing environment variables: SUBMISSION_ID, REDIS_URL, BACKEND_INTERNAL_URL, "
        "INTERNAL_RESULT_TOKEN"
    )


def test_empty_value_counts_as_missing(env):
    env.setenv("REDIS_URL", "")
    with pytest.raises(RunnerConfigError, match=r"^missing environment variables: REDIS_URL$"):
        RunnerSettings.from_env()
