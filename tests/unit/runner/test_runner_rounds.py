"""Grading rounds on the runner's side of the contract: the round-scoped token (round 0's
unchanged from before rounds), the round in the bundle's key and body, and the round the
runner puts in its result."""

from __future__ import annotations

import hashlib
import hmac
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
from pydantic import ValidationError

from runner_image import main
from runner_image.contract import (
    UNREPORTED_EXIT_CODE,
    Bundle,
    BundleMissing,
    Result,
    Status,
    TestCase,
    bundle_key,
    submission_token,
    token_round,
)
from runner_image.settings import RunnerSettings

SECRET = "s" * 40
SUBMISSION_ID = "65a0000000000000000000aa"


def _hmac(scope: str) -> str:
    return hmac.new(SECRET.encode(), scope.encode(), hashlib.sha256).hexdigest()


# --- tokens -------------------------------------------------------------------------------


def test_round_0_token_is_the_one_from_before_rounds():
    """Runners launched before an upgrade hold this token; it must keep opening round 0."""
    assert submission_token(SECRET, SUBMISSION_ID) == _hmac(f"result:{SUBMISSION_ID}")
    assert submission_token(SECRET, SUBMISSION_ID, 0) == _hmac(f"result:{SUBMISSION_ID}")


def test_each_round_has_a_token_of_its_own():
    tokens = [submission_token(SECRET, SUBMISSION_ID, n) for n in range(5)]

    assert len(set(tokens)) == 5
    assert tokens[2] == _hmac(f"result:{SUBMISSION_ID}:2")
    # Nor is any of them another submission's token.
    assert submission_token(SECRET, "65a0000000000000000000bb", 2) not in tokens


def test_a_negative_round_has_no_token():
    with pytest.raises(ValueError):
        submission_token(SECRET, SUBMISSION_ID, -1)


@pytest.mark.parametrize("presented_round", [0, 1, 3])
def test_token_round_names_the_round_a_token_is_of(presented_round):
    presented = submission_token(SECRET, SUBMISSION_ID, presented_round)

    assert token_round(SECRET, SUBMISSION_ID, presented, current_round=3) == presented_round


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        "wrong",
        submission_token(SECRET, SUBMISSION_ID, 4),  # a round not started yet
        submission_token(SECRET, "65a0000000000000000000bb", 1),  # another submission's
        submission_token("another secret of 32 characters!", SUBMISSION_ID, 1),
    ],
)
def test_token_round_is_none_for_a_token_of_no_round_so_far(presented):
    assert token_round(SECRET, SUBMISSION_ID, presented, current_round=3) is None


# --- result and bundle --------------------------------------------------------------------


def test_a_result_is_round_0_unless_it_says_otherwise():
    assert Result(status=Status.GRADED).round == 0
    assert Result.error("boom").round == 0
    assert Result.error("boom", 3).round == 3
    with pytest.raises(ValidationError):
        Result(status=Status.GRADED, round=-1)


def test_round_0_keeps_the_seed_bundle_key_and_regrades_have_their_own():
    assert bundle_key(SUBMISSION_ID) == f"submission:{SUBMISSION_ID}"
    assert bundle_key(SUBMISSION_ID, 0) == f"submission:{SUBMISSION_ID}"
    assert bundle_key(SUBMISSION_ID, 2) == f"submission:{SUBMISSION_ID}:r2"


def _bundle(grading_round: int, submission_id: str = SUBMISSION_ID) -> Bundle:
    return Bundle(
        submission_id=submission_id,
        language="python",
        code="print(1)\n",
        tests=(TestCase(name="t", expected_stdout="1\n"),),
        round=grading_round,
    )


def test_a_bundle_without_a_round_is_round_0():
    raw = _bundle(0).model_dump(mode="json")
    del raw["round"]

    assert Bundle.model_validate(raw).round == 0


def test_load_bundle_reads_its_rounds_key_only():
    store = fakeredis.FakeRedis()
    store.set(bundle_key(SUBMISSION_ID), _bundle(0).model_dump_json())
    store.set(bundle_key(SUBMISSION_ID, 2), _bundle(2).model_dump_json())

    assert main.load_bundle(store, SUBMISSION_ID, 2) == _bundle(2)
    assert main.load_bundle(store, SUBMISSION_ID) == _bundle(0)
    with pytest.raises(BundleMissing, match="round 1"):
        main.load_bundle(store, SUBMISSION_ID, 1)


def test_load_bundle_refuses_a_bundle_of_another_round_or_submission():
    store = fakeredis.FakeRedis()
    store.set(bundle_key(SUBMISSION_ID, 2), _bundle(1).model_dump_json())
    store.set(
        bundle_key(SUBMISSION_ID, 3), _bundle(3, "65a0000000000000000000bb").model_dump_json()
    )

    with pytest.raises(ValueError, match="round 1"):
        main.load_bundle(store, SUBMISSION_ID, 2)
    with pytest.raises(ValueError, match="65a0000000000000000000bb"):
        main.load_bundle(store, SUBMISSION_ID, 3)


# --- the runner process -------------------------------------------------------------------


class _RecordingClient:
    posts: list[tuple[str, Any]] = []

    def __init__(self, base_url: str, token: str, retries: int = 2) -> None:
        self.token = token

    def post_status(self, submission_id: str, status: Status) -> dict:
        self.posts.append(("status", (submission_id, status, self.token)))
        return {}

    def post_result(self, submission_id: str, result: Result) -> dict:
        self.posts.append(("result", (submission_id, result, self.token)))
        return {}

    def close(self) -> None:
        pass


@pytest.fixture
def runner_env(monkeypatch: pytest.MonkeyPatch):
    """main.run with the environment a launcher gives, its reports recorded."""
    _RecordingClient.posts = []
    monkeypatch.setattr(main, "InternalApiClient", _RecordingClient)
    monkeypatch.setattr(main, "make_non_dumpable", lambda: None)
    monkeypatch.setattr(main, "signal", SimpleNamespace(signal=lambda *a: None, SIGTERM=15))
    monkeypatch.setattr(main.logging, "basicConfig", lambda **kwargs: None)
    for name, value in {
        "SUBMISSION_ID": SUBMISSION_ID,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "BACKEND_INTERNAL_URL": "http://backend:8000/internal",
        "INTERNAL_RESULT_TOKEN": "token-of-round-2",
    }.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_the_runner_reports_the_round_it_was_launched_for(runner_env):
    runner_env.setenv("GRADING_ROUND", "2")
    graded = Result(status=Status.GRADED, score=1.0, max_score=1.0)
    seen: list[RunnerSettings] = []
    runner_env.setattr(main, "_grade_submission", lambda s: seen.append(s) or graded)

    assert main.run() == 0

    assert seen[0].grading_round == 2
    ((_, status), (_, (submission_id, result, token))) = _RecordingClient.posts
    assert status == (SUBMISSION_ID, Status.RUNNING, "token-of-round-2")
    assert submission_id == SUBMISSION_ID and token == "token-of-round-2"
    assert result.round == 2
    assert result.model_copy(update={"round": 0}) == graded


def test_a_runner_without_a_round_grades_round_0(runner_env):
    runner_env.delenv("GRADING_ROUND", raising=False)
    runner_env.setattr(main, "_grade_submission", lambda s: Result.error("no bundle"))

    assert main.run() == 0

    (_, (_, (_, result, _))) = _RecordingClient.posts
    assert result.round == 0


def test_a_regrade_round_without_its_bundle_is_left_to_the_sweep(runner_env):
    """No bundle for the round (Redis lost it): no error result, which would end the round
    for the platform's fault; exit 75, and the backend's sweep rebuilds the bundle and
    sends a fresh runner for that round."""
    runner_env.setenv("GRADING_ROUND", "5")
    store = fakeredis.FakeRedis()
    runner_env.setattr(
        main, "redis", SimpleNamespace(Redis=SimpleNamespace(from_url=lambda *a, **k: store))
    )

    assert main.run() == UNREPORTED_EXIT_CODE

    assert [name for name, _ in _RecordingClient.posts] == ["status"]
