"""The contract between the three parts: what the webapp hands the runner (the bundle in
Redis), what the runner reports back (the result, through the internal API), the token that
authorises a report, and the statuses and verdicts they speak of.

It lives on the runner's side of the boundary because the runner image is the bottom of the
dependency chain (`webapp -> tasks -> runner_image`): the webapp and the scheduler import
these definitions, and nothing here imports them.
"""

from runner_image.contract.bundle import (
    AssignmentText,
    Bundle,
    BundleMissing,
    FeedbackSettings,
    TestCase,
    bundle_key,
    tag_key,
)
from runner_image.contract.internal_api import (
    UNREPORTED_EXIT_CODE,
    UNREPORTED_KEY,
    CallbackError,
    InternalApiClient,
)
from runner_image.contract.result import (
    ALL_TESTS_METRICS,
    STAFF_ONLY_METRICS,
    Result,
    TestResult,
)
from runner_image.contract.states import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    PARTIAL_TAG,
    SYNTAX_ERROR_TAG,
    Compare,
    IsolationLevel,
    ScoreState,
    Status,
    Verdict,
)
from runner_image.contract.tokens import (
    RESULT_TOKEN_HEADER,
    submission_token,
    sweep_token,
    token_matches,
    token_round,
)

__all__ = [
    "ALL_TESTS_METRICS",
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "PARTIAL_TAG",
    "RESULT_TOKEN_HEADER",
    "STAFF_ONLY_METRICS",
    "SYNTAX_ERROR_TAG",
    "UNREPORTED_EXIT_CODE",
    "UNREPORTED_KEY",
    "AssignmentText",
    "Bundle",
    "BundleMissing",
    "CallbackError",
    "Compare",
    "FeedbackSettings",
    "InternalApiClient",
    "IsolationLevel",
    "Result",
    "ScoreState",
    "Status",
    "TestCase",
    "TestResult",
    "Verdict",
    "bundle_key",
    "submission_token",
    "sweep_token",
    "tag_key",
    "token_matches",
    "token_round",
]
