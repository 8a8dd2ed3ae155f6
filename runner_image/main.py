"""The runner process: load the bundle, mark running, grade, report. One submission per run."""

from __future__ import annotations

import ctypes
import logging
import sys

from runner_image.bundle import BundleMissing, load_bundle
from runner_image.callback import CallbackError, InternalApiClient, error_result
from runner_image.config import RunnerConfigError, RunnerSettings
from runner_image.grader import grade
from runner_image.isolation import IsolationUnavailable, probe_isolation, require_level

log = logging.getLogger("runner")

PR_SET_DUMPABLE = 4


def make_non_dumpable() -> None:
    """A same-uid process can then read neither our memory nor /proc/<pid>/environ."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("could not clear the dumpable flag (errno %d)", ctypes.get_errno())


def build_result(settings: RunnerSettings) -> dict:
    bundle = load_bundle(settings.redis_url, settings.submission_id)
    isolation = probe_isolation()
    try:
        require_level(isolation, settings.require_isolation)
    except IsolationUnavailable as exc:
        log.error("%s", exc)
        result = error_result(f"the grading machine is not isolated enough ({exc})")
        result["metrics"]["isolation"] = isolation.layers
        return result
    judgement = grade(bundle, isolation)
    judgement.metrics["isolation"] = isolation.layers
    judgement.metrics["isolation_level"] = isolation.level
    # Imported only now: a forked child's peak memory (ru_maxrss) includes the runner's own
    # pages, so the runner stays small while it runs submissions; the LLM stack is large.
    from runner_image.review import review

    return review(bundle, judgement, settings)


def run() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s runner %(levelname)s %(message)s")
    make_non_dumpable()
    try:
        settings = RunnerSettings.from_env()
    except RunnerConfigError as exc:
        log.error("%s", exc)
        return 2
    client = InternalApiClient(
        settings.backend_internal_url, settings.result_token, retries=settings.result_retries
    )
    submission_id = settings.submission_id
    try:
        client.post_status(submission_id, "running")
        try:
            result = build_result(settings)
        except BundleMissing as exc:
            log.error("%s", exc)
            result = error_result("its grading data expired before a runner picked it up")
        except Exception:
            log.exception("grading submission %s failed", submission_id)
            result = error_result("the grader failed unexpectedly")
        client.post_result(submission_id, result)
    except CallbackError as exc:
        log.error("could not report submission %s: %s", submission_id, exc)
        return 1
    finally:
        client.close()
    log.info("submission %s reported: %s", submission_id, result["status"])
    return 0


if __name__ == "__main__":
    sys.exit(run())
