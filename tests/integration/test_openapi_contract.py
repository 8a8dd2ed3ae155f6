"""schemathesis drives the live app (gunicorn, Redis, the Celery worker and runners of the
integration stack) from its own OpenAPI document: no server error and no response outside
the document, whatever it sends. Path ids are those of real objects, so that generated
bodies and queries reach the code behind the 404s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from cloudemy_dev.demo_data import DEMO_INSTRUCTOR
from cloudemy_dev.devstack import DevStack
from tests.integration.conftest import Api, register_student, signed_in
from tests.integration.test_pipeline import create_assignment, statuses_until_final

EXAMPLES_PER_OPERATION = 12
# Not run: schema-valid data may still be refused by rules that no JSON schema states (a
# language the runners lack, a deadline in the past, tests too slow for a runner: 422), as
# the document says. Responses outside the document and server errors are what is checked.


class Caller:
    """The instructor who owns `ids`' objects: the role that can reach every public call."""

    def __init__(self, api: Api, ids: dict[str, str]) -> None:
        self.api = api
        self.ids = ids


@pytest.fixture(scope="module")
def caller(stack: DevStack) -> Iterator[Caller]:
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    assignment = create_assignment(instructor)
    submitted = instructor.post(
        f"/api/assignments/{assignment['id']}/submissions", json={"code": "print(3)\n"}
    )
    assert submitted.status_code == 202, submitted.text
    statuses_until_final(instructor, submitted.json()["id"])
    # A course of its own, whose join code, title and members the generated calls change.
    course = instructor.post("/api/courses", json={"title": "Contract"}).json()
    member = register_student(stack)
    joined = member.post("/api/courses/join", json={"join_code": course["join_code"]})
    assert joined.status_code == 200, joined.text
    # The event stream of a final submission ends at once; an open one would stay open.
    yield Caller(
        instructor,
        {
            "assignment_id": assignment["id"],
            "submission_id": submitted.json()["id"],
            "course_id": course["id"],
            "user_id": member.get("/api/me").json()["id"],
        },
    )


# About 30 operations x EXAMPLES_PER_OPERATION calls, plus the stack's start when this is
# the first integration test: over the default 120 s on a loaded 2-core machine.
@pytest.mark.timeout(600)
def test_public_api_keeps_its_document(caller: Caller, stack: DevStack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.api_url}/api/openapi.json")
    headers = {"Authorization": caller.api.session.headers["Authorization"]}
    failures: dict[str, str] = {}
    for loaded in schema.get_all_operations():
        operation = loaded.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def keeps_its_document(case) -> None:
            for name in case.path_parameters or {}:
                case.path_parameters[name] = caller.ids[name]
            case.call_and_validate(
                base_url=stack.api_url,
                headers=headers,
                excluded_checks=[positive_data_acceptance],
                timeout=30,
            )

        try:
            keeps_its_document()
        except (Exception, BaseExceptionGroup) as exc:  # every operation is tried
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
