"""The OpenAPI documents and a page to browse the public one."""

from __future__ import annotations

from flask import Blueprint, jsonify
from spectree.page import PAGE_TEMPLATES

from webapp.openapi import internal_api, operation, public_api

bp = Blueprint("docs", __name__)

PUBLIC_SPEC_URL = "/api/openapi.json"


@bp.get(PUBLIC_SPEC_URL)
@operation(public_api, tags=("documentation",), ok={200: "this document"}, security=None)
def public_openapi():
    """The public API as OpenAPI 3.1."""
    return jsonify(public_api.spec)


@bp.get("/api/docs")
@operation(public_api, tags=("documentation",), ok={200: "an HTML page"}, security=None)
def public_docs():
    """The public API, browsable (Swagger UI, loaded by the browser from its CDN)."""
    return PAGE_TEMPLATES["swagger"].format(
        spec_url=PUBLIC_SPEC_URL, spec_path="api", **public_api.config.swagger_oauth2_config()
    )


@bp.get("/internal/openapi.json")
@operation(internal_api, tags=("documentation",), ok={200: "this document"}, security=None)
def internal_openapi():
    """The cluster-internal API as OpenAPI 3.1."""
    return jsonify(internal_api.spec)
