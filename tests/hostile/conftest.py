from tests.runner_harness import backend, redis_url, run_submission  # noqa: F401
