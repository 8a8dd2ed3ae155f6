"""`GET /api/submissions/<id>/events`: a submission's status as Server-Sent Events, so a
client need not poll. The current state comes first (a late subscriber misses nothing),
then every change the lifecycle publishes (webapp.events) as it happens, whichever worker
or pod made it; the stream ends at a final state.

Each stream holds one of a gunicorn worker's threads for as long as it is open, so a
worker serves at most EVENT_STREAMS_PER_WORKER of them at once (half its threads by
default) and answers 503 with Retry-After beyond that: long-lived streams never starve the
rest of the API. A stream also ends after EVENT_STREAM_MAX_SECONDS; browsers' EventSource
and fetch clients reconnect, and get the current state first again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

from flask import Blueprint, Flask, Response, current_app, g, stream_with_context
from redis.exceptions import RedisError

from runner_image.contract import FINAL_STATUSES
from webapp.auth import login_required
from webapp.blueprints.submissions import readable_submission
from webapp.errors import ApiError
from webapp.events import channel
from webapp.models import Submission, User
from webapp.openapi import operation, public_api
from webapp.serializers import submission_json
from webapp.services import app_settings, services

bp = Blueprint("events", __name__, url_prefix="/api")

SLOTS = "cloudemy-event-streams"


def install_stream_slots(app: Flask, slots: int) -> None:
    app.extensions[SLOTS] = threading.BoundedSemaphore(slots)


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


STREAM = (
    "`text/event-stream`: `event: status` with the submission (as the caller may see it) now "
    "and at every change, `event: end` with `{status}` at a final state, `: heartbeat` "
    "comments while nothing changes"
)


@bp.get("/submissions/<submission_id>/events")
@operation(
    public_api,
    tags=("submissions",),
    ok={200: STREAM},
    errors={404: "", 503: "`too_many_streams`, with `Retry-After`"},
)
@login_required()
def submission_events(submission_id: str):
    """Follow a submission's status as Server-Sent Events until it is final (read it with
    `fetch`: the bearer token goes in the `Authorization` header, never in the URL)."""
    submission, assignment, is_instructor = readable_submission(g.user, submission_id)
    slots: threading.BoundedSemaphore = current_app.extensions[SLOTS]
    if not slots.acquire(blocking=False):
        raise ApiError(
            503,
            "too_many_streams",
            "this server follows as many submissions as it can; retry, or poll",
            {"retry_after_seconds": 5},
            headers={"Retry-After": "5"},
        )
    try:
        pubsub = services().redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(channel(submission.id))
    except RedisError as exc:
        slots.release()
        raise ApiError(503, "dependency_unavailable", "the event bus is unreachable") from exc
    settings = app_settings()
    student = User.objects(id=submission.user_id).first() if is_instructor else None

    def stream() -> Iterator[str]:
        """Subscribed before the first read, so no change falls between the two."""
        heartbeat = settings.event_stream_heartbeat_seconds
        try:
            shown = None
            ends = time.monotonic() + settings.event_stream_max_seconds
            said = time.monotonic()
            while True:
                current = Submission.objects(id=submission.id).first()
                if current.status != shown:
                    shown = current.status
                    shown_json = submission_json(current, assignment, is_instructor, student)
                    yield _event("status", shown_json.json_body())
                    said = time.monotonic()
                if shown in FINAL_STATUSES:
                    yield _event("end", {"status": shown})
                    return
                if time.monotonic() > ends:
                    return
                # Wakes on a published change (then the state is read again), or for the
                # heartbeat that keeps proxies from closing a quiet stream.
                pubsub.get_message(timeout=max(said + heartbeat - time.monotonic(), 0.0))
                if time.monotonic() - said >= heartbeat:
                    yield ": heartbeat\n\n"
                    said = time.monotonic()
        finally:
            pubsub.close()
            slots.release()

    return Response(
        stream_with_context(stream()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
