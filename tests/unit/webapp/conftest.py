"""Fixtures for the webapp unit tests: the real app factory, given its services explicitly:
a mongomock database (the dev stand-in, cloudemy_dev.embedded), fakeredis, and a recorder in
place of the Celery producer, so nothing leaves the process.

Every test that uses the database runs twice: on mongomock, and on a real MongoDB when
MONGO_TEST_URI names one (a fresh database per test, dropped after it), so that what the
stand-in accepts and MongoDB refuses (index builds, atomic updates, aggregations) is caught
wherever a MongoDB exists. Without MONGO_TEST_URI the second runs are skipped, and the end
of the run says so (docs/deploy.md, "Testing against a real MongoDB")."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import mongoengine
import pytest
from argon2 import PasswordHasher
from bson import ObjectId
from flask import Flask
from flask.testing import FlaskClient
from pymongo.database import Database
from werkzeug.routing import Rule

import webapp.security
from cloudemy_dev.embedded import connect_embedded_mongo
from runner_image.contract import RESULT_TOKEN_HEADER, submission_token
from webapp.app import create_app
from webapp.blueprints.accounts import create_user
from webapp.courses import enrol
from webapp.models import Course, User
from webapp.services import Services, connect_mongo
from webapp.settings import WebappSettings

RESULT_SECRET = "t" * 32
SECRET_KEY = "s" * 32
PASSWORD = "correct horse battery"


@dataclass
class RecordingCelery:
    """Stands in for the Celery producer: records `send_task` calls, or raises `error`."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None

    def send_task(
        self,
        name: str,
        args: Any = None,
        kwargs: dict[str, Any] | None = None,
        queue: str | None = None,
        **options: Any,
    ) -> None:
        if self.error is not None:
            raise self.error
        self.calls.append(
            {"name": name, "args": args, "kwargs": kwargs, "queue": queue, "options": options}
        )


def _builder_key(rule: Rule, append_unknown: bool) -> tuple[Any, ...]:
    """Everything werkzeug's generated URL builder is made from (its converters' settings
    but the map they belong to, which is each app's own)."""
    converters = tuple(
        (name, type(c), tuple((k, repr(v)) for k, v in sorted(vars(c).items()) if k != "map"))
        for name, c in sorted(rule._converters.items())
    )
    defaults = tuple((k, repr(v)) for k, v in sorted((rule.defaults or {}).items()))
    return (rule.rule, tuple(rule._trace), defaults, converters, append_unknown)


@pytest.fixture(autouse=True, scope="session")
def _route_builders_compiled_once() -> Iterator[None]:
    """Every test builds its own app, and werkzeug compiles two URL builders (Python source,
    through `compile`) for each of its routes: about 80 % of `create_app`'s time, and 11 s of
    the unit suite's 69 (on a slow afternoon here). A builder is made only from what
    `_builder_key` holds and reads its rule through the `self` it is bound to when called, so
    one per distinct rule serves every app."""
    werkzeug_compile_builder = Rule._compile_builder
    builders: dict[tuple[Any, ...], Any] = {}

    def compiled_once(rule: Rule, append_unknown: bool = True) -> Any:
        key = _builder_key(rule, append_unknown)
        if key not in builders:
            builders[key] = werkzeug_compile_builder(rule, append_unknown)
        return builders[key]

    compiled_once.__wrapped__ = werkzeug_compile_builder  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Rule, "_compile_builder", compiled_once)
        yield


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id with minimal costs: the same code path, without ~100 ms per hash."""
    monkeypatch.setattr(
        webapp.security, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


def make_settings(**overrides: Any) -> WebappSettings:
    """Valid settings read from an empty environment; a fresh database name each time."""
    values: dict[str, Any] = {
        "mongo_uri": "mongomock://localhost",
        "db_name": f"test_{uuid.uuid4().hex}",
        "internal_result_token": RESULT_SECRET,
        "secret_key": SECRET_KEY,
        "redis_url": "redis://127.0.0.1:1/0",
        # fakeredis is not a server the limits library can reach; counts stay in-process.
        "rate_limit_storage_uri": "memory://",
    }
    values.update(overrides)
    return WebappSettings.from_env({}, **values)


MONGO_TEST_URI = os.environ.get("MONGO_TEST_URI", "").strip()
NO_REAL_MONGODB = "MONGO_TEST_URI is not set: these tests ran on mongomock only"
MONGO_BACKENDS = [
    "mongomock",
    pytest.param("mongodb", marks=pytest.mark.skipif(not MONGO_TEST_URI, reason=NO_REAL_MONGODB)),
]


@pytest.fixture(params=MONGO_BACKENDS)
def settings(request: pytest.FixtureRequest) -> WebappSettings:
    if request.param == "mongodb":
        return make_settings(mongo_uri=MONGO_TEST_URI)
    return make_settings()


@pytest.fixture
def settings_with(settings: WebappSettings) -> Callable[..., WebappSettings]:
    """The test's settings with some values changed (same database), validated like any
    other settings; give them to `make_app`."""
    return lambda **changes: WebappSettings.from_env({}, **(settings.model_dump() | changes))


@pytest.fixture
def database(settings: WebappSettings) -> Iterator[Database]:
    """mongoengine's default connection, on a database of the test's own: in-process
    (mongomock), or on the real MongoDB of MONGO_TEST_URI, dropped afterwards."""
    if settings.mongo_uri.startswith("mongomock://"):
        yield connect_embedded_mongo(settings)
        mongoengine.disconnect()
        return
    database = connect_mongo(settings)
    try:
        yield database
    finally:
        database.client.drop_database(settings.db_name)
        mongoengine.disconnect()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not MONGO_TEST_URI:
        terminalreporter.write_sep(
            "!",
            "the API and lifecycle tests did NOT run against a real MongoDB: set "
            "MONGO_TEST_URI (docs/deploy.md)",
            yellow=True,
            bold=True,
        )


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def celery() -> RecordingCelery:
    return RecordingCelery()


@pytest.fixture
def make_app(
    settings: WebappSettings,
    database: Database,
    fake_redis: fakeredis.FakeRedis,
    celery: RecordingCelery,
) -> Callable[..., Flask]:
    """The production factory with the test's services; any of them (or the settings) may
    be replaced, e.g. by a Redis that is down. Every app built here shares one database."""

    def _make(
        settings: WebappSettings = settings,
        database: Any = database,
        redis: Any = fake_redis,
        celery: Any = celery,
    ) -> Flask:
        return create_app(
            settings, services=Services(database=database, redis=redis, celery=celery)
        )

    return _make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _login(client: FlaskClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


@pytest.fixture
def login(client: FlaskClient) -> Callable[..., dict[str, str]]:
    """Log in through the API; returns the Authorization header."""
    return lambda email, password=PASSWORD: _login(client, email, password)


@dataclass
class Account:
    id: str
    email: str
    headers: dict[str, str]


@pytest.fixture
def register_outsider(client: FlaskClient) -> Callable[..., Account]:
    """Register an account through the API and log in; enrolled in nothing."""

    def _register(email: str | None = None, name: str = "Student") -> Account:
        email = email or f"student-{uuid.uuid4().hex[:8]}@example.com"
        response = client.post(
            "/api/auth/register", json={"email": email, "password": PASSWORD, "name": name}
        )
        assert response.status_code == 201, response.get_json()
        return Account(response.get_json()["id"], email, _login(client, email))

    return _register


def _enrol_everywhere(app: Flask, student_ids: list[str] | None = None) -> None:
    """One class: students in every course (tests/unit/webapp/test_api_courses.py covers
    the separation of courses, with `register_outsider`)."""
    with app.app_context():
        students = student_ids or [str(u.id) for u in User.objects(role="student")]
        for course in Course.objects():
            for student_id in students:
                enrol(course.id, ObjectId(student_id))


@pytest.fixture
def register(app: Flask, register_outsider: Callable[..., Account]) -> Callable[..., Account]:
    """Register a student through the API, log in, and enrol them in every course so far
    (and `create_assignment` enrols every student in the assignment's course)."""

    def _register(email: str | None = None, name: str = "Student") -> Account:
        account = register_outsider(email, name)
        _enrol_everywhere(app, [account.id])
        return account

    return _register


@pytest.fixture
def make_instructor(app: Flask, client: FlaskClient) -> Callable[..., Account]:
    """Create an instructor the way an operator does (create_user), then log in."""

    def _make(email: str | None = None) -> Account:
        email = email or f"teacher-{uuid.uuid4().hex[:8]}@example.com"
        with app.app_context():
            user = create_user(email, "Teacher", PASSWORD, role="instructor")
        return Account(str(user.id), email, _login(client, email))

    return _make


@pytest.fixture
def student(register: Callable[..., Account]) -> Account:
    return register()


@pytest.fixture
def instructor(make_instructor: Callable[..., Account]) -> Account:
    return make_instructor()


def _assignment_body(**overrides: Any) -> dict[str, Any]:
    """A valid assignment: one public and one hidden test, a rubric only the owner may see."""
    body: dict[str, Any] = {
        "title": "Sum two numbers",
        "description": "Read two integers, print their sum.",
        "language": "python",
        "starter_code": "a, b = map(int, input().split())\n",
        "tests": [
            {"name": "public", "stdin": "1 2\n", "expected_stdout": "3\n"},
            {
                "name": "secret",
                "stdin": "40 2\n",
                "expected_stdout": "42\n",
                "hidden": True,
                "weight": 2,
            },
        ],
        "feedback": {"llm": False, "rubric": "Use clear names.", "rubric_weight": 0.1},
    }
    body.update(overrides)
    return body


@pytest.fixture
def assignment_body() -> Callable[..., dict[str, Any]]:
    return _assignment_body


@pytest.fixture
def create_assignment(app: Flask, client: FlaskClient) -> Callable[..., dict[str, Any]]:
    def _create(owner: Account, **overrides: Any) -> dict[str, Any]:
        response = client.post(
            "/api/assignments", json=_assignment_body(**overrides), headers=owner.headers
        )
        assert response.status_code == 201, response.get_json()
        _enrol_everywhere(app)
        return response.get_json()

    return _create


@pytest.fixture
def assignment(
    create_assignment: Callable[..., dict[str, Any]], instructor: Account
) -> dict[str, Any]:
    return create_assignment(instructor)


GOOD_CODE = "a, b = map(int, input().split())\nprint(a + b)\n"


@pytest.fixture
def submit(client: FlaskClient) -> Callable[..., Any]:
    def _submit(who: Account, assignment_id: str, code: str = GOOD_CODE, **extra: Any):
        return client.post(
            f"/api/assignments/{assignment_id}/submissions",
            json={"code": code, **extra},
            headers=who.headers,
        )

    return _submit


@pytest.fixture
def secret(settings: WebappSettings) -> str:
    """The server's INTERNAL_RESULT_TOKEN, which signs every scoped internal token."""
    return settings.internal_result_token.get_secret_value()


@pytest.fixture
def internal_post(client: FlaskClient, secret: str) -> Callable[..., Any]:
    """POST to /internal/submissions/<id>/<what> with that submission's own result token."""

    def _post(submission_id: str, what: str, body: Any, token: str | None = None):
        if token is None:
            token = submission_token(secret, submission_id)
        return client.post(
            f"/internal/submissions/{submission_id}/{what}",
            json=body,
            headers={RESULT_TOKEN_HEADER: token},
        )

    return _post


def graded_result(**overrides: Any) -> dict[str, Any]:
    """What a runner reports for the fixture assignment: the public test passes, the hidden
    one fails."""
    result: dict[str, Any] = {
        "status": "graded",
        "verdict": "wrong_answer",
        "score": 33.3,
        "max_score": 100,
        "fail_tags": ["wrong_answer", "partial"],
        "feedback": "Check the large inputs.",
        "tests": [
            {
                "name": "public",
                "verdict": "accepted",
                "score": 33.3,
                "max_score": 33.3,
                "time_ms": 12,
                "stdout": "3\n",
            },
            {
                "name": "secret",
                "verdict": "wrong_answer",
                "score": 0,
                "max_score": 66.7,
                "time_ms": 11,
                "memory_kb": 5120,
                "hidden": True,
                "stdout": "41\n",
                "message": "expected 42",
            },
        ],
        "metrics": {
            "tests_passed": 1,
            "tests_total": 2,
            "run_ms": 12,
            "max_rss_kb": 4000,
            "run_ms_all_tests": 23,
            "max_rss_kb_all_tests": 5120,
        },
    }
    result.update(overrides)
    return result


@pytest.fixture
def result_body() -> Callable[..., dict[str, Any]]:
    return graded_result
