"""The webapp on the embedded MongoDB stand-in: the production app factory, given a
mongomock connection instead of a server, and the demo accounts seeded. Run by the dev
stack as `python -m cloudemy_dev.embedded`; everything else about it is the production
server (gunicorn, the same blueprints, Redis and Celery)."""

from __future__ import annotations

import argparse

import mongoengine
import mongomock
from flask import Flask
from pymongo.database import Database

from cloudemy_dev.demo_data import seed_demo_data
from cloudemy_dev.mongomock_lookups import use_shortcuts
from cloudemy_dev.mongomock_threads import use_collection_locks
from cloudemy_dev.settings import DevSettings
from webapp.app import create_app
from webapp.server import run_gunicorn
from webapp.services import EMBEDDED_MONGO_SCHEME, connect_mongo, make_services
from webapp.settings import WebappSettings


def connect_embedded_mongo(settings: WebappSettings) -> Database:
    """mongoengine's default alias on an in-process mongomock database: nothing is kept
    when the process exits, its queries take the shortcuts of mongomock_lookups, and its
    collections' writes and reads take turns (mongomock_threads, whose locks wrap the
    shortcuts' update). `mongodb://` URIs are connected for real."""
    if not settings.mongo_uri.startswith(EMBEDDED_MONGO_SCHEME):
        return connect_mongo(settings)
    use_shortcuts()
    use_collection_locks()
    mongoengine.disconnect()
    mongoengine.connect(
        db=settings.db_name,
        host="mongodb://" + settings.mongo_uri.removeprefix(EMBEDDED_MONGO_SCHEME),
        mongo_client_class=mongomock.MongoClient,
        uuidRepresentation="standard",
    )
    return mongoengine.get_db()


def embedded_app(settings: WebappSettings, seed: bool) -> Flask:
    app = create_app(settings, make_services(settings, connect_embedded_mongo(settings)))
    if seed:
        seed_demo_data()
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1:8000")
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    settings = WebappSettings.from_env()
    seed = DevSettings.from_env().seeds(settings.mongo_uri)
    # One worker: the stand-in's data lives in one process; more would split it.
    run_gunicorn(lambda: embedded_app(settings, seed), args.bind, workers=1, threads=args.threads)


if __name__ == "__main__":
    main()
