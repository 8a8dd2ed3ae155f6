"""Serve a Flask app with gunicorn (threads in each worker; the work is I/O-bound)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from webapp import create_app
from webapp.settings import WebappSettings


class GunicornServer(BaseApplication):
    """`load_app` runs in each gunicorn worker, so connections are made after the fork."""

    def __init__(self, load_app: Callable[[], Flask], options: dict[str, Any]) -> None:
        self.load_app = load_app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        return self.load_app()


def run_gunicorn(load_app: Callable[[], Flask], bind: str, workers: int, threads: int) -> None:
    GunicornServer(
        load_app,
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 60,
            "accesslog": "-",
            "errorlog": "-",
            "pre_fork": _freeze_imported_objects,
        },
    ).run()


def _freeze_imported_objects(server: Any, worker: Any) -> None:
    """Everything the master has imported moves to the collector's permanent generation
    before the fork: the worker's collections then never write to those objects, so their
    pages stay shared with the master instead of being copied into every worker."""
    gc.freeze()


def serve(settings: WebappSettings, bind: str, workers: int, threads: int) -> None:
    run_gunicorn(lambda: create_app(settings), bind, workers, threads)
