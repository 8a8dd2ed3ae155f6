"""Fixtures for the suites that run sandboxed programs for real: a fake Chat Completions
server per test, which the real openai client reaches over HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.grader_workdirs import workdirs  # noqa: F401
from tests.llm_fake_server import FakeChatServer, fake_chat_server


@pytest.fixture
def fake_llm() -> Iterator[FakeChatServer]:
    with fake_chat_server() as server:
        yield server
