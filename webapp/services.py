"""The connections the webapp holds: MongoDB (mongoengine), Redis, and a Celery producer.
`create_app` takes them ready-made (tests, the dev stack) or makes them from the settings."""

from __future__ import annotations

from dataclasses import dataclass

import mongoengine
import redis
from celery import Celery
from flask import current_app
from pymongo.database import Database

from runner_image.settings import ConfigError
from tasks.celery_app import make_celery
from webapp.settings import WebappSettings

EMBEDDED_MONGO_SCHEME = "mongomock://"


@dataclass(frozen=True)
class Services:
    database: Database
    redis: redis.Redis
    celery: Celery


def require_real_mongo(settings: WebappSettings) -> None:
    """The in-process stand-in (`mongomock://`) belongs to the dev stack, never here."""
    if settings.mongo_uri.startswith(EMBEDDED_MONGO_SCHEME):
        raise ConfigError(
            "MONGO_URI=mongomock://... is the in-process stand-in of `cloudemy dev`; "
            "a served backend needs a real MongoDB (mongodb://...)"
        )


def connect_mongo(settings: WebappSettings) -> Database:
    """Connect mongoengine's default alias to the configured server."""
    require_real_mongo(settings)
    mongoengine.connect(
        db=settings.db_name,
        host=settings.mongo_uri,
        uuidRepresentation="standard",
        # An unreachable MongoDB is a 503 within about a second (webapp.errors), not a
        # request hanging on it.
        serverSelectionTimeoutMS=1000,
        connectTimeoutMS=1000,
    )
    return mongoengine.get_db()


def make_services(settings: WebappSettings, database: Database | None = None) -> Services:
    return Services(
        database=database if database is not None else connect_mongo(settings),
        redis=redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=1),
        celery=make_celery(settings),
    )


def services() -> Services:
    return current_app.extensions["cloudemy"]


def app_settings() -> WebappSettings:
    return current_app.config["SETTINGS"]
