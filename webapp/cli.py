"""The `cloudemy` command: serve, worker, dev, demo, create-user, flower."""

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
