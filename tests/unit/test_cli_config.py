"""Every `cloudemy` command checks all the settings it needs before it starts anything, and
lists every problem at once with its variable's name (exit code 1). Nothing is started in
these tests: the parts that would start something are replaced by recorders, and a command
that got past its settings would show up in them."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery
from click.testing import CliRunner

import tasks.reconcile
import webapp.server
from cloudemy_dev.settings import DevSettings
from runner_image.settings import ConfigError
from tasks.settings import BrokerSettings, SchedulerSettings
from tests.unit.test_config_table import command_line_variables, fields_by_variable
from webapp.cli import main

SECRET = "t" * 32
REDIS = "redis://redis:6379/0"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of the outer environment: only what a test sets."""
    for variable in set(fields_by_variable()) | command_line_variables():
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the commands would have started."""
    calls: list[str] = []

    def record(what: str):
        return lambda *args, **kwargs: calls.append(what)

    monkeypatch.setattr(webapp.server, "run_gunicorn", record("gunicorn"))
    monkeypatch.setattr(Celery, "worker_main", record("celery worker"))
    monkeypatch.setattr(Celery, "start", record("flower"))
    monkeypatch.setattr(tasks.reconcile, "run_forever", record("reconcile loop"))
    monkeypatch.setattr(tasks.reconcile, "sweep_backend", record("sweep"))
    return calls


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(main, list(args), env=env or {})


def assert_refused(result: Any, *variables: str) -> None:
    assert result.exit_code == 1, result.output
    assert "invalid settings" in result.output
    for variable in variables:
        assert variable in result.output, (variable, result.output)
    assert "Traceback" not in result.output


def test_serve_lists_every_bad_setting_and_starts_nothing(started):
    result = invoke(
        "serve",
        env={
            "MONGO_URI": "mongomock://localhost",
            "REDIS_URL": "localhost:6379",
            "INTERNAL_RESULT_TOKEN": "short",
            "PORT": "eighty",
            "WEB_CONCURRENCY": "0",
            "MAX_CODE_BYTES": "lots",
        },
    )

    assert_refused(
        result,
        "MONGO_URI",
        "REDIS_URL",
        "INTERNAL_RESULT_TOKEN",
        "SECRET_KEY is not set",
        "PORT",
        "WEB_CONCURRENCY",
        "MAX_CODE_BYTES",
    )
    assert "mongomock:// is the in-process stand-in" in result.output
    assert started == []


def test_serve_without_mongo_and_redis_names_both(started):
    result = invoke("serve", env={"INTERNAL_RESULT_TOKEN": SECRET, "SECRET_KEY": SECRET})

    assert_refused(result, "MONGO_URI is not set", "REDIS_URL is not set")
    assert started == []


def test_serve_takes_port_and_workers_from_the_environment(started, monkeypatch):
    bound: list[tuple[str, int]] = []
    monkeypatch.setattr(
        webapp.server,
        "serve",
        lambda settings, bind, workers, threads: bound.append((bind, workers)),
    )
    env = {
        "MONGO_URI": "mongodb://db:27017",
        "REDIS_URL": REDIS,
        "INTERNAL_RESULT_TOKEN": SECRET,
        "SECRET_KEY": SECRET,
        "PORT": "9000",
        "WEB_CONCURRENCY": "3",
    }

    assert invoke("serve", env=env).exit_code == 0
    assert invoke("serve", "--port", "9100", "--workers", "1", env=env).exit_code == 0
    assert bound == [("0.0.0.0:9000", 3), ("0.0.0.0:9100", 1)]


@pytest.mark.parametrize("command", [["worker"], ["reconcile"], ["reconcile", "--once"]])
def test_the_scheduler_side_refuses_to_start_without_its_token_and_broker(started, command):
    result = invoke(*command)

    assert_refused(result, "INTERNAL_RESULT_TOKEN is not set", "REDIS_URL is not set")
    assert started == []


@pytest.mark.parametrize("command", [["worker"], ["reconcile"]])
def test_the_scheduler_side_refuses_a_short_token(started, command):
    result = invoke(*command, env={"REDIS_URL": REDIS, "INTERNAL_RESULT_TOKEN": "short"})

    assert_refused(result, "INTERNAL_RESULT_TOKEN")
    assert started == []


def test_the_worker_starts_once_its_settings_are_complete(started):
    result = invoke("worker", env={"REDIS_URL": REDIS, "INTERNAL_RESULT_TOKEN": SECRET})

    assert result.exit_code == 0, result.output
    assert started == ["celery worker"]


def test_flower_needs_its_broker(started):
    result = invoke("flower", env={"FLOWER_PORT": "many"})

    assert_refused(result, "REDIS_URL is not set", "FLOWER_PORT")
    assert started == []


def test_flower_reads_its_port_and_address(monkeypatch):
    argv: list[list[str]] = []
    monkeypatch.setattr(Celery, "start", lambda app, args: argv.append(args))

    result = invoke(
        "flower", env={"REDIS_URL": REDIS, "FLOWER_PORT": "6001", "FLOWER_ADDRESS": "10.0.0.5"}
    )

    assert result.exit_code == 0, result.output
    assert argv == [["flower", "--port=6001", "--address=10.0.0.5"]]


def test_create_user_lists_what_is_missing():
    result = invoke(
        "create-user", "--email", "a@example.org", "--name", "A", env={"CLOUDEMY_PASSWORD": "pw"}
    )

    assert_refused(result, "MONGO_URI is not set", "REDIS_URL is not set")


def test_dev_refuses_a_bad_port_before_starting_anything():
    """The unit suite forbids processes: reaching the dev stack would fail differently."""
    result = invoke("dev", env={"PORT": "eighty", "CLOUDEMY_DEMO_SEED": "maybe"})

    assert result.exit_code == 1
    assert "PORT" in result.output and "CLOUDEMY_DEMO_SEED" in result.output


# --- the settings classes themselves ------------------------------------------------------


def test_redis_url_has_no_default():
    with pytest.raises(ConfigError, match="REDIS_URL is not set"):
        BrokerSettings.from_env({})


@pytest.mark.parametrize("url", ["localhost:6379", "http://redis:6379", "redis"])
def test_a_redis_url_that_is_no_redis_url_is_refused(url):
    with pytest.raises(ConfigError, match="REDIS_URL"):
        BrokerSettings.from_env({"REDIS_URL": url})


@pytest.mark.parametrize("url", ["redis://r:6379/0", "rediss://r:6380/1", "unix:///run/r.sock"])
def test_redis_urls_are_accepted(url):
    assert BrokerSettings.from_env({"REDIS_URL": url}).redis_url == url


def test_the_scheduler_requires_its_token():
    with pytest.raises(ConfigError, match="INTERNAL_RESULT_TOKEN is not set"):
        SchedulerSettings.from_env({"REDIS_URL": REDIS})


def test_kubeconfig_is_a_scheduler_setting():
    settings = SchedulerSettings.from_env(
        {"REDIS_URL": REDIS, "INTERNAL_RESULT_TOKEN": SECRET, "KUBECONFIG": "/etc/kube/config"}
    )

    assert settings.kubeconfig == "/etc/kube/config"


@pytest.mark.parametrize(
    ("env", "mongo_uri", "seeds"),
    [
        ({}, "mongomock://localhost", True),
        ({}, "mongodb://db:27017", False),
        ({"CLOUDEMY_DEMO_SEED": "0"}, "mongomock://localhost", False),
        ({"CLOUDEMY_DEMO_SEED": "1"}, "mongodb://db:27017", True),
    ],
)
def test_the_demo_accounts_are_seeded_on_the_stand_in_only_unless_told(env, mongo_uri, seeds):
    assert DevSettings.from_env(env).seeds(mongo_uri) is seeds
