"""Connections the webapp holds: MongoDB (mongoengine), Redis, and a Celery producer."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import mongoengine
import mongomock
import redis
from celery import Celery
from flask import current_app

from tasks.celery_app import make_celery
from webapp.config import ConfigError, Settings

log = logging.getLogger(__name__)

EMBEDDED_MONGO_SCHEME = "mongomock://"


@dataclass(frozen=True)
class Services:
    redis: redis.Redis
    celery: Celery


def connect_mongo(settings: Settings) -> None:
    """Connect mongoengine; `mongomock://` asks, explicitly, for the in-process stand-in."""
    if not settings.mongo_uri:
        raise ConfigError(
            "MONGO_URI is not set (use mongodb://... , or mongomock://localhost for the "
            "in-process stand-in that keeps nothing)"
        )
    mongoengine.disconnect()
    if settings.mongo_uri.startswith(EMBEDDED_MONGO_SCHEME):
        log.warning(
            "MONGO_URI=%s: using the in-process MongoDB stand-in (mongomock); "
            "data is NOT kept when this process exits",
            settings.mongo_uri,
        )
        mongoengine.connect(
            db=settings.db_name,
            host="mongodb://" + settings.mongo_uri.removeprefix(EMBEDDED_MONGO_SCHEME),
            mongo_client_class=mongomock.MongoClient,
            uuidRepresentation="standard",
        )
    else:
        mongoengine.connect(
            db=settings.db_name,
            host=settings.mongo_uri,
            uuidRepresentation="standard",
            serverSelectionTimeoutMS=3000,
        )


def make_services(settings: Settings) -> Services:
    return Services(
        redis=redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=3),
        celery=make_celery(settings),
    )


def services() -> Services:
    return current_app.extensions["cloudemy"]
