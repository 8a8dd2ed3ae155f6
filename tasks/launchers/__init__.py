"""Launchers start one runner per submission. Which one runs is configuration
(`RUNNER_LAUNCHER`); everything before and after a launch is the same code."""

from __future__ import annotations

from tasks.launchers.base import Launcher, LaunchError
from webapp.config import Settings

__all__ = ["LaunchError", "Launcher", "make_launcher"]


def make_launcher(settings: Settings) -> Launcher:
    if settings.runner_launcher == "local":
        from tasks.launchers.local import LocalLauncher

        return LocalLauncher(settings)
    raise LaunchError(f"RUNNER_LAUNCHER={settings.runner_launcher!r} is not available")
