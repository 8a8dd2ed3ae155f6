"""Launchers start one runner per submission. Which one runs is configuration
(`RUNNER_LAUNCHER`); everything before and after a launch is the same code."""

from __future__ import annotations

from functools import lru_cache

from tasks.launchers.base import LaunchDeferred, Launcher, LaunchError
from tasks.settings import LauncherKind, SchedulerSettings

__all__ = ["LaunchDeferred", "LaunchError", "Launcher", "make_launcher"]


@lru_cache(maxsize=4)
def make_launcher(settings: SchedulerSettings) -> Launcher:
    """One per worker process and settings: each holds connections (Redis, the API server's
    connection pool)."""
    if settings.runner_launcher == LauncherKind.KUBERNETES:
        from tasks.launchers.kubernetes import KubernetesLauncher

        return KubernetesLauncher(settings)
    from tasks.launchers.local import LocalLauncher

    return LocalLauncher(settings)
