"""The result a runner reports (POST /internal/submissions/<id>/result) and the backend
validates and stores. The bounds here are the backend's acceptance rules."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from runner_image.contract.states import ScoreState, Status, Verdict

# Figures students see over the public tests only, each with the name of its figure over all
# tests (hidden ones included), which staff alone see.
ALL_TESTS_METRICS = {"run_ms": "run_ms_all_tests", "max_rss_kb": "max_rss_kb_all_tests"}


# Every `metrics` key only the assignment's staff may see, each listed once: a student sees
# the other keys. Hidden tests' figures could spell out their inputs; the LLM's diagnostics
# say how the model misbehaved (what was filtered, which tags were dropped and why), which
# would teach a student how to steer it.
STAFF_ONLY_METRICS = frozenset(
    {
        *ALL_TESTS_METRICS.values(),
        "llm_detail",
        "llm_discarded_reason",
        "llm_tags_dropped",
        "llm_dropped_tags",
        "llm_explanations_dropped",
    }
)


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
    """`score` is `tests_score + rubric_score` (each counted as 0 when null): the tests' part
    is final, the rubric's part is the model's and, when `score_state` is `provisional`,
    waits for the staff's review (docs/llm.md gives the formula)."""

    status: Literal[Status.GRADED, Status.FAILED, Status.ERROR]
    verdict: Verdict | None = None
    score: float | None = Field(default=None, ge=0)
    max_score: float | None = Field(default=None, gt=0)
    # The tests' part of `score` (null: the assignment has no tests, or nothing was judged).
    tests_score: float | None = Field(default=None, ge=0)
    # The rubric's part of `score` (null: the rubric gives nothing, no weight or no review).
    rubric_score: float | None = Field(default=None, ge=0)
    score_state: ScoreState = ScoreState.FINAL
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
