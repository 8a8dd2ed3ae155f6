"""Serve a Flask app with gunicorn (threads in each worker; the work is I/O-bound)."""

from __future__ import annotations

import ctypes
import gc
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from webapp.app import create_app
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


# glibc's mallopt parameters (malloc.h), and the values the backend sets.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MALLOC_OPTIONS = {M_MMAP_THRESHOLD: 1024 * 1024, M_ARENA_MAX: 2}


def limit_retained_memory(mallopt: Callable[[int, int], int] | None = None) -> bool:
    """Return freed memory to the kernel instead of keeping it in the worker's heaps, so a pod
    that has served load is as small idle as one that has not (docs/deploy.md, section 14).

    Every password hash allocates argon2's 19 MiB. glibc raises its mmap threshold to the
    size of a freed mmap'd block, so after the first hash each thread's 19 MiB comes from
    its own malloc arena, and is kept there when freed: 19 MiB more per thread that has
    served a login, up to 8 x 19 MiB idle. A fixed threshold keeps blocks of 1 MiB and more
    in mmap (unmapped when freed, a hash costs ~10 ms more to fault in), and two arenas
    instead of one per thread bound what the threads keep of smaller blocks. Set in the
    master before it forks or starts a thread (as MALLOC_MMAP_THRESHOLD_ and MALLOC_ARENA_MAX
    would, had every way of starting the backend put them in its environment). True if every
    option was accepted; a libc without mallopt (not glibc) is left as it is."""
    if mallopt is None:
        mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
        if mallopt is None:
            return False
    accepted = [mallopt(option, value) for option, value in MALLOC_OPTIONS.items()]
    return all(result == 1 for result in accepted)


KEEPALIVE_SECONDS = 75


def run_gunicorn(load_app: Callable[[], Flask], bind: str, workers: int, threads: int) -> None:
    if not limit_retained_memory():
        logging.getLogger(__name__).warning("malloc options not set: freed memory is kept")
    GunicornServer(
        load_app,
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 60,
            # Idle keep-alive connections stay open longer than clients and load balancers
            # keep theirs (gunicorn's 2 s would close one just as a client reuses it, and a
            # POST sent on it fails with "connection closed without response").
            "keepalive": KEEPALIVE_SECONDS,
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
