"""sandbox.isolation.probe_isolation on this machine: it tries each layer in a real child
process."""

from __future__ import annotations

import os

import pytest

from runner_image.contract import IsolationLevel
from runner_image.sandbox.isolation import probe_isolation


def test_this_machine_reaches_namespaced_as_root():
    """CI runs as root with seccomp, bubblewrap and writable cgroup v1 controllers: the probe
    must find every layer, and with them the namespaced level."""
    if os.geteuid() != 0:
        pytest.skip("the uid layer needs root")
    probed = probe_isolation()
    assert probed.level == IsolationLevel.NAMESPACED
    assert {"uid", "namespaces", "cgroup", "seccomp"} <= set(probed.layers)
