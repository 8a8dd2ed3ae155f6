"""The real chain: a private redis-server, the webapp under gunicorn, a Celery worker
process, the local launcher and runner processes, all driven over HTTP."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import pytest
import requests

from cloudemy_dev.demo_data import DEMO_INSTRUCTOR
from cloudemy_dev.devstack import DevStack, dev_stack

BURST_LIMITS = {
    "RATE_LIMIT_LOGIN": "1000/minute",
    "RATE_LIMIT_REGISTER": "1000/minute",
    "RATE_LIMIT_JOIN": "1000/minute",
}


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[DevStack]:
    if shutil.which("redis-server") is None:
        pytest.fail(
            "redis-server is required for the integration tests (apt-get install redis-server)"
        )
    log_dir = tmp_path_factory.mktemp("stack-logs")
    with dev_stack(
        extra_env={
            "MONGO_URI": "mongomock://localhost",
            "DB_NAME": "integration",
            # Every test registers and signs in from 127.0.0.1: a burst no class would send
            # from one address. The limits themselves are tested in tests/unit/webapp.
            **BURST_LIMITS,
        },
        log_dir=log_dir,
    ) as running:
        yield running


class Api:
    """A signed-in user of the REST API."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, f"{self.base_url}{path}", timeout=15, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)


def signed_in(stack: DevStack, email: str, password: str) -> Api:
    response = requests.post(
        f"{stack.api_url}/api/auth/login", json={"email": email, "password": password}, timeout=15
    )
    assert response.status_code == 200, response.text
    return Api(stack.api_url, response.json()["access_token"])


def demo_class_join_code(stack: DevStack) -> str:
    """The join code of the demo instructor's default course, where the assignments these
    tests post without a `course_id` go."""
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    courses = instructor.get("/api/courses").json()["items"]
    return next(course["join_code"] for course in courses if course["is_default"])


def register_student(stack: DevStack) -> Api:
    """A new student account, registered and signed in over the public API, enrolled in the
    demo instructor's default course with its join code."""
    email = f"student-{uuid.uuid4().hex[:8]}@example.org"
    response = requests.post(
        f"{stack.api_url}/api/auth/register",
        json={"email": email, "password": "correct horse", "name": "Test Student"},
        timeout=15,
    )
    assert response.status_code == 201, response.text
    student = signed_in(stack, email, "correct horse")
    joined = student.post("/api/courses/join", json={"join_code": demo_class_join_code(stack)})
    assert joined.status_code == 200, joined.text
    return student


@pytest.fixture
def new_student(stack: DevStack):
    return lambda: register_student(stack)
