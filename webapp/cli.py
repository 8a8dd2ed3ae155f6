"""The `cloudemy` command: serve, worker, reconcile, flower, dev, demo, create-user."""

from __future__ import annotations

import os
import sys

import click

from webapp.config import ConfigError, Settings


@click.group()
def main() -> None:
    """Cloudemy: submissions over REST, graded in a sandbox."""


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8000")), show_default="8000")
@click.option(
    "--workers", default=lambda: int(os.environ.get("WEB_CONCURRENCY", "2")), show_default="2"
)
@click.option("--threads", default=8, show_default=True)
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the REST API with gunicorn."""
    from webapp.server import serve as run_server

    try:
        run_server(Settings.from_env(), f"{host}:{port}", workers, threads)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--concurrency", default=2, show_default=True)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(concurrency: int, loglevel: str) -> None:
    """Run the scheduler: a Celery worker on the submissions queue, task events on."""
    from tasks.celery_app import celery_app

    settings = Settings.from_env()
    celery_app.worker_main(
        [
            "worker",
            "--queues",
            settings.queue_submissions,
            "--concurrency",
            str(concurrency),
            "--loglevel",
            loglevel,
            "--task-events",
            "--hostname",
            "scheduler@%h",
        ]
    )


@main.command()
@click.option(
    "--interval",
    type=float,
    default=lambda: Settings.from_env().reconcile_interval_seconds,
    show_default="RECONCILE_INTERVAL_SECONDS or 30",
    help="Seconds between two passes.",
)
@click.option("--once", is_flag=True, help="One pass, then exit (for a CronJob or a shell).")
def reconcile(interval: float, once: bool) -> None:
    """End in error the submissions of failed or timed-out runner Jobs (Kubernetes), and
    have the backend re-send lost tasks and end overdue submissions (every launcher)."""
    import logging
    import signal
    import threading

    from runner_image.callback import CallbackError
    from tasks.launchers import LaunchError
    from tasks.reconcile import Reconciler, run_forever, sweep_backend

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_env()
    try:
        if once:
            failed = False
            if settings.runner_launcher == "kubernetes":
                outcome = Reconciler(settings).run_once()
                click.echo(
                    f"reported {len(outcome.reported)}, already final "
                    f"{len(outcome.already_final)}, not reported {len(outcome.not_reported)}"
                )
                failed = bool(outcome.not_reported)
            try:
                click.echo(f"backend sweep: {sweep_backend(settings)}")
            except CallbackError as exc:
                click.echo(f"backend sweep failed: {exc}", err=True)
                failed = True
            sys.exit(1 if failed else 0)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        run_forever(settings, interval, stop)
    except LaunchError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--port",
    type=int,
    default=lambda: int(os.environ.get("FLOWER_PORT", "5555")),
    show_default="FLOWER_PORT or 5555",
)
@click.option(
    "--address",
    default=None,
    help="Default: 0.0.0.0 when FLOWER_BASIC_AUTH is set, else 127.0.0.1 (no open, "
    "unauthenticated Flower).",
)
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(port: int, address: str | None, flower_args: tuple[str, ...]) -> None:
    """Run Flower against the configured broker (REDIS_URL). Flower reads FLOWER_* variables,
    e.g. FLOWER_BASIC_AUTH=user:password; other Flower options pass through."""
    from tasks.celery_app import celery_app

    if address is None:
        address = os.environ.get("FLOWER_ADDRESS") or (
            "0.0.0.0" if os.environ.get("FLOWER_BASIC_AUTH") else "127.0.0.1"
        )
    sys.exit(
        celery_app.start(["flower", f"--port={port}", f"--address={address}", *flower_args]) or 0
    )


@main.command("create-user")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(["student", "instructor"]), default="student")
@click.option(
    "--password", envvar="CLOUDEMY_PASSWORD", prompt=True, hide_input=True, confirmation_prompt=True
)
def create_user(email: str, name: str, role: str, password: str) -> None:
    """Create an account (instructors are created this way)."""
    from pydantic import ValidationError

    from webapp.blueprints.accounts import create_user as save_user
    from webapp.errors import ApiError
    from webapp.extensions import connect_mongo
    from webapp.schemas import RegisterBody

    try:
        body = RegisterBody(email=email, name=name, password=password)
        connect_mongo(Settings.from_env())
        user = save_user(body.email, body.name, body.password, role=role)
    except (ValidationError, ApiError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"created {role} {user.email} ({user.id})")


@main.command()
@click.option("--port", default=8000, show_default=True)
def dev(port: int) -> None:
    """Run everything on this machine (embedded MongoDB stand-in and Redis when not given)."""
    from webapp.demo import run_dev

    sys.exit(run_dev(port))


@main.command()
def demo() -> None:
    """Start everything, grade three sample submissions, print them, stop."""
    from webapp.demo import run_demo

    sys.exit(run_demo())


if __name__ == "__main__":
    main()
