"""A required isolation level the machine cannot meet fails loudly, never runs unprotected.
(Probing this machine's layers starts processes: see tests/sandbox/test_isolation_probe.py.)"""

from __future__ import annotations

import pytest

from runner_image import main
from runner_image.contract import Bundle, IsolationLevel, Result
from runner_image.sandbox.isolation import Isolation, IsolationUnavailable, require_level
from runner_image.settings import ConfigError, RunnerSettings

BUNDLE = Bundle.model_validate(
    {
        "submission_id": "s1",
        "language": "python",
        "code": "print('ran')\n",
        "tests": [{"name": "t", "stdin": "", "expected_stdout": "ran\n"}],
    }
)
ENV = {
    "SUBMISSION_ID": "s1",
    "REDIS_URL": "redis://unused",
    "BACKEND_INTERNAL_URL": "http://unused/internal",
    "INTERNAL_RESULT_TOKEN": "t",
}


@pytest.fixture
def settings() -> RunnerSettings:
    return RunnerSettings.from_env(ENV, runner_require_isolation=IsolationLevel.STRICT)


def test_unmet_strict_requirement_is_an_internal_error_and_nothing_runs(monkeypatch, settings):
    monkeypatch.setattr(main, "probe_isolation", lambda: Isolation(runner_pid=1))
    ran = []
    monkeypatch.setattr(main, "grade", lambda *args: ran.append(args))

    result = main.build_result(settings, BUNDLE)

    assert ran == []
    assert isinstance(result, Result)
    assert result.status == "error"
    assert result.verdict == "internal_error"
    assert "not isolated enough" in result.feedback
    assert "network_namespace" not in result.metrics["isolation"]
    assert "strict" in result.metrics["error"]


@pytest.mark.parametrize(
    ("isolation", "level"),
    [
        (Isolation(), "basic"),
        (Isolation(network_namespace=True), "basic"),
        (Isolation(uid=100_001), "basic"),
        (Isolation(uid=100_001, network_namespace=True), "strict"),
        (Isolation(seccomp=True), "strict"),
    ],
)
def test_level_needs_a_blocked_network_and_a_protected_runner(isolation, level):
    assert isolation.level == IsolationLevel(level)


def test_require_level_refuses_what_is_missing():
    require_level(Isolation(seccomp=True), IsolationLevel.STRICT)
    require_level(Isolation(), IsolationLevel.BASIC)
    require_level(Isolation(), IsolationLevel.NONE)
    with pytest.raises(IsolationUnavailable, match="provides 'basic'"):
        require_level(Isolation(), IsolationLevel.STRICT)


def test_unknown_levels_are_refused_when_the_settings_are_read():
    """An unknown level never reaches require_level: the runner does not start with it."""
    with pytest.raises(ConfigError, match=r"RUNNER_REQUIRE_ISOLATION='paranoid'"):
        RunnerSettings.from_env(ENV | {"RUNNER_REQUIRE_ISOLATION": "paranoid"})
