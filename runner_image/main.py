"""The runner process: load the bundle, mark running, grade, report. One submission per run."""

from __future__ import annotations

import ctypes
import logging
import signal
import sys
from dataclasses import replace

import redis
from redis.exceptions import RedisError

from runner_image.contract import (
    UNREPORTED_EXIT_CODE,
    Bundle,
    BundleMissing,
    CallbackError,
    InternalApiClient,
    Result,
    Status,
    bundle_key,
)
from runner_image.grading.grader import grade
from runner_image.review.reviewer import review
from runner_image.sandbox.isolation import (
    IsolationUnavailable,
    probe_isolation,
    require_level,
    secrets_readable,
)
from runner_image.settings import ConfigError, RunnerSettings

log = logging.getLogger("runner")

PR_SET_DUMPABLE = 4


# What warm_up reads: placeholders, never a runner's values (the fork server has none).
PLACEHOLDER_ENV = {
    "SUBMISSION_ID": "placeholder",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "BACKEND_INTERNAL_URL": "http://127.0.0.1:1/internal",
    "INTERNAL_RESULT_TOKEN": "placeholder",
}


def warm_up() -> None:
    """Do once, in the fork server, the work every runner would otherwise repeat on first
    use: pydantic-settings' lookups of the settings' fields, and requests' preparation of a
    callback. The runners it forks inherit it: about 4 ms of CPU less each, out of 13 for
    both (measured in forked children). Nothing is sent."""
    settings = RunnerSettings.from_env(PLACEHOLDER_ENV)
    client = InternalApiClient(
        settings.backend_internal_url, settings.internal_result_token.get_secret_value()
    )
    try:
        client.prepare_post(f"/submissions/{settings.submission_id}/status", {})
    finally:
        client.close()


def make_non_dumpable() -> None:
    """A same-uid process can then read neither our memory nor /proc/<pid>/environ."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("could not clear the dumpable flag (errno %d)", ctypes.get_errno())


def bundle_store(redis_url: str) -> redis.Redis:
    """For one GET. Without driver info: no CLIENT SETINFO on connecting (two round trips
    for a connection this short), and redis-py 7.2+ does not walk site-packages for its own
    version, as it does for each client made without it."""
    return redis.Redis.from_url(
        redis_url, socket_timeout=10, socket_connect_timeout=5, driver_info=None
    )


def load_bundle(client: redis.Redis, submission_id: str, grading_round: int = 0) -> Bundle:
    raw = client.get(bundle_key(submission_id, grading_round))
    if raw is None:
        raise BundleMissing(
            f"no grading bundle for round {grading_round} of submission {submission_id} in Redis"
        )
    bundle = Bundle.model_validate_json(raw)
    if bundle.submission_id != submission_id or bundle.round != grading_round:
        raise ValueError(
            f"the bundle under {bundle_key(submission_id, grading_round)} is for round "
            f"{bundle.round} of submission {bundle.submission_id}"
        )
    return bundle


def build_result(settings: RunnerSettings, bundle: Bundle) -> Result:
    isolation = probe_isolation()
    token = settings.internal_result_token.get_secret_value()
    if secrets_readable(isolation, (token,)):
        isolation = replace(isolation, secrets_exposed=True)
    log.info(
        "isolation level %s (%s), sandbox uid %s",
        isolation.level,
        ", ".join(isolation.layers),
        isolation.uid,
    )
    try:
        require_level(isolation, settings.runner_require_isolation)
    except IsolationUnavailable as exc:
        log.error("%s", exc)
        result = Result.error(f"the grading machine is not isolated enough ({exc})")
        result.metrics["isolation"] = isolation.layers
        return result
    judgement = grade(bundle, isolation)
    judgement.metrics["isolation"] = isolation.layers
    judgement.metrics["isolation_level"] = isolation.level
    return review(bundle, judgement, settings)


def _grade_submission(settings: RunnerSettings) -> Result:
    """Raises BundleMissing or RedisError when there is nothing to grade yet (Redis lost the
    bundle, which the backend rebuilds, or is restarting); whatever else goes wrong becomes
    an error result the backend can store."""
    client = bundle_store(settings.redis_url)
    try:
        bundle = load_bundle(client, settings.submission_id, settings.grading_round)
    except (BundleMissing, RedisError):
        raise
    except Exception:
        log.exception("cannot load the bundle of submission %s", settings.submission_id)
        return Result.error("its grading data could not be read", settings.grading_round)
    finally:
        client.close()
    try:
        return build_result(settings, bundle)
    except Exception:
        log.exception("grading submission %s failed", settings.submission_id)
        return Result.error("the grader failed unexpectedly", settings.grading_round)


def _stop(signum: int, frame: object) -> None:
    """SIGTERM (a Job past its deadline) ends the runner, even as a container's PID 1,
    which the kernel otherwise shields from it; clean-up still runs on the way out."""
    raise SystemExit(128 + signum)


def run() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s runner %(levelname)s %(message)s")
    make_non_dumpable()
    signal.signal(signal.SIGTERM, _stop)
    try:
        settings = RunnerSettings.take_from_environment()
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    client = InternalApiClient(
        settings.backend_internal_url,
        settings.internal_result_token.get_secret_value(),
        retries=settings.result_post_retries,
    )
    submission_id = settings.submission_id
    try:
        client.post_status(submission_id, Status.RUNNING)
        # The round the token is scoped to: the backend refuses a result of any other.
        result = _grade_submission(settings).model_copy(update={"round": settings.grading_round})
        client.post_result(submission_id, result)
    except (BundleMissing, RedisError) as exc:
        log.error("no bundle to grade (%s); leaving it to the backend's sweep", exc)
        return UNREPORTED_EXIT_CODE
    except CallbackError as exc:
        log.error("could not report submission %s: %s", submission_id, exc)
        return UNREPORTED_EXIT_CODE if exc.transient else 1
    finally:
        client.close()
    log.info(
        "submission %s round %d reported: %s", submission_id, settings.grading_round, result.status
    )
    return 0


if __name__ == "__main__":
    sys.exit(run())
