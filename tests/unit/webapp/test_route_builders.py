"""The URL builders the unit tests' apps share (conftest._route_builders_compiled_once)
build what werkzeug's own, compiled for each rule, build."""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import Rule


def test_every_route_builds_as_with_its_own_builder(app: Flask, make_app) -> None:
    werkzeug_compile_builder = Rule._compile_builder.__wrapped__
    rules = [*app.url_map.iter_rules(), *make_app().url_map.iter_rules()]
    assert len(rules) > 40
    for rule in rules:
        values = {name: f"value-{i}" for i, name in enumerate(sorted(rule.arguments))}
        for append_unknown, built in ((False, rule._build), (True, rule._build_unknown)):
            own = werkzeug_compile_builder(rule, append_unknown).__get__(rule, None)
            extra = {"page": "2"} if append_unknown else {}
            assert built(**values, **extra) == own(**values, **extra), rule.rule
