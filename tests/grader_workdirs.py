"""A fixture that records every working directory the grader creates, through the grader's
own `tempfile` name only (so nothing else in the process is affected)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from runner_image.grading import grader


@pytest.fixture
def workdirs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    created: list[Path] = []

    def recording_mkdtemp(*args, **kwargs):
        path = tempfile.mkdtemp(*args, **kwargs)
        created.append(Path(path))
        return path

    monkeypatch.setattr(grader, "tempfile", SimpleNamespace(mkdtemp=recording_mkdtemp))
    return created
