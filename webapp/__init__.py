"""The Cloudemy backend: a Flask app factory, configured from a `Settings` object."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from webapp.config import Settings


def create_app(settings: Settings | None = None) -> Flask:
    # Imported here so that `webapp.config` can be imported (by celeryconfig and the
    # scheduler) without pulling in the whole web stack and a circular import with tasks.
    from flask import Flask
    from flask_cors import CORS

    from webapp.config import Settings
    from webapp.errors import register_error_handlers
    from webapp.extensions import connect_mongo, make_services
    from webapp.metrics import instrument

    settings = settings or Settings.from_env()
    settings.require_secrets()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False

    connect_mongo(settings)
    app.extensions["cloudemy"] = make_services(settings)
    CORS(app, resources={r"/api/*": {"origins": list(settings.cors_origins)}})
    register_error_handlers(app)
    instrument(app)

    from webapp.blueprints import accounts, assignments, health, internal, submissions

    for blueprint in (accounts.bp, assignments.bp, submissions.bp, internal.bp, health.bp):
        app.register_blueprint(blueprint)

    if settings.demo_seed:
        from webapp.demo_data import seed_demo_data

        seed_demo_data()
    return app
