"""Settings from the environment, refusing bad configuration, and CORS."""

from __future__ import annotations

import inspect
import re

import pytest
from pydantic import SecretStr

from runner_image.contract import IsolationLevel
from runner_image.settings import ConfigError, RunnerSettings
from tasks.settings import LauncherKind
from webapp.app import create_app
from webapp.services import connect_mongo, require_real_mongo, services
from webapp.settings import DEFAULT_CORS_ORIGINS, WebappSettings

REQUIRED = {
    "MONGO_URI": "mongodb://db:27017",
    "REDIS_URL": "redis://redis:6379/0",
    "INTERNAL_RESULT_TOKEN": "t" * 32,
    "SECRET_KEY": "s" * 32,
}


def _config_error(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        WebappSettings.from_env(env)
    return str(caught.value)


def _names(variable: str) -> str:
    """A pattern matching `variable` as a whole name (not MAX_CODE_BYTES in X_MAX_CODE_BYTES)."""
    return rf"(?<![A-Z_]){re.escape(variable)}(?![A-Z_])"


# --- reading ------------------------------------------------------------------------------


def test_defaults():
    settings = WebappSettings.from_env(REQUIRED)

    assert settings.db_name == "cloudemy"
    assert settings.queue_submissions == "queue:submissions"
    assert settings.cors_origins == DEFAULT_CORS_ORIGINS
    assert DEFAULT_CORS_ORIGINS == ("http://localhost:3000", "http://cloudemy.local")
    assert settings.access_token_ttl_seconds == 3600
    assert settings.max_code_bytes == 64 * 1024
    assert settings.max_request_bytes == 1024 * 1024
    assert settings.bundle_ttl_seconds == 24 * 3600
    assert settings.runner_launcher == LauncherKind.LOCAL
    assert settings.runner_require_isolation == IsolationLevel.BASIC
    assert settings.runner_languages is None
    assert settings.llm_api_key is None
    assert settings.llm_base_url is None
    assert settings.runner_min_deadline_seconds == 120
    assert settings.runner_max_deadline_seconds == 3600


def _declared_by(field: str, *classes: type) -> set[type]:
    """The classes, among `classes` and their bases, that declare `field` themselves."""
    return {
        base for cls in classes for base in cls.__mro__ if field in inspect.get_annotations(base)
    }


def test_defaults_are_written_once():
    """Each setting is declared in one class, so its default cannot drift: the webapp's
    settings extend the scheduler's without repeating any, and a setting the scheduler hands
    to runners with a default on both sides (the LLM's, the isolation) is the same field."""
    for field in WebappSettings.model_fields:
        assert len(_declared_by(field, WebappSettings)) == 1, field
    shared_defaults = {
        field
        for field, info in RunnerSettings.model_fields.items()
        if not info.is_required()
        and field in WebappSettings.model_fields
        and not WebappSettings.model_fields[field].is_required()
    }
    assert {"llm_model", "llm_timeout_seconds", "runner_require_isolation"} <= shared_defaults
    for field in shared_defaults:
        assert len(_declared_by(field, WebappSettings, RunnerSettings)) == 1, field


def test_from_env_reads_the_variables_by_name():
    settings = WebappSettings.from_env(
        {
            **REQUIRED,
            "DB_NAME": "grading",
            "REDIS_URL": "redis://cache:6379/2",
            "MAX_CODE_BYTES": "1024",
            "ACCESS_TOKEN_TTL_SECONDS": "60",
            "RUNNER_LAUNCHER": "kubernetes",
            "RUNNER_REQUIRE_ISOLATION": "strict",
            "LLM_API_KEY": "sk-test-key",
            "LLM_TIMEOUT_SECONDS": "2.5",
            "CLOUDEMY_DEMO_SEED": "1",  # no longer a setting: ignored like any stranger
        }
    )

    assert settings.mongo_uri == "mongodb://db:27017"
    assert settings.db_name == "grading"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.max_code_bytes == 1024
    assert settings.access_token_ttl_seconds == 60
    assert settings.runner_launcher == LauncherKind.KUBERNETES
    assert settings.runner_require_isolation == IsolationLevel.STRICT
    assert settings.llm_timeout_seconds == 2.5
    assert settings.secret_key.get_secret_value() == "s" * 32
    assert settings.internal_result_token.get_secret_value() == "t" * 32
    assert settings.llm_api_key.get_secret_value() == "sk-test-key"
    assert not hasattr(settings, "demo_seed")


def test_secrets_are_not_shown_when_the_settings_are_printed():
    settings = WebappSettings.from_env({**REQUIRED, "LLM_API_KEY": "sk-test-key"})

    assert isinstance(settings.secret_key, SecretStr)
    for shown in (repr(settings), str(settings)):
        assert "t" * 32 not in shown and "s" * 32 not in shown and "sk-test-key" not in shown


def test_overrides_win_over_the_environment():
    settings = WebappSettings.from_env({**REQUIRED, "DB_NAME": "from-env"}, db_name="override")

    assert settings.db_name == "override"


@pytest.mark.parametrize(
    ("variable", "field", "default"),
    [
        ("MAX_CODE_BYTES", "max_code_bytes", 64 * 1024),
        ("DB_NAME", "db_name", "cloudemy"),
        ("RUNNER_LAUNCHER", "runner_launcher", LauncherKind.LOCAL),
        ("RUNNER_REQUIRE_ISOLATION", "runner_require_isolation", IsolationLevel.BASIC),
        ("CORS_ORIGINS", "cors_origins", DEFAULT_CORS_ORIGINS),
        ("RUNNER_LANGUAGES", "runner_languages", None),
        ("LLM_BASE_URL", "llm_base_url", None),
        ("LLM_API_KEY", "llm_api_key", None),
    ],
)
def test_an_empty_variable_counts_as_unset(variable, field, default):
    settings = WebappSettings.from_env({**REQUIRED, variable: ""})

    assert getattr(settings, field) == default


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_a_required_variable_that_is_empty_is_not_set(variable):
    message = _config_error({**REQUIRED, variable: ""})

    assert f"{variable} is not set" in message


# --- comma lists --------------------------------------------------------------------------


def test_cors_origins_is_a_comma_list_with_blanks_dropped():
    settings = WebappSettings.from_env(
        {**REQUIRED, "CORS_ORIGINS": " https://a.example , ,https://b.example,"}
    )

    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_a_single_cors_origin():
    settings = WebappSettings.from_env({**REQUIRED, "CORS_ORIGINS": "https://only.example"})

    assert settings.cors_origins == ("https://only.example",)


def test_runner_languages_is_a_comma_list_with_blanks_dropped():
    settings = WebappSettings.from_env({**REQUIRED, "RUNNER_LANGUAGES": "python, c,,java "})

    assert settings.runner_languages == ("python", "c", "java")


# --- refusing bad configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("MAX_CODE_BYTES", "lots"),
        ("MAX_CODE_BYTES", "1.5"),
        ("MAX_CODE_BYTES", "64k"),
        ("MAX_CODE_BYTES", "0"),
        ("MAX_REQUEST_BYTES", "100"),
        ("ACCESS_TOKEN_TTL_SECONDS", "59"),
        ("BUNDLE_TTL_SECONDS", "-1"),
        ("MONGO_URI", "http://db:27017"),
        ("MONGO_URI", "db:27017"),
        ("RUNNER_LAUNCHER", "docker"),
        ("RUNNER_REQUIRE_ISOLATION", "paranoid"),
        ("RUNNER_MEMORY_LIMIT", "lots"),
        ("RUNNER_CPU_LIMIT", "1 core"),
        ("RUNNER_MAX_DEADLINE_SECONDS", "0"),
        ("MAX_RUNNING_JOBS", "0"),
        ("LLM_TIMEOUT_SECONDS", "0"),
        ("LLM_TIMEOUT_SECONDS", "soon"),
        ("LLM_MAX_RETRIES", "-1"),
        ("SECRET_KEY", "short"),
        ("INTERNAL_RESULT_TOKEN", "x" * 15),
    ],
)
def test_a_bad_value_is_a_config_error_naming_its_variable(variable, raw):
    message = _config_error({**REQUIRED, variable: raw})

    assert re.search(_names(variable), message), message
    others = [name for name in REQUIRED if name != variable]
    assert not any(re.search(_names(name), message) for name in others), message


@pytest.mark.parametrize("variable", sorted(REQUIRED))
def test_a_missing_required_variable_is_a_config_error_naming_it(variable):
    env = {name: value for name, value in REQUIRED.items() if name != variable}

    assert f"{variable} is not set" in _config_error(env)


def test_deadlines_out_of_order_name_both_variables():
    message = _config_error(
        {**REQUIRED, "RUNNER_MIN_DEADLINE_SECONDS": "600", "RUNNER_MAX_DEADLINE_SECONDS": "300"}
    )

    assert "RUNNER_MIN_DEADLINE_SECONDS" in message
    assert "RUNNER_MAX_DEADLINE_SECONDS" in message


def test_every_problem_is_reported_at_once():
    message = _config_error(
        {
            "INTERNAL_RESULT_TOKEN": "t" * 32,
            "REDIS_URL": "redis://redis:6379/0",
            "SECRET_KEY": "short",
            "MAX_CODE_BYTES": "lots",
            "RUNNER_LAUNCHER": "docker",
            "CORS_ORIGINS": "https://a.example",
        }
    )

    assert "\n" not in message
    for variable in ("MONGO_URI", "SECRET_KEY", "MAX_CODE_BYTES", "RUNNER_LAUNCHER"):
        assert re.search(_names(variable), message), variable
    assert not re.search(_names("INTERNAL_RESULT_TOKEN"), message)
    assert not re.search(_names("CORS_ORIGINS"), message)
    assert "'lots'" in message and "'docker'" in message  # bad plain values are quoted


def test_secret_values_are_never_repeated_in_the_message():
    with pytest.raises(ConfigError) as caught:
        WebappSettings.from_env(
            {
                "MONGO_URI": "mongodb://db:27017",
                "REDIS_URL": "redis://redis:6379/0",
                "SECRET_KEY": "hunter2",
                "INTERNAL_RESULT_TOKEN": "swordfish",
                "LLM_API_KEY": "sk-live-key",
                "MAX_CODE_BYTES": "lots",
            }
        )

    message = str(caught.value)
    assert "SECRET_KEY" in message and "INTERNAL_RESULT_TOKEN" in message
    assert "hunter2" not in message and "swordfish" not in message
    assert "sk-live-key" not in message
    # Nor in a traceback: pydantic's own error (which quotes every input) is not chained.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# --- the MongoDB stand-in is the dev stack's, never the served app's -----------------------


@pytest.fixture
def embedded_settings() -> WebappSettings:
    return WebappSettings.from_env({**REQUIRED, "MONGO_URI": "mongomock://localhost"})


def test_require_real_mongo_refuses_the_stand_in(embedded_settings):
    with pytest.raises(ConfigError, match="MONGO_URI"):
        require_real_mongo(embedded_settings)


@pytest.mark.parametrize("uri", ["mongodb://db:27017", "mongodb+srv://cluster.example"])
def test_require_real_mongo_accepts_a_server(uri):
    require_real_mongo(WebappSettings.from_env({**REQUIRED, "MONGO_URI": uri}))


def test_connect_mongo_refuses_the_stand_in(embedded_settings):
    with pytest.raises(ConfigError, match="MONGO_URI"):
        connect_mongo(embedded_settings)


def test_create_app_without_services_refuses_the_stand_in(embedded_settings):
    with pytest.raises(ConfigError, match="MONGO_URI"):
        create_app(embedded_settings)


def test_create_app_serves_with_the_services_it_is_given(app, database, fake_redis, celery):
    with app.app_context():
        given = services()

    assert given.database is database
    assert given.redis is fake_redis
    assert given.celery is celery


# --- CORS ---------------------------------------------------------------------------------


def test_preflight_from_an_allowed_origin_is_allowed(client):
    response = client.options(
        "/api/auth/login",
        headers={
            "Origin": "http://cloudemy.local",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type, Authorization",
        },
    )

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://cloudemy.local"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


def test_get_from_an_allowed_origin_carries_the_header(client):
    response = client.get("/api/me", headers={"Origin": "http://localhost:3000"})

    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


@pytest.mark.parametrize("origin", ["http://evil.example", "http://cloudemy.local.evil.example"])
def test_an_unlisted_origin_gets_no_cors_header(client, origin):
    preflight = client.options(
        "/api/auth/login",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    get = client.get("/api/me", headers={"Origin": origin})

    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in get.headers


def test_internal_routes_get_no_cors_header(client):
    response = client.options(
        "/internal/submissions/x/result",
        headers={"Origin": "http://cloudemy.local", "Access-Control-Request-Method": "POST"},
    )

    assert "Access-Control-Allow-Origin" not in response.headers
