"""contract.Bundle: parsing the webapp's grading bundle, and main.load_bundle reading it from
Redis (a fakeredis client is passed in)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import fakeredis
import pytest
from pydantic import ValidationError

from runner_image import main
from runner_image.contract import (
    AssignmentText,
    Bundle,
    BundleMissing,
    Compare,
    FeedbackSettings,
    Result,
    Status,
    TestCase,
    bundle_key,
)
from runner_image.main import load_bundle
from runner_image.settings import RunnerSettings

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
    assignment_id="asg-1",
    language="python",
    code="print(input())\n",
    tests=(
        TestCase(
            name="public",
            stdin="hi\n",
            expected_stdout="hi\n",
            hidden=False,
            weight=1.0,
            compare=Compare.LINES,
            tolerance=1e-6,
        ),
        TestCase(
            name="hidden",
            stdin="1.5\n",
            expected_stdout="1.5\n",
            hidden=True,
            weight=2.5,
            compare=Compare.FLOAT,
            tolerance=0.01,
        ),
    ),
    time_limit_ms=1500,
    memory_limit_mb=128,
    max_score=10.0,
    feedback=FeedbackSettings(llm=True, rubric="be kind", rubric_weight=0.2),
    assignment=AssignmentText(title="Echo", description="Print the input."),
)


def test_parse_bundle():
    bundle = Bundle.model_validate(json.loads(json.dumps(RAW)))
    assert bundle == EXPECTED
    assert isinstance(bundle.max_score, float)
    assert isinstance(bundle.tests, tuple)
    assert Bundle.model_validate_json(json.dumps(RAW)) == EXPECTED


def test_parse_bundle_defaults():
    raw = {
        "submission_id": "sub-2",
        "language": "python",
        "code": "",
        "tests": [{"name": "t", "stdin": "", "expected_stdout": ""}],
    }
    bundle = Bundle.model_validate(raw)
    assert bundle.assignment_id == ""
    assert bundle.time_limit_ms == 2000
    assert bundle.memory_limit_mb == 256
    assert bundle.max_score == 100.0
    assert bundle.feedback == FeedbackSettings()
    assert bundle.assignment == AssignmentText()
    assert bundle.tests == (
        TestCase(
            name="t",
            stdin="",
            expected_stdout="",
            hidden=False,
            weight=1.0,
            compare=Compare.LINES,
            tolerance=1e-6,
        ),
    )


def test_a_bundle_round_trips_through_its_json():
    """What the webapp writes (model_dump_json) is what the runner reads back."""
    assert Bundle.model_validate_json(EXPECTED.model_dump_json()) == EXPECTED


@pytest.fixture
def store() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def test_load_bundle_round_trip(store):
    store.set(bundle_key("sub-1"), json.dumps(RAW))
    assert bundle_key("sub-1") == "submission:sub-1"
    assert load_bundle(store, "sub-1") == EXPECTED


def test_load_bundle_missing(store):
    store.set(bundle_key("other"), json.dumps(RAW))
    with pytest.raises(BundleMissing, match="sub-404"):
        load_bundle(store, "sub-404")


def test_load_bundle_refuses_a_bundle_that_breaks_the_contract(store):
    store.set(bundle_key("sub-1"), json.dumps({**RAW, "tests": [{"stdin": "no name"}]}))
    with pytest.raises(ValidationError):
        load_bundle(store, "sub-1")


# --- the runner's Redis connection ---------------------------------------------------------
# main._grade_submission makes its own client from REDIS_URL (it has no client parameter), so
# these tests replace main's own `redis` name, never the redis library.


@pytest.fixture
def runner_redis(monkeypatch, store):
    """main's Redis connections: each (url, options) opened, answered by `store`."""
    opened: list[tuple[str, dict]] = []

    def from_url(url, **options):
        opened.append((url, options))
        return store

    monkeypatch.setattr(main, "redis", SimpleNamespace(Redis=SimpleNamespace(from_url=from_url)))
    return opened


SETTINGS = RunnerSettings.from_env(
    {
        "SUBMISSION_ID": "sub-1",
        "REDIS_URL": "redis://redis:6379/0",
        "BACKEND_INTERNAL_URL": "http://backend:8000/internal",
        "INTERNAL_RESULT_TOKEN": "token-abc",
    }
)


def test_the_runner_reads_its_bundle_from_redis_url(monkeypatch, store, runner_redis):
    store.set(bundle_key("sub-1"), json.dumps(RAW))
    graded = Result(status=Status.GRADED, score=10.0, max_score=10.0)
    seen = []
    monkeypatch.setattr(main, "build_result", lambda s, b: seen.append((s, b)) or graded)

    assert main._grade_submission(SETTINGS) is graded
    assert [url for url, _ in runner_redis] == ["redis://redis:6379/0"]
    assert runner_redis[0][1]["socket_timeout"] > 0
    assert seen == [(SETTINGS, EXPECTED)]


def test_an_expired_bundle_is_an_error_result_not_a_crash(monkeypatch, runner_redis):
    monkeypatch.setattr(main, "build_result", lambda s, b: pytest.fail("nothing to grade"))
    result = main._grade_submission(SETTINGS)
    assert result.status == "error"
    assert result.verdict == "internal_error"
    assert "expired" in result.metrics["error"]
