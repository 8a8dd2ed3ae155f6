"""Fixtures shared with tests/sandbox."""

from tests.grader_workdirs import workdirs  # noqa: F401
