"""The `cloudemy` command: serve, worker, reconcile, flower, create-user, rebuild-stats,
and the dev stack's dev and demo (which need the `dev` extra)."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any, TypeVar

import click

from runner_image.settings import ConfigError, EnvSettings
from tasks.settings import FlowerSettings, LauncherKind, SchedulerSettings
from webapp.settings import ServeSettings, WebappSettings

S = TypeVar("S", bound=EnvSettings)


def _settings(kind: type[S], **options: Any) -> S:
    """The settings, or a one-line error naming every bad variable (exit code 1). Command
    line `options` that were given win over the environment."""
    given = {name: value for name, value in options.items() if value is not None}
    try:
        return kind.from_env(**given)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def main() -> None:
    """Cloudemy: submissions over REST, graded in a sandbox."""


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=None, help="Default: PORT, else 8000.")
@click.option("--workers", type=int, default=None, help="Default: WEB_CONCURRENCY, else 2.")
@click.option("--threads", default=8, show_default=True)
def serve(host: str, port: int | None, workers: int | None, threads: int) -> None:
    """Serve the REST API with gunicorn. Every setting is checked before gunicorn starts."""
    from webapp.server import serve as run_server

    settings = _settings(ServeSettings, port=port, web_concurrency=workers)
    run_server(settings, f"{host}:{settings.port}", settings.web_concurrency, threads)


@main.command()
@click.option("--concurrency", default=2, show_default=True)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(concurrency: int, loglevel: str) -> None:
    """Run the scheduler: a Celery worker on the submissions queue and, behind it, the bulk
    regrades queue; task events on."""
    settings = _settings(SchedulerSettings)
    from tasks.celery_app import worker_queues
    from tasks.worker import celery_app

    celery_app.worker_main(
        [
            "worker",
            "--queues",
            ",".join(worker_queues(settings)),
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
    default=None,
    show_default="RECONCILE_INTERVAL_SECONDS or 30",
    help="Seconds between two passes.",
)
@click.option("--once", is_flag=True, help="One pass, then exit (for a CronJob or a shell).")
def reconcile(interval: float | None, once: bool) -> None:
    """End in error the submissions of failed or timed-out runner Jobs (Kubernetes), and
    have the backend re-send lost tasks and end overdue submissions (every launcher)."""
    from runner_image.contract import CallbackError
    from tasks.launchers import LaunchError
    from tasks.reconcile import Reconciler, run_forever, sweep_backend

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = _settings(SchedulerSettings)
    try:
        if once:
            failed = False
            if settings.runner_launcher == LauncherKind.KUBERNETES:
                outcome = Reconciler(settings).run_once()
                click.echo(
                    f"reported {len(outcome.reported)}, already final "
                    f"{len(outcome.already_final)}, not reported {len(outcome.not_reported)}, "
                    f"left to the sweep {len(outcome.left_to_sweep)}"
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
        run_forever(settings, interval or settings.reconcile_interval_seconds, stop)
    except LaunchError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--port", type=int, default=None, help="Default: FLOWER_PORT, else 5555.")
@click.option(
    "--address",
    default=None,
    help="Default: FLOWER_ADDRESS, else 0.0.0.0 when FLOWER_BASIC_AUTH is set, else "
    "127.0.0.1 (no open, unauthenticated Flower).",
)
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(port: int | None, address: str | None, flower_args: tuple[str, ...]) -> None:
    """Run Flower against the configured broker (REDIS_URL). Flower reads FLOWER_* variables,
    e.g. FLOWER_BASIC_AUTH=user:password; other Flower options pass through. It needs no
    secret of the scheduler's: only the broker settings are read."""
    from tasks.celery_app import make_celery

    settings = _settings(FlowerSettings, flower_port=port, flower_address=address)
    celery_app = make_celery(settings)
    address = settings.flower_address or ("0.0.0.0" if settings.flower_basic_auth else "127.0.0.1")
    sys.exit(
        celery_app.start(
            ["flower", f"--port={settings.flower_port}", f"--address={address}", *flower_args]
        )
        or 0
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
    from pymongo.errors import PyMongoError

    from webapp.blueprints.accounts import create_user as save_user
    from webapp.errors import ApiError
    from webapp.schemas import RegisterBody
    from webapp.services import connect_mongo

    settings = _settings(WebappSettings)
    try:
        body = RegisterBody(email=email, name=name, password=password)
        connect_mongo(settings)
        user = save_user(body.email, body.name, body.password, role=role)
    except (ValidationError, ApiError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    except PyMongoError as exc:
        raise click.ClickException(f"MongoDB at MONGO_URI is unreachable: {exc}") from exc
    click.echo(f"created {role} {user.email} ({user.id})")


@main.command("migrate-courses")
def migrate_courses() -> None:
    """Put assignments from before courses into their owner's default course and enrol
    everyone who submitted to them. Idempotent: run it once after upgrading."""
    from pymongo.errors import PyMongoError

    from webapp.courses import migrate_assignments_into_courses
    from webapp.services import connect_mongo

    settings = _settings(WebappSettings)
    try:
        connect_mongo(settings)
        report = migrate_assignments_into_courses()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except PyMongoError as exc:
        raise click.ClickException(f"MongoDB at MONGO_URI is unreachable: {exc}") from exc
    click.echo(
        f"migrated {report.assignments} assignments; created {report.courses_created} "
        f"default courses; enrolled {report.students_enrolled} students"
    )


@main.command("rebuild-stats")
@click.option("--assignment", "assignment_id", default=None, help="Only this assignment (its id).")
def rebuild_stats(assignment_id: str | None) -> None:
    """Recompute the statistics (students' standings, assignments' counters) from the
    submissions. They are kept up to date as results are stored; this repairs them after a
    crash between two of their writes, or an import. Run it when few results arrive."""
    from bson import ObjectId
    from pymongo.errors import PyMongoError

    from webapp.models import Assignment
    from webapp.services import connect_mongo
    from webapp.stats_store import rebuild_stats as rebuild

    settings = _settings(WebappSettings)
    if assignment_id is not None and not ObjectId.is_valid(assignment_id):
        raise click.ClickException(f"{assignment_id!r} is not an assignment id")
    try:
        connect_mongo(settings)
        assignments = Assignment.objects.only("id").order_by("created_at")
        if assignment_id is not None:
            assignments = assignments.filter(id=ObjectId(assignment_id))
            if assignments.first() is None:
                raise click.ClickException(f"no assignment {assignment_id}")
        for assignment in assignments:
            done = rebuild(assignment.id)
            click.echo(
                f"assignment {assignment.id}: {done.submissions} submissions of "
                f"{done.students} students"
            )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except PyMongoError as exc:
        raise click.ClickException(f"MongoDB at MONGO_URI is unreachable: {exc}") from exc


def _dev_tools():
    try:
        import cloudemy_dev.demo
    except ImportError as exc:
        raise click.ClickException(
            f"this command needs the dev extra (pip install -e '.[dev]'): {exc}"
        ) from exc
    return cloudemy_dev.demo


@main.command()
@click.option("--port", type=int, default=None, help="Default: PORT, else 8000.")
def dev(port: int | None) -> None:
    """Run everything on this machine (embedded MongoDB stand-in and Redis when not given)."""
    sys.exit(_dev_tools().run_dev(port))


@main.command()
def demo() -> None:
    """Start everything, grade three sample submissions, print them, stop."""
    sys.exit(_dev_tools().run_demo())


if __name__ == "__main__":
    main()
