"""bundle.py: parsing the webapp's grading bundle and loading it from Redis."""

from __future__ import annotations

import json

import fakeredis
import pytest
import redis

from runner_image.bundle import Bundle, BundleMissing, load_bundle, parse_bundle
from runner_image.bundle import TestSpec as Spec

RAW = {
    "submission_id": "sub-1",
    "assignment_id": "asg-1",
    "language": "python",
    "code": "print(input())\n",
    "time_limit_ms": 1500,
    "memory_limit_mb": 128,
    "max_score": 10,
    "feedback": {"llm": True, "rubric": "be kind", "rubric_weight": 0.2},
    "assignment": {"title": "Echo", "description": "Print the input."},
    "tests": [
        {
            "name": "public",
            "stdin": "hi\n",
            "expected_stdout": "hi\n",
            "hidden": False,
            "weight": 1.0,
            "compare": "lines",
            "tolerance": 1e-6,
        },
        {
            "name": "hidden",
            "stdin": "1.5\n",
            "expected_stdout": "1.5\n",
            "hidden": True,
            "weight": 2.5,
            "compare": "float",
            "tolerance": 0.01,
        },
    ],
}

EXPECTED = Bundle(
    submission_id="sub-1",
    language="python",
    code="print(input())\n",
    tests=(
        Spec("public", "hi\n", "hi\n", hidden=False, weight=1.0, compare="lines", tolerance=1e-6),
        Spec("hidden", "1.5\n", "1.5\n", hidden=True, weight=2.5, compare="float", tolerance=0.01),
    ),
    time_limit_ms=1500,
    memory_limit_mb=128,
    max_score=10.0,
    feedback={"llm": True, "rubric": "be kind", "rubric_weight": 0.2},
    assignment={"title": "Echo", "description": "Print the input."},
)


def test_parse_bundle():
    bundle = parse_bundle(json.loads(json.dumps(RAW)))
    assert bundle == EXPECTED
    assert isinstance(bundle.max_score, float)
    assert isinstance(bundle.tests, tuple)


def test_parse_bundle_defaults():
    raw = {
        "submission_id": "sub-2",
        "language": "python",
        "code": "",
        "tests": [{"name": "t", "stdin": "", "expected_stdout": ""}],
        "feedback": None,
    }
    bundle = parse_bundle(raw)
    assert bundle.time_limit_ms == 2000
    assert bundle.memory_limit_mb == 256
    assert bundle.max_score == 100.0
    assert bundle.feedback == {}
    assert bundle.assignment == {}
    assert bundle.tests == (
        Spec("t", "", "", hidden=False, weight=1.0, compare="lines", tolerance=1e-6),
    )


@pytest.fixture
def fake_redis(monkeypatch):
    """redis.Redis.from_url hands out clients of one shared in-memory server."""
    server = fakeredis.FakeServer()
    calls: list[tuple] = []

    def from_url(url, **kwargs):
        calls.append((url, kwargs))
        return fakeredis.FakeRedis(server=server)

    monkeypatch.setattr(redis.Redis, "from_url", from_url)
    return fakeredis.FakeRedis(server=server), calls


def test_load_bundle_round_trip(fake_redis):
    writer, calls = fake_redis
    writer.set("submission:sub-1", json.dumps(RAW))
    assert load_bundle("redis://redis:6379/0", "sub-1") == EXPECTED
    assert calls[0][0] == "redis://redis:6379/0"


def test_load_bundle_missing(fake_redis):
    writer, _ = fake_redis
    writer.set("submission:other", json.dumps(RAW))
    with pytest.raises(BundleMissing, match="sub-404"):
        load_bundle("redis://redis:6379/0", "sub-404")
