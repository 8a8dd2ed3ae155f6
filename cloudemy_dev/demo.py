"""`cloudemy dev` and `cloudemy demo`: the embedded default, driven over the public REST API."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from cloudemy_dev.demo_data import (
    DEMO_ASSIGNMENT_TITLE,
    DEMO_INSTRUCTOR,
    DEMO_STUDENT,
    SOLUTIONS,
)
from cloudemy_dev.devstack import StackFailed, dev_stack
from cloudemy_dev.settings import DevSettings
from runner_image.contract import FINAL_STATUSES, Verdict
from runner_image.settings import ConfigError

EXPECTED_VERDICTS = {
    "correct": Verdict.ACCEPTED,
    "wrong": Verdict.WRONG_ANSWER,
    "too_slow": Verdict.TIME_LIMIT_EXCEEDED,
}


def login(api_url: str, account: dict[str, str]) -> dict[str, str]:
    response = requests.post(
        f"{api_url}/api/auth/login",
        json={"email": account["email"], "password": account["password"]},
        timeout=10,
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def wait_for_result(
    api_url: str, headers: dict[str, str], submission_id: str, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(
            f"{api_url}/api/submissions/{submission_id}", headers=headers, timeout=10
        )
        response.raise_for_status()
        submission = response.json()
        if submission["status"] in FINAL_STATUSES:
            return submission
        if time.monotonic() > deadline:
            raise TimeoutError(f"submission {submission_id} still {submission['status']}")
        time.sleep(0.25)


def demo_assignment_id(api_url: str, headers: dict[str, str]) -> str:
    response = requests.get(f"{api_url}/api/assignments", headers=headers, timeout=10)
    response.raise_for_status()
    return next(a["id"] for a in response.json()["items"] if a["title"] == DEMO_ASSIGNMENT_TITLE)


def _print_usage(api_url: str, redis_url: str) -> None:
    print(
        f"""
Cloudemy is running at {api_url}   (Ctrl-C stops everything)
Redis (broker and bundles): {redis_url}
Flower: REDIS_URL={redis_url} .venv/bin/cloudemy flower
Demo accounts: {DEMO_STUDENT["email"]} / {DEMO_STUDENT["password"]}   (student)
               {DEMO_INSTRUCTOR["email"]} / {DEMO_INSTRUCTOR["password"]}   (instructor)

  TOKEN=$(curl -s {api_url}/api/auth/login -H 'Content-Type: application/json' \\
      -d '{{"email":"{DEMO_STUDENT["email"]}","password":"{DEMO_STUDENT["password"]}"}}' \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s {api_url}/api/assignments -H "Authorization: Bearer $TOKEN"
  curl -s {api_url}/api/assignments/<id>/submissions -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -d '{{"code": "print(42)"}}'
  curl -s {api_url}/api/submissions/<submission id> -H "Authorization: Bearer $TOKEN"
""",
        flush=True,
    )


def _stop_on(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _dev_settings(**given: object) -> DevSettings | None:
    try:
        return DevSettings.from_env(**{k: v for k, v in given.items() if v is not None})
    except ConfigError as exc:
        print(f"cloudemy: {exc}", file=sys.stderr, flush=True)
        return None


def run_dev(port: int | None = None) -> int:
    """Until Ctrl-C, SIGTERM or SIGHUP; then every process of the stack is stopped (and
    each also gets SIGTERM should this one die without stopping them)."""
    settings = _dev_settings(port=port)
    if settings is None:
        return 1
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _stop_on)
    try:
        with dev_stack(port=settings.port, redis_url=settings.redis_url) as stack:
            _print_usage(stack.api_url, stack.redis_url)
            signal.pause()
    except StackFailed as exc:
        print(f"cloudemy dev: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("stopped", flush=True)
    return 0


def run_demo() -> int:
    settings = _dev_settings()
    if settings is None:
        return 1
    log_dir = Path(tempfile.mkdtemp(prefix="cloudemy-demo-"))
    print(f"starting Redis, the webapp and the scheduler (logs in {log_dir}) ...", flush=True)
    with dev_stack(redis_url=settings.redis_url, log_dir=log_dir) as stack:
        headers = login(stack.api_url, DEMO_STUDENT)
        assignment_id = demo_assignment_id(stack.api_url, headers)
        submitted = {}
        for label, code in SOLUTIONS.items():
            response = requests.post(
                f"{stack.api_url}/api/assignments/{assignment_id}/submissions",
                json={"code": code},
                headers=headers,
                timeout=10,
            )
            response.raise_for_status()
            submitted[label] = response.json()["id"]
            print(f"submitted {label:<9} -> {response.json()['id']} ({response.json()['status']})")
        results = {
            label: wait_for_result(stack.api_url, headers, sid) for label, sid in submitted.items()
        }
    print()
    print(f"{'solution':<10} {'status':<8} {'verdict':<22} {'score':>9}  {'tests':<6} fail_tags")
    ok = True
    for label, result in results.items():
        passed = result["metrics"].get("tests_passed", 0)
        total = result["metrics"].get("tests_total", 0)
        score = (
            f"{result['score']:g}/{result['max_score']:g}" if result["score"] is not None else "-"
        )
        print(
            f"{label:<10} {result['status']:<8} {result['verdict'] or '-':<22} {score:>9}  "
            f"{passed}/{total:<4} {', '.join(result['fail_tags'])}"
        )
        ok = ok and result["verdict"] == EXPECTED_VERDICTS[label]
    ok = ok and results["correct"]["score"] == results["correct"]["max_score"]
    print()
    if not ok:
        print(f"demo FAILED: expected verdicts {EXPECTED_VERDICTS}; logs in {log_dir}")
        return 1
    shutil.rmtree(log_dir, ignore_errors=True)  # kept only when something needs a look
    print("demo OK: every submission got the expected verdict")
    return 0
