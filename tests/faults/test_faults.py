"""Faults done to the running stack, and what every submission ends as. "Lost" is any
submission that does not end `graded` with the verdict its code deserves: an `error` the
fault caused counts as lost. "Duplicated" is a result stored more than once (the backend's
own count of stored results against the submissions that ended)."""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from bson import ObjectId

from cloudemy_dev.devstack import StackFailed, free_port, stop_process, wait_until
from runner_image.contract import (
    FINAL_STATUSES,
    RESULT_TOKEN_HEADER,
    submission_token,
    sweep_token,
)
from tests.faults.harness import (
    DEADLINE_SECONDS,
    IN_FLIGHT,
    SUBMISSIONS,
    TABLE,
    TOKENS,
    WORKER_KILL_SUBMISSIONS,
    Client,
    FaultStack,
    Figures,
    judge,
    kill_worker,
    stored_results,
)
from webapp.security import issue_access_token

# Every flow must drain within this; far beyond deadline + sweep period + grace.
DRAIN_TIMEOUT = 180
KILL_EVERY_SECONDS = 5
BACKEND_DOWN_SECONDS = 20


def flow(
    faults: FaultStack, client: Client, count: int, fault: Callable[[threading.Event], str]
) -> Figures:
    """`count` submissions (correct and wrong in turn), at most IN_FLIGHT open at once,
    sent from a thread while `fault` runs here (it returns a note for the table; `submitted`
    is set once the last submission is in); then wait until all are final and judge them.

    The fault runs in the test's own thread because whatever it starts again (a worker, a
    redis-server) is tied to the thread that started it: the dev stack's children get
    SIGTERM when their parent thread ends (PR_SET_PDEATHSIG)."""
    client.wait_final(list(Client.everything), DRAIN_TIMEOUT)  # earlier scenarios' leftovers
    stored_before, conflicts_before = stored_results(faults.stack, faults.metrics_token)
    started = time.monotonic()
    labels: dict[str, str] = {}
    submitted = threading.Event()
    abandon = threading.Event()
    finished_at: list[float] = []
    errors: list[BaseException] = []

    def submit_all() -> None:
        open_ids: set[str] = set()
        try:
            while len(labels) < count and not abandon.is_set():
                if open_ids:
                    for submission_id, state in client.states(sorted(open_ids)).items():
                        if state["status"] in FINAL_STATUSES:
                            open_ids.discard(submission_id)
                if len(open_ids) < IN_FLIGHT:
                    label = "correct" if len(labels) % 2 == 0 else "wrong"
                    submission_id = client.submit(label)
                    labels[submission_id] = label
                    open_ids.add(submission_id)
                else:
                    time.sleep(0.3)
            finished_at.append(time.monotonic())
        except BaseException as exc:
            errors.append(exc)
        finally:
            submitted.set()

    sender = threading.Thread(target=submit_all, daemon=True)
    sender.start()
    try:
        note = fault(submitted)
    except BaseException:
        abandon.set()  # no submissions may flow on into the next scenario
        raise
    finally:
        sender.join(DRAIN_TIMEOUT)
    if errors:
        raise errors[0]
    assert finished_at, "the submissions were not all sent"
    states, last_final = client.wait_final(list(labels), DRAIN_TIMEOUT)
    figures = Figures(scenario="")
    judge(figures, labels, states)
    stored_after, conflicts_after = stored_results(faults.stack, faults.metrics_token)
    figures.duplicated = (stored_after - stored_before) - figures.final
    figures.drain_seconds = max(0.0, last_final - finished_at[0])
    refused = conflicts_after - conflicts_before
    notes = [note, f"whole scenario {last_final - started:.0f} s"]
    notes += [f"submit retried after 503: {client.refused}"] if client.refused else []
    notes += [f"second results refused (409): {refused}"] if refused else []
    figures.notes = "; ".join(note for note in notes if note)
    return figures


def record(figures: Figures, scenario: str) -> Figures:
    figures.scenario = scenario
    TABLE.append(figures)
    return figures


def assert_nothing_lost(figures: Figures) -> None:
    assert figures.final == figures.submitted, figures
    assert figures.lost == 0, figures.lost_ids
    assert figures.duplicated == 0, figures


@pytest.fixture
def client(faults: FaultStack) -> Client:
    faults.stack.wait_for_worker()
    return Client(faults.stack)


# --- forged tokens ------------------------------------------------------------------------


def forged_tokens(secret: str, submission_id: str) -> list[tuple[str, dict[str, str]]]:
    """(kind, headers) of every kind of token a caller without the right one could send."""
    valid = submission_token(secret, submission_id)
    other_id = str(ObjectId())
    flipped = valid[:10] + ("0" if valid[10] != "0" else "1") + valid[11:]
    kinds: list[tuple[str, str | None]] = [
        ("random", secrets.token_hex(32)),
        ("truncated", valid[: random.randrange(0, len(valid))]),
        ("foreign submission", submission_token(secret, other_id)),
        ("other secret", submission_token(secrets.token_hex(32), submission_id)),
        ("one character changed", flipped),
        ("upper case", valid.upper()),
        ("extended", valid + "0"),
        ("sweep scope", sweep_token(secret)),
        ("the server secret itself", secret),
        ("none", None),
    ]
    return [
        (kind, {RESULT_TOKEN_HEADER: token} if token is not None else {}) for kind, token in kinds
    ]


def test_forged_truncated_and_foreign_tokens_are_never_accepted(faults, client):
    secret = faults.stack.env["INTERNAL_RESULT_TOKEN"]
    target = client.submit("wrong")
    states, _ = client.wait_final([target], DRAIN_TIMEOUT)
    before = states[target]
    internal = faults.gate.url
    forged_result = {"status": "graded", "verdict": "accepted", "score": 100, "max_score": 100}

    def attempt(index: int) -> tuple[str, int]:
        kind, headers = forged_tokens(secret, target)[index % 10]
        endpoint = index // 10 % 4
        if endpoint == 0:
            url, body = f"{internal}/submissions/{target}/result", forged_result
        elif endpoint == 1:
            url, body = f"{internal}/submissions/{target}/status", {"status": "running"}
        elif endpoint == 2:
            url, body = f"{internal}/sweep", {}
            if kind == "sweep scope":  # the one right token there: use a submission's instead
                headers = {RESULT_TOKEN_HEADER: submission_token(secret, target)}
        else:
            url = f"{internal}/llm/{target}/v1/chat/completions"
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            token = headers.get(RESULT_TOKEN_HEADER)
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        response = requests.post(url, json=body, headers=headers, timeout=15)
        return kind, response.status_code

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(attempt, range(TOKENS)))
    elapsed = time.monotonic() - started
    accepted = [(kind, status) for kind, status in answers if status < 400]
    codes = Counter(status for _, status in answers)
    after = client.states([target])[target]
    record(
        Figures(
            scenario=f"{TOKENS} forged/truncated/foreign tokens",
            submitted=TOKENS,
            final=TOKENS - len(accepted),
            lost=len(accepted),
            drain_seconds=elapsed,
            notes=f"accepted {len(accepted)}; answers {dict(codes)}",
        ),
        "forged tokens against /internal",
    )

    assert accepted == []
    assert set(codes) == {401}
    assert (after["status"], after["verdict"], after["score"]) == (
        before["status"],
        before["verdict"],
        before["score"],
    )


# --- MongoDB unreachable ------------------------------------------------------------------


def test_with_mongodb_unreachable_submit_answers_503_fast(faults, tmp_path):
    """A backend of its own (the dev stack's MongoDB is in-process): `cloudemy serve` with
    MONGO_URI at a closed port."""
    port = free_port()
    closed = free_port()
    env = dict(faults.stack.env)
    env.update(
        {"MONGO_URI": f"mongodb://127.0.0.1:{closed}/?directConnection=true", "PORT": str(port)}
    )
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "webapp.cli", "serve", "--host", "127.0.0.1", "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{api}/healthz", timeout=2).ok, 60, "serve", [server])
        token = issue_access_token(str(ObjectId()), env["SECRET_KEY"], 3600)
        timings = []
        answers = []
        for _ in range(10):
            started = time.monotonic()
            response = requests.post(
                f"{api}/api/assignments/{ObjectId()}/submissions",
                json={"code": "print(1)"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
            timings.append(time.monotonic() - started)
            answers.append((response.status_code, response.json()["error"]["code"]))
        ready = requests.get(f"{api}/readyz", timeout=30)
    finally:
        stop_process(server)
        log.close()
    record(
        Figures(
            scenario="MongoDB unreachable (closed port)",
            submitted=10,
            final=sum(1 for answer in answers if answer == (503, "dependency_unavailable")),
            drain_seconds=max(timings),
            notes=f"submit answered 503 dependency_unavailable in at most {max(timings):.2f} s",
        ),
        "MongoDB unreachable: submit",
    )

    assert answers == [(503, "dependency_unavailable")] * 10
    assert max(timings) < 2.0, timings
    assert ready.status_code == 503


# --- a runner that hangs ------------------------------------------------------------------


def runner_pid(log_dir: Path, submission_id: str) -> int | None:
    """The runner process of one submission, as the worker logged its start."""
    started = re.compile(rf"started runner-{submission_id} as pid (\d+)")
    found = started.search((log_dir / "worker.log").read_text(errors="replace"))
    return int(found.group(1)) if found else None


def test_a_runner_that_hangs_ends_in_error_at_its_deadline(faults, client):
    submitted = time.monotonic()
    # Each of its tests runs to the time limit, so its runner is still grading when it is
    # stopped: a correct solution is graded in about a tenth of a second.
    submission_id = client.submit("too_slow")
    deadline = time.monotonic() + 60
    pid = None
    while pid is None and time.monotonic() < deadline:
        pid = runner_pid(faults.stack.log_dir, submission_id)
        time.sleep(0.05)
    assert pid is not None, "its runner never started"
    os.killpg(pid, signal.SIGSTOP)  # its whole group: hung, not dead
    try:
        states, ended = client.wait_final([submission_id], DEADLINE_SECONDS + 60)
    finally:
        # The launcher kills it at its deadline; if the test fails first, a stopped runner
        # must not outlive the stack (it sits in a session of its own).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    state = states[submission_id]
    took = ended - submitted
    record(
        Figures(
            scenario="",
            submitted=1,
            final=int(state["status"] in FINAL_STATUSES),
            drain_seconds=took,
            notes=f"ended {state['status']} {took:.0f} s after submitting "
            f"(deadline {DEADLINE_SECONDS} s): {state.get('feedback', '')[:60]!r}",
        ),
        "a runner that hangs (SIGSTOP)",
    )

    assert state["status"] == "error"
    assert f"deadline of {DEADLINE_SECONDS} s" in state["feedback"]
    assert DEADLINE_SECONDS - 5 <= took <= DEADLINE_SECONDS + 20


# --- the worker killed, Redis restarted, the backend away ----------------------------------


def test_the_worker_killed_again_and_again_loses_nothing(faults, client):
    def kill_repeatedly(stop: threading.Event) -> str:
        """Each worker lives KILL_EVERY_SECONDS once up, holding tasks when it dies; the
        stack's supervisor starts the next, as a Deployment would. One that does not come
        up within a minute is killed again, as a liveness probe would have it."""
        kills = stuck = 0
        restarts_before = faults.stack.restarts.get("worker", 0)
        while not stop.wait(KILL_EVERY_SECONDS):
            kill_worker(faults.stack)
            kills += 1
            for attempt in range(3):
                try:
                    faults.stack.wait_for_worker(timeout=60)
                    break
                except StackFailed:
                    if attempt == 2:
                        raise
                    stuck += 1
                    kill_worker(faults.stack)
        restarted = faults.stack.restarts.get("worker", 0) - restarts_before
        stuck_note = f"; {stuck} that did not come up were killed again" if stuck else ""
        return (
            f"worker SIGKILLed {kills} times, {KILL_EVERY_SECONDS} s after each start, "
            f"started again by the supervisor {restarted} times{stuck_note}"
        )

    figures = record(
        flow(faults, client, WORKER_KILL_SUBMISSIONS, kill_repeatedly),
        "SIGKILL the Celery worker repeatedly",
    )

    assert "SIGKILLed 0 times" not in figures.notes
    assert_nothing_lost(figures)


@pytest.mark.parametrize("aof", [True, False], ids=["aof-on", "aof-off"])
def test_redis_restarted_mid_stream_loses_nothing(faults, client, aof):
    def restart(stop: threading.Event) -> str:
        stop.wait(4)
        faults.redis.restart(aof=aof)
        faults.stack.wait_for_worker()
        return "restarted with its append-only file" if aof else "restarted empty (no AOF)"

    figures = record(
        flow(faults, client, SUBMISSIONS, restart),
        f"restart Redis mid-stream, AOF {'on' if aof else 'off'}",
    )

    assert_nothing_lost(figures)
    if not aof:
        faults.redis.restart(aof=True, down_seconds=0)


def test_the_backend_unreachable_for_20_s_while_runners_report_loses_nothing(faults, client):
    def backend_away(stop: threading.Event) -> str:
        stop.wait(3)
        faults.gate.close()
        time.sleep(BACKEND_DOWN_SECONDS)
        faults.gate.open()
        return f"internal URL refused {BACKEND_DOWN_SECONDS} s"

    figures = record(
        flow(faults, client, SUBMISSIONS, backend_away),
        f"backend unreachable {BACKEND_DOWN_SECONDS} s while runners report",
    )

    assert_nothing_lost(figures)
