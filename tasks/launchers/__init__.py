"""Launchers start one runner per submission. Which one runs is configuration
(`RUNNER_LAUNCHER`); everything before and after a launch is the same code."""

from __future__ import annotations

from functools import lru_cache

from tasks.launchers.base import Launcher, LaunchError
from webapp.config import Settings

__all__ = ["LaunchDeferred", "LaunchError", "Launcher", "make_launcher"]


class LaunchDeferred(Exception):
    """Not now, and not a failure: the cluster is at MAX_RUNNING_JOBS or asked us to slow
    down (429). The scheduler retries after `countdown` seconds without spending its budget
    of launch failures, so a busy cluster delays submissions but never fails them."""

    def __init__(self, message: str, countdown: float) -> None:
        super().__init__(message)
        self.countdown = countdown


def make_launcher(settings: Settings) -> Launcher:
    if settings.runner_launcher == "local":
        from tasks.launchers.local import LocalLauncher

        return LocalLauncher(settings)
    if settings.runner_launcher == "kubernetes":
        return _kubernetes_launcher(settings)
    raise LaunchError(f"RUNNER_LAUNCHER={settings.runner_launcher!r} is not available")


@lru_cache(maxsize=4)
def _kubernetes_launcher(settings: Settings) -> Launcher:
    """One per worker process and settings: it holds the API client's connection pool."""
    from tasks.launchers.kubernetes import KubernetesLauncher

    return KubernetesLauncher(settings)
