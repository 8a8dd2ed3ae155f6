"""settings.RunnerSettings: read from the environment the launcher gives the runner. A bad
value stops the runner with a ConfigError naming every bad variable at once, except the LLM
settings, which fall back to their defaults with a warning; the secrets leave os.environ."""

from __future__ import annotations

import logging
import os

import pytest
from pydantic import SecretStr

from runner_image.contract import IsolationLevel
from runner_image.settings import ConfigError, RunnerSettings

REQUIRED = {
    "SUBMISSION_ID": "sub-1",
    "REDIS_URL": "redis://redis:6379/0",
    "BACKEND_INTERNAL_URL": "http://backend:8000/internal",
    "INTERNAL_RESULT_TOKEN": "token-abc",
}
OPTIONAL_PREFIXES = ("RESULT_", "LLM_", "RUNNER_")


def test_reads_settings_with_defaults():
    settings = RunnerSettings.from_env(REQUIRED)
    assert settings.model_dump() == {
        "submission_id": "sub-1",
        "grading_round": 0,
        "redis_url": "redis://redis:6379/0",
        "backend_internal_url": "http://backend:8000/internal",
        "internal_result_token": SecretStr("token-abc"),
        "result_post_retries": 2,
        "runner_require_isolation": IsolationLevel.BASIC,
        "llm_api_key": None,
        "llm_model": "gpt-4o-mini",
        "llm_base_url": None,
        "llm_timeout_seconds": 20.0,
        "llm_max_retries": 1,
        "llm_max_output_tokens": 1000,
    }


def test_reads_optional_settings():
    settings = RunnerSettings.from_env(
        REQUIRED
        | {
            "RESULT_POST_RETRIES": "5",
            "RUNNER_REQUIRE_ISOLATION": "strict",
            "LLM_API_KEY": "sk-test",
            "LLM_MODEL": "other-model",
            "LLM_BASE_URL": "http://llm:9000/v1",
            "LLM_TIMEOUT_SECONDS": "7.5",
            "LLM_MAX_RETRIES": "0",
            "LLM_MAX_OUTPUT_TOKENS": "300",
        }
    )
    assert settings.result_post_retries == 5
    assert settings.runner_require_isolation == IsolationLevel.STRICT
    assert settings.llm_api_key.get_secret_value() == "sk-test"
    assert settings.llm_model == "other-model"
    assert settings.llm_base_url == "http://llm:9000/v1"
    assert settings.llm_timeout_seconds == 7.5
    assert settings.llm_max_retries == 0
    assert settings.llm_max_output_tokens == 300


@pytest.fixture
def env(monkeypatch):
    """os.environ with exactly the required variables and none of the optional ones from the
    outer environment: take_from_environment reads os.environ itself."""
    for name in list(os.environ):
        if name.startswith(OPTIONAL_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_secrets_are_removed_from_the_environment(env):
    env.setenv("LLM_API_KEY", "sk-test")
    settings = RunnerSettings.take_from_environment()
    assert settings.internal_result_token.get_secret_value() == "token-abc"
    assert settings.llm_api_key.get_secret_value() == "sk-test"
    assert "INTERNAL_RESULT_TOKEN" not in os.environ
    assert "LLM_API_KEY" not in os.environ
    assert os.environ["SUBMISSION_ID"] == "sub-1"
    assert os.environ["REDIS_URL"] == "redis://redis:6379/0"
    assert "token-abc" not in repr(settings)
    assert "sk-test" not in repr(settings)


def test_missing_variables_are_all_listed():
    with pytest.raises(ConfigError) as raised:
        RunnerSettings.from_env({})
    assert str(raised.value) == (
        "invalid settings: SUBMISSION_ID is not set; REDIS_URL is not set; "
        "BACKEND_INTERNAL_URL is not set; INTERNAL_RESULT_TOKEN is not set"
    )


def test_empty_value_counts_as_missing():
    with pytest.raises(ConfigError, match=r"^invalid settings: REDIS_URL is not set$"):
        RunnerSettings.from_env(REQUIRED | {"REDIS_URL": ""})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RESULT_POST_RETRIES", "two"),
        ("RESULT_POST_RETRIES", "2.5"),
        ("RESULT_POST_RETRIES", "-1"),
        ("RESULT_POST_RETRIES", "11"),
        ("RUNNER_REQUIRE_ISOLATION", "paranoid"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_its_variable(variable, value):
    with pytest.raises(ConfigError) as raised:
        RunnerSettings.from_env(REQUIRED | {variable: value})
    message = str(raised.value)
    assert message.startswith(f"invalid settings: {variable}={value!r}: ")
    assert ";" not in message  # that variable and nothing else


def test_every_problem_is_reported_at_once():
    env = {k: v for k, v in REQUIRED.items() if k != "SUBMISSION_ID"}
    env |= {"RESULT_POST_RETRIES": "two", "RUNNER_REQUIRE_ISOLATION": "paranoid"}
    with pytest.raises(ConfigError) as raised:
        RunnerSettings.from_env(env)
    problems = str(raised.value).removeprefix("invalid settings: ").split("; ")
    assert len(problems) == 3
    assert "SUBMISSION_ID is not set" in problems
    assert any(p.startswith("RESULT_POST_RETRIES='two': ") for p in problems)
    assert any(p.startswith("RUNNER_REQUIRE_ISOLATION='paranoid': ") for p in problems)


@pytest.mark.parametrize(
    ("variable", "value", "field", "default"),
    [
        ("LLM_TIMEOUT_SECONDS", "soon", "llm_timeout_seconds", 20.0),
        ("LLM_TIMEOUT_SECONDS", "0", "llm_timeout_seconds", 20.0),
        ("LLM_TIMEOUT_SECONDS", "-3", "llm_timeout_seconds", 20.0),
        ("LLM_MAX_RETRIES", "once", "llm_max_retries", 1),
        ("LLM_MAX_RETRIES", "-1", "llm_max_retries", 1),
        ("LLM_MAX_OUTPUT_TOKENS", "lots", "llm_max_output_tokens", 1000),
        ("LLM_MAX_OUTPUT_TOKENS", "-5", "llm_max_output_tokens", 1000),
    ],
)
def test_a_bad_llm_value_falls_back_to_its_default_with_a_warning(
    variable, value, field, default, caplog
):
    with caplog.at_level(logging.WARNING, logger="runner"):
        settings = RunnerSettings.from_env(REQUIRED | {variable: value})
    assert getattr(settings, field) == default
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage().startswith(f"{variable}={value!r} is not valid")
    assert warning.getMessage().endswith(f"; using {default}")
