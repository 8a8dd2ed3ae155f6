"""contract.Bundle: parsing the webapp's grading bundle, and main.load_bundle reading it from
Redis (a fakeredis client is passed in)."""

from __future__ import annotations

import importlib.metadata
import json
from types import SimpleNamespace

import fakeredis
import pytest
import redis
from pydantic import ValidationError

from runner_image import main
from runner_image.contract import (
    UNREPORTED_EXIT_CODE,
    AssignmentText,
    Bundle,
    BundleMissing,
    CallbackError,
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


def test_a_missing_bundle_is_not_graded(monkeypatch, runner_redis):
    monkeypatch.setattr(main, "build_result", lambda s, b: pytest.fail("nothing to grade"))

    with pytest.raises(BundleMissing):
        main._grade_submission(SETTINGS)


class _Backend:
    """main's InternalApiClient: records the reports, or fails them with `error`."""

    def __init__(self, error: CallbackError | None = None) -> None:
        self.error = error
        self.reports: list[str] = []

    def __call__(self, base_url: str, token: str, retries: int) -> _Backend:
        return self

    def post_status(self, submission_id: str, status: Status) -> None:
        self.reports.append(str(status))

    def post_result(self, submission_id: str, result: Result) -> None:
        if self.error is not None:
            raise self.error
        self.reports.append(str(result.status))

    def close(self) -> None:
        pass


@pytest.fixture
def run_with(monkeypatch):
    """main.run() with the test's backend and grading, in this process."""
    monkeypatch.setattr(main, "make_non_dumpable", lambda: None)
    monkeypatch.setattr(main.signal, "signal", lambda *args: None)
    monkeypatch.setattr(main.RunnerSettings, "take_from_environment", lambda: SETTINGS)

    def run(backend: _Backend, grade) -> int:
        monkeypatch.setattr(main, "InternalApiClient", backend)
        monkeypatch.setattr(main, "_grade_submission", grade)
        return main.run()

    return run


def _missing(settings):
    raise BundleMissing("no grading bundle for submission sub-1 in Redis")


def test_a_runner_without_a_bundle_reports_no_error_and_exits_for_a_fresh_runner(run_with):
    """Redis lost it (restarted without its append-only file): the backend's sweep rebuilds
    it from MongoDB and sends a fresh runner; an error would lose the submission."""
    backend = _Backend()

    assert run_with(backend, _missing) == UNREPORTED_EXIT_CODE
    assert backend.reports == ["running"]


def test_a_runner_that_cannot_reach_redis_reports_no_error(run_with):
    """Redis restarting: the bundle is still there, just not now."""
    backend = _Backend()

    def unreachable(settings):
        raise redis.exceptions.ConnectionError("Error 111 connecting to redis:6379")

    assert run_with(backend, unreachable) == UNREPORTED_EXIT_CODE
    assert backend.reports == ["running"]


def test_a_runner_that_cannot_reach_the_backend_exits_for_a_fresh_runner(run_with):
    backend = _Backend(CallbackError("POST ... failed: connection refused"))
    graded = Result(status=Status.GRADED, score=10.0, max_score=10.0)

    assert run_with(backend, lambda settings: graded) == UNREPORTED_EXIT_CODE


@pytest.mark.parametrize("status", [401, 404, 409, 413])
def test_a_runner_whose_report_is_refused_exits_1(run_with, status):
    """A refusal is an answer, not an outage: a fresh runner would be refused too."""
    backend = _Backend(CallbackError("POST ... -> refused", status_code=status))
    graded = Result(status=Status.GRADED, score=10.0, max_score=10.0)

    assert run_with(backend, lambda settings: graded) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_a_runner_whose_backend_keeps_failing_exits_for_a_fresh_runner(run_with, status):
    backend = _Backend(CallbackError("POST ... -> failing", status_code=status))
    graded = Result(status=Status.GRADED, score=10.0, max_score=10.0)

    assert run_with(backend, lambda settings: graded) == UNREPORTED_EXIT_CODE


def test_a_runner_that_reports_exits_0(run_with):
    backend = _Backend()
    graded = Result(status=Status.GRADED, score=10.0, max_score=10.0)

    assert run_with(backend, lambda settings: graded) == 0
    assert backend.reports == ["running", "graded"]


def test_the_bundle_store_client_reads_no_package_metadata_and_sends_no_client_info(
    monkeypatch,
):
    """redis-py looks its own version up in site-packages for every client made with driver
    info, and sends it (CLIENT SETINFO, two round trips) on connecting: a runner's client,
    for one GET, has none."""

    def walk_site_packages(name: str) -> str:
        raise AssertionError(f"package metadata of {name} read for a runner's client")

    monkeypatch.setattr(importlib.metadata, "version", walk_site_packages)
    client = main.bundle_store("redis://127.0.0.1:1/0")
    assert client.connection_pool.connection_kwargs["driver_info"] is None
