"""GET /api/submissions/<id>/events: the current state first, every change as the
lifecycle publishes it, the end at a final state; the same visibility rules as a read;
a bounded number of streams per worker."""

from __future__ import annotations

import json

import pytest


def _event(chunk: bytes | str) -> tuple[str, dict | str | None]:
    """One Server-Sent Event from a chunk; a heartbeat as ("heartbeat", None)."""
    text = chunk.decode() if isinstance(chunk, bytes) else chunk
    if text.startswith(": heartbeat"):
        return "heartbeat", None
    name = data = None
    for line in text.strip().splitlines():
        field, _, value = line.partition(": ")
        if field == "event":
            name = value
        elif field == "data":
            data = json.loads(value)
    return name, data


def _open(client, submission_id: str, who):
    return client.get(
        f"/api/submissions/{submission_id}/events", headers=who.headers, buffered=False
    )


@pytest.fixture
def submission(submit, student, assignment):
    response = submit(student, assignment["id"])
    assert response.status_code == 202
    return response.get_json()


def test_a_follower_gets_the_state_then_each_change_then_the_end(
    client, student, submission, internal_post, result_body
):
    response = _open(client, submission["id"], student)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    stream = iter(response.response)
    try:
        name, first = _event(next(stream))
        assert (name, first["status"], first["id"]) == ("status", "queued", submission["id"])

        assert internal_post(submission["id"], "status", {"status": "running"}).status_code == 200
        name, running = _event(next(stream))
        assert (name, running["status"]) == ("status", "running")

        assert internal_post(submission["id"], "result", result_body()).status_code == 200
        name, graded = _event(next(stream))
        assert (name, graded["status"], graded["score"]) == ("status", "graded", 33.3)
        # What a student may see, as GET /api/submissions/<id> shows it: no hidden data.
        hidden = next(t for t in graded["tests"] if t["hidden"])
        assert "stdin" not in hidden and hidden["time_ms"] is None
        assert "instructor_tags" not in graded
        assert _event(next(stream)) == ("end", {"status": "graded"})
        with pytest.raises(StopIteration):
            next(stream)
    finally:
        response.close()


def test_a_late_follower_of_a_final_submission_gets_it_and_the_end(
    client, student, submission, internal_post, result_body
):
    internal_post(submission["id"], "result", result_body())

    response = _open(client, submission["id"], student)

    events = [_event(chunk) for chunk in response.response]
    assert [name for name, _ in events] == ["status", "end"]
    assert events[0][1]["status"] == "graded"


def test_the_instructor_follows_with_the_instructor_view(
    client, instructor, submission, internal_post, result_body
):
    internal_post(submission["id"], "result", result_body(instructor_tags=["suspected_injection"]))

    response = _open(client, submission["id"], instructor)

    (_, shown), _ = [_event(chunk) for chunk in response.response]
    assert shown["instructor_tags"] == ["suspected_injection"]


def test_nothing_happening_sends_heartbeats(make_app, settings_with, submit, student, assignment):
    client = make_app(settings=settings_with(event_stream_heartbeat_seconds=0.01)).test_client()
    submission = submit(student, assignment["id"]).get_json()

    response = _open(client, submission["id"], student)
    stream = iter(response.response)
    try:
        assert _event(next(stream))[0] == "status"
        assert _event(next(stream)) == ("heartbeat", None)
    finally:
        response.close()


def test_others_get_404_and_strangers_401(client, register, make_instructor, submission):
    for who in (register(), make_instructor()):
        assert _open(client, submission["id"], who).status_code == 404
    assert client.get(f"/api/submissions/{submission['id']}/events").status_code == 401


def test_streams_per_worker_are_bounded_and_given_back(
    make_app, settings_with, submit, student, assignment
):
    client = make_app(settings=settings_with(event_streams_per_worker=1)).test_client()
    submission = submit(student, assignment["id"]).get_json()

    first = _open(client, submission["id"], student)
    next(iter(first.response))
    refused = _open(client, submission["id"], student)
    assert refused.status_code == 503
    assert refused.get_json()["error"]["code"] == "too_many_streams"
    assert refused.headers["Retry-After"] == "5"

    first.close()
    again = _open(client, submission["id"], student)
    assert again.status_code == 200
    again.close()
