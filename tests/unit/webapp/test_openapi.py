"""The OpenAPI documents are valid OpenAPI 3.1 and describe exactly the routes Flask serves:
every public route in the public document, every /internal route in the internal one."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def served_operations(app: Flask, internal: bool) -> set[tuple[str, str]]:
    """(method, path) of every route, with Flask's `<name>` written as OpenAPI's `{name}`."""
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule.startswith("/internal") != internal:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        operations |= {(method, path) for method in rule.methods - IGNORED_METHODS}
    return operations


def documented_operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


@pytest.mark.parametrize(
    ("url", "internal"), [("/api/openapi.json", False), ("/internal/openapi.json", True)]
)
def test_document_is_valid_and_matches_every_route(
    app: Flask, client: FlaskClient, url: str, internal: bool
) -> None:
    document = client.get(url).get_json()
    assert document["openapi"].startswith("3.1")
    validate(document)
    assert documented_operations(document) == served_operations(app, internal)


def test_public_document_states_the_error_envelope_auth_and_statuses(client: FlaskClient) -> None:
    document = client.get("/api/openapi.json").get_json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    submit = document["paths"]["/api/assignments/{assignment_id}/submissions"]["post"]
    assert {"202", "400", "401", "404", "409", "413", "415", "422", "429", "503"} <= set(
        submit["responses"]
    )
    error_schema = submit["responses"]["409"]["content"]["application/json"]["schema"]
    assert error_schema == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert submit["security"] == [{"bearer": []}]
    register = document["paths"]["/api/auth/register"]["post"]
    assert "security" not in register or register["security"] == []
    assert register["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RegisterBody"
    }


def test_internal_routes_stay_out_of_the_public_document(client: FlaskClient) -> None:
    public = client.get("/api/openapi.json").get_json()
    assert not [path for path in public["paths"] if path.startswith("/internal")]
    assert "Result" not in public["components"]["schemas"]


def test_docs_page_points_at_the_document(client: FlaskClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "/api/openapi.json" in page.get_data(as_text=True)
