"""The Flask app factory, configured from a `WebappSettings` object."""

from __future__ import annotations

from flask import Flask
from flask_cors import CORS

from webapp.blueprints import (
    accounts,
    assignments,
    courses,
    docs,
    events,
    export,
    extensions,
    health,
    internal,
    llm_gateway,
    regrade,
    reviews,
    stats,
    submissions,
)
from webapp.errors import register_error_handlers
from webapp.limits import install_limits
from webapp.metrics import instrument
from webapp.services import Services, make_services
from webapp.settings import WebappSettings


def create_app(settings: WebappSettings, services: Services | None = None) -> Flask:
    """No global side effects beyond what `make_services` connects when `services` is not
    given; logging is the server's business."""
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False
    app.extensions["cloudemy"] = services or make_services(settings)
    CORS(app, resources={r"/api/*": {"origins": list(settings.cors_origins)}})
    register_error_handlers(app)
    install_limits(app, settings)
    instrument(app)
    events.install_stream_slots(app, settings.event_streams_per_worker)
    blueprints = (
        accounts,
        courses,
        assignments,
        submissions,
        regrade,
        events,
        stats,
        export,
        extensions,
        reviews,
        internal,
        llm_gateway,
        health,
        docs,
    )
    for blueprint in (module.bp for module in blueprints):
        app.register_blueprint(blueprint)
    return app
