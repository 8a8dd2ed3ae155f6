"""The grading bundle the webapp leaves in Redis under `submission:<id>`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis

BUNDLE_KEY = "submission:{id}"


class BundleMissing(RuntimeError):
    """The bundle expired or was never written: the submission cannot be graded."""


@dataclass(frozen=True)
class TestSpec:
    """An `io` test (stdin in, stdout compared) or, when `call` is set, a Python `call` test
    whose returned value is compared with `expected`."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    stdin: str = ""
    expected_stdout: str = ""
    call: str | None = None
    expected: Any = None
    hidden: bool = False
    weight: float = 1.0
    compare: str = "lines"
    tolerance: float = 1e-6


@dataclass(frozen=True)
class Bundle:
    submission_id: str
    language: str
    code: str
    tests: tuple[TestSpec, ...]
    time_limit_ms: int = 2000
    memory_limit_mb: int = 256
    max_score: float = 100.0
    feedback: dict[str, Any] = field(default_factory=dict)
    assignment: dict[str, Any] = field(default_factory=dict)


def parse_bundle(raw: dict[str, Any]) -> Bundle:
    return Bundle(
        submission_id=raw["submission_id"],
        language=raw["language"],
        code=raw["code"],
        tests=tuple(TestSpec(**t) for t in raw["tests"]),
        time_limit_ms=int(raw.get("time_limit_ms", 2000)),
        memory_limit_mb=int(raw.get("memory_limit_mb", 256)),
        max_score=float(raw.get("max_score", 100.0)),
        feedback=dict(raw.get("feedback") or {}),
        assignment=dict(raw.get("assignment") or {}),
    )


def load_bundle(redis_url: str, submission_id: str) -> Bundle:
    client = redis.Redis.from_url(redis_url, socket_timeout=10, socket_connect_timeout=5)
    try:
        raw = client.get(BUNDLE_KEY.format(id=submission_id))
    finally:
        client.close()
    if raw is None:
        raise BundleMissing(f"no grading bundle for submission {submission_id} in Redis")
    return parse_bundle(json.loads(raw))
