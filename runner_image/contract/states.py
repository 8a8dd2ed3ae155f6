"""Submission statuses, test verdicts and output comparisons: the words every part shares."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    GRADED = "graded"
    FAILED = "failed"
    ERROR = "error"


OPEN_STATUSES = (Status.QUEUED, Status.SCHEDULED, Status.RUNNING)
FINAL_STATUSES = (Status.GRADED, Status.FAILED, Status.ERROR)


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    WRONG_ANSWER = "wrong_answer"
    TIME_LIMIT_EXCEEDED = "time_limit_exceeded"
    MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
    OUTPUT_LIMIT_EXCEEDED = "output_limit_exceeded"
    RUNTIME_ERROR = "runtime_error"
    COMPILE_ERROR = "compile_error"
    SKIPPED = "skipped"
    INTERNAL_ERROR = "internal_error"


# Fail tags that execution alone decides, besides each failing verdict's own name: a compile
# error in an interpreted language, and a score between 0 and the maximum.
SYNTAX_ERROR_TAG = "syntax_error"
PARTIAL_TAG = "partial"


class ScoreState(StrEnum):
    """Whether a graded score may still change: `provisional` when a model's judgement
    weighs on it more than a little (a rubric weight above 0.3, or no tests at all) or the
    submission is suspected of talking to the model; the assignment's staff then confirm or
    override it, making it `final`. A score from the tests alone is final at once."""

    PROVISIONAL = "provisional"
    FINAL = "final"


class Compare(StrEnum):
    """How an io test's output is compared with the expected output."""

    LINES = "lines"
    EXACT = "exact"
    TOKENS = "tokens"
    FLOAT = "float"


class IsolationLevel(StrEnum):
    """How isolated a run of untrusted code is, ordered weakest first (the runner's
    RUNNER_REQUIRE_ISOLATION names the least it accepts):
    - basic: rlimits, a fresh working directory, a scrubbed environment, its own session;
    - strict: also no network and no way to touch the runner (own uid or seccomp): what a
      restricted Kubernetes pod can have;
    - namespaced: also fresh namespaces per run (mounts with private /tmp, PID, IPC, UTS,
      network, user), a uid of its own and seccomp: what a local runner as root reaches.
    """

    NONE = "none"
    BASIC = "basic"
    STRICT = "strict"
    NAMESPACED = "namespaced"

    @property
    def rank(self) -> int:
        return list(IsolationLevel).index(self)
