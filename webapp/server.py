"""Serve the app with gunicorn (threads in each worker; the work is I/O-bound)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from webapp import create_app
from webapp.config import Settings


class GunicornServer(BaseApplication):
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        return create_app(self.settings)


def serve(settings: Settings, bind: str, workers: int, threads: int) -> None:
    settings.require_secrets()
    if settings.mongo_uri and settings.mongo_uri.startswith("mongomock://") and workers != 1:
        workers = 1  # the in-process stand-in lives in one process; more would split the data
    GunicornServer(
        settings,
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 60,
            "accesslog": "-",
            "errorlog": "-",
        },
    ).run()
