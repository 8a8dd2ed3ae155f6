"""`cloudemy flower` and `cloudemy reconcile` as commands (the processes run in
tests/integration)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from celery import Celery
from click.testing import CliRunner

from webapp.cli import main


@dataclass
class FlowerStarts:
    argv: list[list[str]] = field(default_factory=list)
    brokers: list[str] = field(default_factory=list)


@pytest.fixture
def flower(monkeypatch) -> FlowerStarts:
    """How Flower would be started. The environment holds no scheduler secret: Flower needs
    none."""
    starts = FlowerStarts()

    def start(app: Celery, argv: list[str]) -> None:
        starts.brokers.append(app.conf.broker_url)
        starts.argv.append(argv)

    monkeypatch.setattr(Celery, "start", start)
    for name in ("FLOWER_BASIC_AUTH", "FLOWER_ADDRESS", "FLOWER_PORT", "INTERNAL_RESULT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    return starts


def test_flower_without_auth_listens_on_loopback_only(flower) -> None:
    result = CliRunner().invoke(main, ["flower"])

    assert result.exit_code == 0, result.output
    assert flower.argv == [["flower", "--port=5555", "--address=127.0.0.1"]]


def test_flower_with_basic_auth_listens_everywhere_and_passes_options_on(
    flower, monkeypatch
) -> None:
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "admin:pw")

    result = CliRunner().invoke(main, ["flower", "--port", "6000", "--persistent=False"])

    assert result.exit_code == 0, result.output
    assert flower.argv == [["flower", "--port=6000", "--address=0.0.0.0", "--persistent=False"]]


def test_flower_watches_the_configured_broker(flower, monkeypatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379")

    result = CliRunner().invoke(main, ["flower"])

    assert result.exit_code == 0, result.output
    assert flower.brokers == ["redis://redis:6379"]


def test_reconcile_without_kubernetes_configuration_says_so(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("RUNNER_LAUNCHER", "kubernetes")
    monkeypatch.setenv("INTERNAL_RESULT_TOKEN", "t" * 32)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")

    result = CliRunner().invoke(main, ["reconcile", "--once"])

    assert result.exit_code == 1
    assert "no Kubernetes configuration" in result.output
