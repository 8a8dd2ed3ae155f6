"""A required isolation level the machine cannot meet fails loudly, never runs unprotected.
(Probing this machine's layers starts processes: see tests/sandbox/test_isolation_probe.py.)"""

from __future__ import annotations

from pathlib import Path

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


BWRAP = Path("/opt/bwrap")


def test_a_namespaced_requirement_is_not_met_by_a_pod_s_strict_level(monkeypatch):
    """A restricted pod (seccomp, the runner's own uid, no namespaces) is strict at best."""
    settings = RunnerSettings.from_env(ENV | {"RUNNER_REQUIRE_ISOLATION": "namespaced"})
    pod = Isolation(seccomp=True, runner_pid=1)
    monkeypatch.setattr(main, "probe_isolation", lambda: pod)
    ran = []
    monkeypatch.setattr(main, "grade", lambda *args: ran.append(args))

    result = main.build_result(settings, BUNDLE)

    assert ran == []
    assert result.status == "error"
    assert "'namespaced' is required" in result.metrics["error"]
    assert result.metrics["isolation"] == pod.layers


class Graded(Exception):
    pass


def test_the_runner_logs_its_level_layers_and_sandbox_uid(monkeypatch, settings, caplog):
    """tests/runner_harness.py reads the sandbox uid of a run from this line."""
    namespaced = Isolation(uid=123_456, seccomp=True, bwrap=BWRAP, cgroup=True, runner_pid=1)
    monkeypatch.setattr(main, "probe_isolation", lambda: namespaced)

    def grade(bundle, isolation):
        assert isolation is namespaced
        raise Graded

    monkeypatch.setattr(main, "grade", grade)
    with caplog.at_level("INFO", logger="runner"), pytest.raises(Graded):
        main.build_result(settings, BUNDLE)
    assert (
        f"isolation level namespaced ({', '.join(namespaced.layers)}), sandbox uid 123456"
        in caplog.messages
    )


@pytest.mark.parametrize(
    ("isolation", "level"),
    [
        (Isolation(), "basic"),
        (Isolation(cgroup=True), "basic"),
        (Isolation(network_namespace=True), "basic"),
        (Isolation(uid=100_001), "basic"),
        (Isolation(uid=100_001, cgroup=True), "basic"),
        (Isolation(uid=100_001, network_namespace=True), "strict"),
        (Isolation(seccomp=True), "strict"),
        (Isolation(seccomp=True, network_namespace=True, cgroup=True), "strict"),
        # Namespaces block the network and keep the runner out of reach on their own...
        (Isolation(bwrap=BWRAP), "strict"),
        (Isolation(bwrap=BWRAP, cgroup=True), "strict"),
        # ...but namespaced needs them with seccomp and a uid of the sandbox's own.
        (Isolation(bwrap=BWRAP, seccomp=True), "strict"),
        (Isolation(bwrap=BWRAP, uid=100_001), "strict"),
        (Isolation(uid=100_001, seccomp=True, network_namespace=True, cgroup=True), "strict"),
        (Isolation(bwrap=BWRAP, seccomp=True, uid=100_001), "namespaced"),
        (Isolation(bwrap=BWRAP, seccomp=True, uid=100_001, cgroup=True), "namespaced"),
    ],
)
def test_level_needs_a_blocked_network_and_a_protected_runner(isolation, level):
    assert isolation.level == IsolationLevel(level)


def test_levels_are_ordered_weakest_first():
    ordered = ["none", "basic", "strict", "namespaced"]
    assert [level.value for level in sorted(IsolationLevel, key=lambda lv: lv.rank)] == ordered


def test_layers_name_the_always_on_ones_then_each_active_layer():
    always_on = [
        "workdir",
        "scrubbed_env",
        "rlimits",
        "process_group",
        "runner_non_dumpable",
        "child_subreaper",
    ]
    assert Isolation().layers == always_on
    everything = Isolation(
        uid=100_001, network_namespace=True, seccomp=True, bwrap=BWRAP, cgroup=True
    )
    assert everything.layers == [
        *always_on,
        "uid",
        "namespaces",
        "cgroup",
        "network_namespace",
        "seccomp",
    ]
    assert Isolation(bwrap=BWRAP).layers == [*always_on, "namespaces"]
    assert Isolation(cgroup=True).layers == [*always_on, "cgroup"]


def test_namespaces_are_the_bwrap_layer():
    assert Isolation(bwrap=BWRAP).namespaces is True
    assert Isolation(network_namespace=True).namespaces is False


def test_require_level_refuses_what_is_missing():
    namespaced = Isolation(bwrap=BWRAP, seccomp=True, uid=100_001)
    require_level(namespaced, IsolationLevel.NAMESPACED)
    require_level(namespaced, IsolationLevel.STRICT)
    require_level(Isolation(seccomp=True), IsolationLevel.STRICT)
    require_level(Isolation(), IsolationLevel.BASIC)
    require_level(Isolation(), IsolationLevel.NONE)
    with pytest.raises(IsolationUnavailable, match="provides 'basic'"):
        require_level(Isolation(), IsolationLevel.STRICT)
    with pytest.raises(IsolationUnavailable, match=r"'namespaced' is required.*provides 'strict'"):
        require_level(Isolation(seccomp=True, bwrap=BWRAP), IsolationLevel.NAMESPACED)


def test_unknown_levels_are_refused_when_the_settings_are_read():
    """An unknown level never reaches require_level: the runner does not start with it."""
    with pytest.raises(ConfigError, match=r"RUNNER_REQUIRE_ISOLATION='paranoid'"):
        RunnerSettings.from_env(ENV | {"RUNNER_REQUIRE_ISOLATION": "paranoid"})
