"""Submission status events over Redis pub/sub: the lifecycle publishes every state change,
and whichever worker or pod serves a client's event stream relays it. Publishing is best
effort: a stream re-reads the stored state at every heartbeat, so a lost event delays a
client by at most one heartbeat, and never loses a result."""

from __future__ import annotations

import contextlib

from redis import Redis
from redis.exceptions import RedisError

from runner_image.contract import Status

CHANNEL = "submission-events:{id}"


def channel(submission_id: object) -> str:
    return CHANNEL.format(id=submission_id)


def publish_status(redis: Redis, submission_id: object, status: Status) -> None:
    with contextlib.suppress(RedisError):
        redis.publish(channel(submission_id), str(status))
