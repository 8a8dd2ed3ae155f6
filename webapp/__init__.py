"""The Cloudemy backend: a Flask app factory, configured from a `Settings` object."""

from __future__ import annotations

import logging

from flask import Flask
from flask_cors import CORS

from webapp.config import Settings
from webapp.errors import register_error_handlers
from webapp.extensions import connect_mongo, make_services
from webapp.metrics import instrument


def create_app(settings: Settings | None = None) -> Flask:
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
