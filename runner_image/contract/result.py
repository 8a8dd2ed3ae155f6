"""The result a runner reports (POST /internal/submissions/<id>/result) and the backend
validates and stores. The bounds here are the backend's acceptance rules."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from runner_image.contract.states import Status, Verdict

# Metrics only the assignment's staff see, by the name students see their public-tests-only
# counterpart under.
STAFF_ONLY_METRICS = {"run_ms": "run_ms_all_tests", "max_rss_kb": "max_rss_kb_all_tests"}


class TestResult(BaseModel):
    """One test's row. `stdout` and `message` are clipped by the runner; hidden rows are
    stripped of them before a student sees the submission."""

    __test__ = False

    name: str
    verdict: Verdict
    score: float = 0.0
    max_score: float = 0.0
    time_ms: int | None = None
    memory_kb: int | None = None
    hidden: bool = False
    stdout: str | None = Field(default=None, max_length=256 * 1024)
    message: str | None = Field(default=None, max_length=64 * 1024)


class Result(BaseModel):
    status: Literal[Status.GRADED, Status.FAILED, Status.ERROR]
    verdict: Verdict | None = None
    score: float | None = Field(default=None, ge=0)
    max_score: float | None = Field(default=None, gt=0)
    fail_tags: list[str] = Field(default_factory=list, max_length=64)
    # Seen by the assignment's instructor only, e.g. `suspected_injection`.
    instructor_tags: list[str] = Field(default_factory=list, max_length=16)
    feedback: str = Field(default="", max_length=256 * 1024)
    tests: list[TestResult] = Field(default_factory=list, max_length=500)
    metrics: dict[str, Any] = Field(default_factory=dict)
    # The grading round this result is for (0: the submission's first grading; one more per
    # regrade). It must be the round the reporting token is scoped to.
    round: int = Field(default=0, ge=0)

    @classmethod
    def error(cls, reason: str, grading_round: int = 0) -> Result:
        """A submission the platform could not judge: nothing is the student's fault."""
        return cls(
            round=grading_round,
            status=Status.ERROR,
            verdict=Verdict.INTERNAL_ERROR,
            feedback=f"Your submission could not be graded: {reason}. It does not count "
            "against you; please submit again or tell your instructor.",
            metrics={"error": reason},
        )
