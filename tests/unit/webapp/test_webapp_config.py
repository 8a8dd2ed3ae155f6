"""Settings from the environment, refusing bad configuration, and CORS."""

from __future__ import annotations

import pytest

from webapp import create_app
from webapp.config import DEFAULT_CORS_ORIGINS, ConfigError, Settings

GOOD_SECRETS = {"INTERNAL_RESULT_TOKEN": "t" * 32, "SECRET_KEY": "s" * 32}


def test_cors_origins_default():
    settings = Settings.from_env({})

    assert DEFAULT_CORS_ORIGINS == "http://localhost:3000,http://cloudemy.local"
    assert settings.cors_origins == ("http://localhost:3000", "http://cloudemy.local")


def test_cors_origins_is_a_comma_list_with_blanks_dropped():
    settings = Settings.from_env({"CORS_ORIGINS": " https://a.example , ,https://b.example,"})

    assert settings.cors_origins == ("https://a.example", "https://b.example")


def test_from_env_reads_names_and_ints():
    settings = Settings.from_env(
        {
            "MONGO_URI": "mongodb://db:27017",
            "DB_NAME": "grading",
            "REDIS_URL": "redis://cache:6379/2",
            "MAX_CODE_BYTES": "1024",
            "ACCESS_TOKEN_TTL_SECONDS": "60",
            "RUNNER_LAUNCHER": "kubernetes",
            "CLOUDEMY_DEMO_SEED": "1",
        }
    )

    assert settings.mongo_uri == "mongodb://db:27017"
    assert settings.db_name == "grading"
    assert settings.redis_url == "redis://cache:6379/2"
    assert settings.max_code_bytes == 1024
    assert settings.access_token_ttl_seconds == 60
    assert settings.runner_launcher == "kubernetes"
    assert settings.demo_seed is True


def test_from_env_defaults():
    settings = Settings.from_env({})

    assert settings.mongo_uri is None
    assert settings.queue_submissions == "queue:submissions"
    assert settings.max_code_bytes == 64 * 1024
    assert settings.max_request_bytes == 1024 * 1024
    assert settings.runner_launcher == "local"
    assert settings.llm_base_url is None
    assert settings.demo_seed is False


def test_empty_int_falls_back_to_the_default():
    assert Settings.from_env({"MAX_CODE_BYTES": ""}).max_code_bytes == 64 * 1024


def test_overrides_win_over_the_environment():
    settings = Settings.from_env({"DB_NAME": "from-env"}, db_name="override")

    assert settings.db_name == "override"


@pytest.mark.parametrize("raw", ["lots", "1.5", "64k"])
def test_bad_int_env_is_a_config_error_naming_the_variable(raw):
    with pytest.raises(ConfigError, match="MAX_CODE_BYTES"):
        Settings.from_env({"MAX_CODE_BYTES": raw})


def test_require_secrets_accepts_long_secrets():
    Settings.from_env(GOOD_SECRETS).require_secrets()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "INTERNAL_RESULT_TOKEN"),
        ({**GOOD_SECRETS, "SECRET_KEY": "short"}, "SECRET_KEY"),
        ({**GOOD_SECRETS, "INTERNAL_RESULT_TOKEN": "x" * 15}, "INTERNAL_RESULT_TOKEN"),
    ],
)
def test_require_secrets_refuses_short_secrets(env, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env).require_secrets()


def test_require_secrets_refuses_an_unknown_launcher():
    with pytest.raises(ConfigError, match="RUNNER_LAUNCHER"):
        Settings.from_env({**GOOD_SECRETS, "RUNNER_LAUNCHER": "docker"}).require_secrets()


def test_create_app_without_mongo_uri_is_a_config_error():
    settings = Settings.from_env(GOOD_SECRETS, mongo_uri=None)

    with pytest.raises(ConfigError, match="MONGO_URI"):
        create_app(settings)


def test_create_app_with_short_secrets_is_a_config_error():
    settings = Settings.from_env({}, mongo_uri="mongomock://localhost", secret_key="s" * 32)

    with pytest.raises(ConfigError):
        create_app(settings)


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
