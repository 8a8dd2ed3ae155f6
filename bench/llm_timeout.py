"""How much time the LLM step adds to grading a submission, LLM healthy or down.

Grades one real submission (the real sandbox) once, then times the review step (injection
check + LLM call + result) against a local fake Chat Completions server in each scenario,
and compares the worst case with the bound the runner promises: LLM_TIMEOUT_SECONDS for the
whole step, retries included (see llm.call_budget).

    .venv/bin/python bench/llm_timeout.py [--timeout 2] [--retries 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner_image.contract import Bundle, TestCase
from runner_image.grading.grader import grade
from runner_image.review.llm import call_budget
from runner_image.review.reviewer import review
from runner_image.sandbox.isolation import probe_isolation
from runner_image.settings import RunnerSettings
from tests.llm_fake_server import (
    Behaviour,
    Completion,
    Raw,
    Sleep,
    Status,
    Trickle,
    fake_chat_server,
)

CODE = "a, b = map(int, input().split())\nprint(abs(a) + abs(b))\n"
TESTS = (
    TestCase(name="small", stdin="1 2\n", expected_stdout="3\n"),
    TestCase(name="negative", stdin="-5 2\n", expected_stdout="-3\n"),
    TestCase(name="hidden big", stdin="123456 654321\n", expected_stdout="777777\n", hidden=True),
)
ANSWER = {
    "feedback": "Mind the signs.",
    "explanations": [{"test": "negative", "explanation": "`abs()` drops the sign."}],
    "fail_tags": ["edge_case"],
}


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings(base_url: str | None, key: str | None, timeout: float, retries: int):
    """Only what is given here: nothing is read from this shell's environment."""
    return RunnerSettings.from_env(
        {},
        submission_id="bench",
        redis_url="redis://127.0.0.1:1/0",
        backend_internal_url="http://127.0.0.1:1/internal",
        internal_result_token="bench",
        llm_api_key=key,
        llm_base_url=base_url,
        llm_timeout_seconds=timeout,
        llm_max_retries=retries,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=2.0, help="LLM_TIMEOUT_SECONDS")
    parser.add_argument("--retries", type=int, default=1, help="LLM_MAX_RETRIES")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the runner's per-call warnings are expected

    bundle = Bundle(submission_id="bench", language="python", code=CODE, tests=TESTS)
    started = time.monotonic()
    judgement = grade(bundle, probe_isolation())
    grading_s = time.monotonic() - started
    per_attempt, budget = call_budget(settings(None, "k", args.timeout, args.retries))

    scenarios: list[tuple[str, Behaviour | None, bool]] = [
        ("no LLM configured", None, False),
        ("LLM answers", Completion(ANSWER), True),
        ("LLM answers garbage", Raw(b"<html>oops</html>"), True),
        ("LLM answers HTTP 500", Status(500), True),
        ("LLM rate limits (Retry-After 120)", Status(429, headers={"Retry-After": "120"}), True),
        ("LLM silent (never answers)", Sleep(600), True),
        ("LLM trickles bytes", Trickle(600, interval=0.2), True),
        ("nothing listening", None, True),
    ]
    print(f"grading the submission itself (sandbox, 3 tests): {grading_s * 1000:.0f} ms")
    print(
        f"LLM_TIMEOUT_SECONDS={args.timeout:g} LLM_MAX_RETRIES={args.retries}: "
        f"per attempt {per_attempt:g} s, whole-call budget {budget:g} s\n"
    )
    print(f"{'scenario':38} {'metrics.llm':16} {'median s':>9} {'max s':>7}  within budget")
    missed = []
    with fake_chat_server() as fake:
        for name, behaviour, configured in scenarios:
            if behaviour is not None:
                fake.reset(default=behaviour)
                url: str | None = fake.base_url
            else:
                url = f"http://127.0.0.1:{unused_port()}/v1"
            key = "sk-bench" if configured else None
            times, status = [], ""
            for _ in range(args.repeat):
                t0 = time.monotonic()
                result = review(bundle, judgement, settings(url, key, args.timeout, args.retries))
                times.append(time.monotonic() - t0)
                status = result.metrics["llm"]
                assert result.score == judgement.score
            worst = max(times)
            if worst > budget + 0.5:
                missed.append(name)
            print(
                f"{name:38} {status:16} {statistics.median(times):9.2f} {worst:7.2f}  "
                f"{'yes' if worst <= budget + 0.5 else 'NO'}"
            )
    print(
        "goal: an LLM that is down adds at most the configured budget -> "
        + ("OK" if not missed else f"MISS ({', '.join(missed)})")
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
