"""A required isolation level the machine cannot meet fails loudly, never runs unprotected."""

from __future__ import annotations

import json
import os

import fakeredis
import pytest

from runner_image import main
from runner_image.bundle import BUNDLE_KEY
from runner_image.config import RunnerSettings
from runner_image.isolation import Isolation, IsolationUnavailable, probe_isolation, require_level

BUNDLE = {
    "submission_id": "s1",
    "language": "python",
    "code": "print('ran')\n",
    "tests": [{"name": "t", "stdin": "", "expected_stdout": "ran\n"}],
}


@pytest.fixture
def settings(monkeypatch) -> RunnerSettings:
    store = fakeredis.FakeRedis()
    store.set(BUNDLE_KEY.format(id="s1"), json.dumps(BUNDLE))
    monkeypatch.setattr("runner_image.bundle.redis.Redis.from_url", lambda *a, **k: store)
    return RunnerSettings(
        submission_id="s1",
        redis_url="redis://unused",
        backend_internal_url="http://unused/internal",
        result_token="t",
        require_isolation="strict",
    )


def test_unmet_strict_requirement_is_an_internal_error_and_nothing_runs(monkeypatch, settings):
    monkeypatch.setattr(main, "probe_isolation", lambda: Isolation(runner_pid=1))
    ran = []
    monkeypatch.setattr(main, "grade", lambda *args: ran.append(args))

    result = main.build_result(settings)

    assert ran == []
    assert result["status"] == "error"
    assert result["verdict"] == "internal_error"
    assert "not isolated enough" in result["feedback"]
    assert "network_namespace" not in result["metrics"]["isolation"]
    assert "strict" in result["metrics"]["error"]


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
    assert isolation.level == level


def test_require_level_refuses_what_is_missing_and_unknown_levels():
    require_level(Isolation(seccomp=True), "strict")
    require_level(Isolation(), "basic")
    with pytest.raises(IsolationUnavailable, match="provides 'basic'"):
        require_level(Isolation(), "strict")
    with pytest.raises(IsolationUnavailable, match="must be one of"):
        require_level(Isolation(), "paranoid")


def test_this_machine_reaches_strict_as_root():
    """CI runs as root with seccomp and namespaces: the probe must find them all."""
    if os.geteuid() != 0:
        pytest.skip("the uid layer needs root")
    probed = probe_isolation()
    assert probed.level == "strict"
    assert {"uid", "network_namespace", "seccomp"} <= set(probed.layers)
