"""`cloudemy flower` and `cloudemy reconcile` as commands (the processes run in
tests/integration)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import tasks.celery_app
from webapp.cli import main


@pytest.fixture
def flower_argv(monkeypatch):
    seen: list[list[str]] = []
    monkeypatch.setattr(tasks.celery_app.celery_app, "start", lambda argv: seen.append(argv))
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    monkeypatch.delenv("FLOWER_ADDRESS", raising=False)
    return seen


def test_flower_without_auth_listens_on_loopback_only(flower_argv) -> None:
    result = CliRunner().invoke(main, ["flower"])

    assert result.exit_code == 0, result.output
    assert flower_argv == [["flower", "--port=5555", "--address=127.0.0.1"]]


def test_flower_with_basic_auth_listens_everywhere_and_passes_options_on(
    flower_argv, monkeypatch
) -> None:
    monkeypatch.setenv("FLOWER_BASIC_AUTH", "admin:pw")

    result = CliRunner().invoke(main, ["flower", "--port", "6000", "--persistent=False"])

    assert result.exit_code == 0, result.output
    assert flower_argv == [["flower", "--port=6000", "--address=0.0.0.0", "--persistent=False"]]


def test_reconcile_without_kubernetes_configuration_says_so(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("RUNNER_LAUNCHER", "kubernetes")

    result = CliRunner().invoke(main, ["reconcile", "--once"])

    assert result.exit_code == 1
    assert "no Kubernetes configuration" in result.output
