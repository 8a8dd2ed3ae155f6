"""KubernetesLauncher and the reconciler with the real kubernetes client against a local
server speaking batch/v1 (tests/fake_kube_api.py); no cluster needed.

The first part drives the launcher in this process: create, 409, 429 with Retry-After,
500 then success, a timeout, the in-flight cap; then the watch that feeds the launcher's
cache of Jobs in flight (one LIST, then WATCH; resuming, 410 Gone, 429 backoff, Jobs of
another scheduler); then reconciling failed Jobs. The last test runs the whole chain as
processes: gunicorn, a Celery worker with RUNNER_LAUNCHER=kubernetes and a KUBECONFIG
pointing at the fake API, a private redis-server, and `cloudemy reconcile`.
"""

from __future__ import annotations

import base64
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from kubernetes import client

from cloudemy_dev.demo_data import DEMO_INSTRUCTOR
from cloudemy_dev.devstack import DevStack, dev_stack, wait_until
from runner_image.contract import InternalApiClient, submission_token
from tasks.celery_app import SCHEDULE_TASK, make_celery
from tasks.launchers import LaunchDeferred, LaunchError, make_launcher
from tasks.launchers.deadline import runner_deadline_seconds
from tasks.launchers.kubernetes import KubernetesLauncher
from tasks.reconcile import Reconciler
from tasks.settings import BrokerSettings, SchedulerSettings
from tests.fake_internal_api import FakeInternalApi
from tests.fake_kube_api import FakeKubeApi, Recorded, fake_kube_api
from tests.integration.conftest import register_student, signed_in

pytestmark = pytest.mark.integration

SECRET = "r" * 40
NAMESPACE = "cloudemy"
DEADLINE = 120  # what the scheduler task hands a launch, unless a test says otherwise
WATCH_WAIT = 30  # seconds a watch event may take on a loaded machine (met in ms when idle)


def _id() -> str:
    return uuid.uuid4().hex[:24]


@pytest.fixture
def api() -> Iterator[FakeKubeApi]:
    with fake_kube_api() as server:
        yield server


def _settings(**overrides: Any) -> SchedulerSettings:
    # The Kubernetes launcher itself never reaches Redis; the setting is required.
    return SchedulerSettings.from_env(
        {"REDIS_URL": "redis://127.0.0.1:1/0"},
        internal_result_token=SECRET,
        k8s_namespace=NAMESPACE,
        **overrides,
    )


@pytest.fixture
def launcher(api: FakeKubeApi):
    made: list[KubernetesLauncher] = []

    def make(**overrides: Any) -> KubernetesLauncher:
        configuration = client.Configuration(host=api.url)
        configuration.retries = False
        made.append(KubernetesLauncher(_settings(**overrides), client.ApiClient(configuration)))
        return made[-1]

    yield make
    for each in made:
        each.close()


def _lists(api: FakeKubeApi) -> list[Recorded]:
    return [r for r in api.recorded("GET", "jobs") if r.name is None]


def _in_flight(launcher: KubernetesLauncher) -> int:
    return launcher.reflector.jobs.count()


def _job_posts(api: FakeKubeApi) -> list[int]:
    return [r.status for r in api.recorded("POST", "jobs")]


def _token_in_secret(api: FakeKubeApi, name: str) -> str:
    data = api.stored("secrets", NAMESPACE)[name]["data"]
    return base64.b64decode(data["INTERNAL_RESULT_TOKEN"]).decode()


# --------------------------------------------------------------------------- launching


def test_create_posts_one_valid_job_and_its_token_secret(api, launcher) -> None:
    sid = _id()
    # As the webapp sizes it for 10 tests of 2 s: 40 + 45 + 60 + 40.
    deadline = runner_deadline_seconds(10, 2000, _settings())

    assert launcher().launch(sid, deadline) == f"runner-{sid}"

    assert _job_posts(api) == [201]  # the fake validated it in strict mode, as 201 says
    job = api.stored("jobs", NAMESPACE)[f"runner-{sid}"]
    assert job["spec"]["activeDeadlineSeconds"] == deadline == 185
    assert _token_in_secret(api, f"runner-{sid}") == submission_token(SECRET, sid)
    (owner,) = api.stored("secrets", NAMESPACE)[f"runner-{sid}"]["metadata"]["ownerReferences"]
    assert owner["uid"] == job["metadata"]["uid"]


def test_a_redelivery_while_in_flight_creates_nothing(api, launcher) -> None:
    sid = _id()
    launcher().launch(sid, DEADLINE)

    assert launcher().launch(sid, DEADLINE) == f"runner-{sid}"

    assert _job_posts(api) == [201]
    assert list(api.stored("jobs", NAMESPACE)) == [f"runner-{sid}"]


def test_409_already_exists_is_success(api, launcher) -> None:
    sid = _id()
    launcher().launch(sid, DEADLINE)
    api.complete_job(f"runner-{sid}", NAMESPACE)  # no longer in flight: the create is tried

    assert launcher().launch(sid, DEADLINE) == f"runner-{sid}"

    assert _job_posts(api) == [201, 409]
    assert [r.name for r in api.recorded("GET", "jobs") if r.name] == [f"runner-{sid}"]
    assert len(api.recorded("POST", "secrets")) == 1  # a finished Job needs no token


def test_429_defers_every_launch_of_the_process_by_retry_after(api, launcher) -> None:
    sid, other = _id(), _id()
    api.enqueue("POST", "jobs", 429, headers={"Retry-After": "1"})
    polite = launcher()

    with pytest.raises(LaunchDeferred) as deferred:
        polite.launch(sid, DEADLINE)
    assert deferred.value.countdown == 1
    with pytest.raises(LaunchDeferred, match="slow down"):
        polite.launch(other, DEADLINE)  # within the Retry-After: no request at all
    assert _job_posts(api) == [429]

    time.sleep(1.05)
    assert polite.launch(sid, DEADLINE) == f"runner-{sid}"
    assert _job_posts(api) == [429, 201]


def test_500_is_a_launch_error_and_the_client_does_not_retry_by_itself(api, launcher) -> None:
    sid = _id()
    api.enqueue("POST", "jobs", 500)

    with pytest.raises(LaunchError, match="500"):
        launcher().launch(sid, DEADLINE)
    assert _job_posts(api) == [500]  # one request: the retry policy is the scheduler's
    assert launcher().launch(sid, DEADLINE) == f"runner-{sid}"

    assert _job_posts(api) == [500, 201]
    assert len(api.stored("jobs", NAMESPACE)) == 1


def test_a_timeout_is_a_launch_error(api, launcher) -> None:
    api.enqueue("GET", "jobs", 200, delay=1.3, passthrough=True)

    with pytest.raises(LaunchError, match="unreachable"):
        launcher(kube_request_timeout_seconds=1).launch(_id(), DEADLINE)
    assert _job_posts(api) == []


def test_an_unreachable_api_server_is_a_launch_error() -> None:
    configuration = client.Configuration(host="http://127.0.0.1:9")
    configuration.retries = False
    launcher = KubernetesLauncher(_settings(), client.ApiClient(configuration))

    with pytest.raises(LaunchError, match="unreachable"):
        launcher.launch(_id(), DEADLINE)
    launcher.close()


def test_the_in_flight_cap_defers_until_a_job_finishes(api, launcher) -> None:
    capped = launcher(max_running_jobs=2, launch_defer_seconds=11)
    first, second, third = _id(), _id(), _id()
    capped.launch(first, DEADLINE)
    capped.launch(second, DEADLINE)

    with pytest.raises(LaunchDeferred) as deferred:
        capped.launch(third, DEADLINE)
    assert deferred.value.countdown == 11
    assert capped.launch(first, DEADLINE) == f"runner-{first}"  # a redelivery is not held back
    assert _job_posts(api) == [201, 201]

    api.fail_job(f"runner-{first}", NAMESPACE)
    wait_until(lambda: _in_flight(capped) == 1, WATCH_WAIT, "the watch to report the failed Job")
    assert capped.launch(third, DEADLINE) == f"runner-{third}"
    assert _job_posts(api) == [201, 201, 201]


def test_a_launch_lists_nothing_however_many_jobs_are_in_flight(api, launcher) -> None:
    """One LIST per process, then only the Job and its Secret per launch."""
    fast = launcher()
    for _ in range(20):
        fast.launch(_id(), DEADLINE)

    assert len(_lists(api)) == 1
    assert len(api.recorded("POST", "jobs")) == len(api.recorded("POST", "secrets")) == 20
    assert api.recorded("GET", "jobs") == _lists(api)  # no read of a single Job either
    assert [r.query["watch"] for r in api.recorded("WATCH", "jobs")] == ["true"]
    wait_until(lambda: _in_flight(fast) == 20, WATCH_WAIT, "the watch to report all 20 Jobs")


def test_jobs_created_here_count_before_the_watch_reports_them(api, launcher) -> None:
    capped = launcher(max_running_jobs=2)
    capped.launch(first := _id(), DEADLINE)  # the watch is open from here on
    # The next watch will be slow to open: the events of the next launches wait for it.
    api.enqueue("WATCH", "jobs", 200, delay=60, passthrough=True)
    api.close_watches()
    wait_until(lambda: len(api.recorded("WATCH", "jobs")) == 2, WATCH_WAIT, "a second watch")
    assert api.open_watches() == 0

    capped.launch(second := _id(), DEADLINE)
    with pytest.raises(LaunchDeferred, match="2 runner Jobs in flight"):
        capped.launch(_id(), DEADLINE)
    assert _job_posts(api) == [201, 201]
    # Nothing reported the second Job meanwhile: no watch was open, no LIST was sent.
    assert (api.open_watches(), len(_lists(api))) == (0, 1)
    api.close_watches()  # the slow watch opens and replays both Jobs: still 2, not 3 or 1
    wait_until(
        lambda: capped.reflector.jobs.get(f"runner-{second}") is not None,
        WATCH_WAIT,
        "the slow watch to report the second Job",
    )
    assert _in_flight(capped) == 2 and capped.reflector.jobs.get(f"runner-{first}") is not None


def test_jobs_of_another_scheduler_count_once_the_watch_reports_them(api, launcher) -> None:
    mine, theirs = launcher(max_running_jobs=2), launcher(max_running_jobs=2)
    mine.launch(_id(), DEADLINE)
    theirs.launch(_id(), DEADLINE)

    wait_until(lambda: _in_flight(mine) == 2, WATCH_WAIT, "the watch to report the other Job")
    with pytest.raises(LaunchDeferred):
        mine.launch(_id(), DEADLINE)

    # A Job that succeeds leaves the watch's selection (status.successful=0): DELETED.
    (done, *_) = api.stored("jobs", NAMESPACE)
    api.complete_job(done, NAMESPACE)
    wait_until(lambda: _in_flight(mine) == 1, WATCH_WAIT, "the watch to report the finished Job")
    mine.launch(_id(), DEADLINE)
    assert len(api.stored("jobs", NAMESPACE)) == 3


# --------------------------------------------------------------------------- the watch


def test_a_watch_that_ends_resumes_from_its_resource_version(api, launcher) -> None:
    watched = launcher()
    watched.launch(sid := _id(), DEADLINE)
    wait_until(lambda: _in_flight(watched) == 1, WATCH_WAIT, "the watch to report the Job")
    seen = api.stored("jobs", NAMESPACE)[f"runner-{sid}"]["metadata"]["resourceVersion"]

    api.close_watches()  # as an API server restart, or the watch's timeoutSeconds
    wait_until(lambda: len(api.recorded("WATCH", "jobs")) == 2, WATCH_WAIT, "a second watch")

    first, second = api.recorded("WATCH", "jobs")
    assert int(first.query["resourceVersion"]) < int(seen)  # from the LIST's version
    assert second.query["resourceVersion"] == seen  # the last Job event: nothing missed
    assert int(second.query["timeoutSeconds"]) >= 300  # KUBE_WATCH_TIMEOUT_SECONDS and up
    assert second.query["allowWatchBookmarks"] == "true"
    assert len(_lists(api)) == 1


def test_a_closed_launcher_watches_again_on_its_next_launch(api, launcher) -> None:
    reopened = launcher()
    reopened.launch(_id(), DEADLINE)
    reopened.close()

    reopened.launch(_id(), DEADLINE)

    assert len(_lists(api)) == 2  # a fresh cache: listed again, then watched
    wait_until(lambda: len(api.recorded("WATCH", "jobs")) == 2, WATCH_WAIT, "a second watch")
    wait_until(lambda: _in_flight(reopened) == 2, WATCH_WAIT, "the watch to report both")


def test_410_gone_lists_again_and_the_cache_stays_right(api, launcher) -> None:
    capped = launcher(max_running_jobs=2)
    first, second = _id(), _id()
    capped.launch(first, DEADLINE)
    capped.launch(second, DEADLINE)
    wait_until(lambda: _in_flight(capped) == 2, WATCH_WAIT, "the watch to report both Jobs")

    api.expire_history()  # the open watch gets ERROR 410 Expired
    api.fail_job(f"runner-{first}", NAMESPACE)  # lands after the expiry: only a LIST shows it

    wait_until(lambda: len(_lists(api)) == 2, WATCH_WAIT, "a second LIST after 410 Gone")
    wait_until(lambda: _in_flight(capped) == 1, WATCH_WAIT, "the LIST to drop the failed Job")
    assert capped.reflector.lists == 2
    capped.launch(_id(), DEADLINE)
    assert _job_posts(api) == [201, 201, 201]


def test_429_on_list_and_watch_backs_off_by_retry_after(api, launcher) -> None:
    api.enqueue("GET", "jobs", 429, headers={"Retry-After": "2"})
    api.enqueue("WATCH", "jobs", 429, headers={"Retry-After": "2"})
    polite = launcher()

    with pytest.raises(LaunchDeferred) as deferred:  # the first LIST was throttled
        polite.launch(_id(), DEADLINE)
    assert deferred.value.countdown == 2

    wait_until(
        lambda: len(api.recorded("WATCH", "jobs")) == 2, WATCH_WAIT, "the watch after backoffs"
    )
    throttled_list, *_ = _lists(api)
    throttled_watch, watch = api.recorded("WATCH", "jobs")
    list_after_list, list_after_watch = _lists(api)[1:3]
    assert [r.status for r in (throttled_list, throttled_watch)] == [429, 429]
    assert list_after_list.at - throttled_list.at >= 2  # never sooner than Retry-After
    assert list_after_watch.at - throttled_watch.at >= 2
    assert watch.at >= list_after_watch.at
    assert len(_lists(api)) == 3
    assert polite.launch(_id(), DEADLINE).startswith("runner-")


def test_a_regrade_round_is_a_new_job_with_its_rounds_token(api, launcher) -> None:
    sid = _id()
    launcher().launch(sid, DEADLINE)
    api.complete_job(f"runner-{sid}", NAMESPACE)

    assert launcher().launch(sid, DEADLINE, grading_round=1) == f"runner-{sid}-r1"
    assert launcher().launch(sid, DEADLINE, grading_round=1) == f"runner-{sid}-r1"  # once

    assert _job_posts(api) == [201, 201]
    job = api.stored("jobs", NAMESPACE)[f"runner-{sid}-r1"]
    assert job["metadata"]["labels"]["cloudemy.io/round"] == "1"
    assert _token_in_secret(api, f"runner-{sid}-r1") == submission_token(SECRET, sid, 1)
    assert _token_in_secret(api, f"runner-{sid}") == submission_token(SECRET, sid)


def test_bulk_regrades_leave_half_the_cap_to_submissions(api, launcher) -> None:
    capped = launcher(max_running_jobs=4, launch_defer_seconds=11)
    capped.launch(_id(), DEADLINE, grading_round=1, low_priority=True)
    capped.launch(_id(), DEADLINE, grading_round=1, low_priority=True)

    with pytest.raises(LaunchDeferred, match="half of it for bulk regrades"):
        capped.launch(_id(), DEADLINE, grading_round=1, low_priority=True)
    capped.launch(_id(), DEADLINE)  # a submission still gets a runner
    capped.launch(_id(), DEADLINE)
    with pytest.raises(LaunchDeferred):
        capped.launch(_id(), DEADLINE)
    assert _job_posts(api) == [201] * 4


def test_make_launcher_reads_kubeconfig(api, monkeypatch, tmp_path) -> None:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE)
    settings = _settings(runner_launcher="kubernetes", kubeconfig=str(kubeconfig))

    make_launcher.cache_clear()  # one launcher per settings and process

    make_launcher(settings).launch(sid := _id(), DEADLINE)

    (post,) = api.recorded("POST", "jobs")
    assert post.headers["authorization"] == "Bearer fake-token"
    assert f"runner-{sid}" in api.stored("jobs", NAMESPACE)


# --------------------------------------------------------------------------- reconciling


def test_reconcile_ends_failed_and_timed_out_jobs_in_error_once(api, launcher) -> None:
    timed_out, crashed, graded, running = _id(), _id(), _id(), _id()
    for sid in (timed_out, crashed, graded, running):
        launcher().launch(sid, DEADLINE)
    api.fail_job(f"runner-{timed_out}", NAMESPACE)
    api.fail_job(f"runner-{crashed}", NAMESPACE, reason="BackoffLimitExceeded", message="limit")
    api.add_pod(f"runner-{crashed}", NAMESPACE, reason="OOMKilled", exit_code=137)
    api.complete_job(f"runner-{graded}", NAMESPACE)
    backend = FakeInternalApi()
    settings = _settings(backend_internal_url=backend.url)
    configuration = client.Configuration(host=api.url)
    reconciler = Reconciler(settings, client.ApiClient(configuration), fakeredis.FakeRedis())

    outcome = reconciler.run_once()

    assert sorted(outcome.reported) == sorted([f"runner-{timed_out}", f"runner-{crashed}"])
    posts = {p["path"]: p for p in backend.posts}
    for sid, reason in (
        (timed_out, "the runner did not finish within its deadline of 120 s (DeadlineExceeded)"),
        (crashed, "the runner failed (BackoffLimitExceeded; OOMKilled, exit code 137)"),
    ):
        post = posts[f"/internal/submissions/{sid}/result"]
        assert post["token"] == submission_token(SECRET, sid)
        assert post["body"]["status"] == "error"
        assert post["body"]["metrics"] == {"error": reason}
        assert reason in post["body"]["feedback"]

    assert reconciler.run_once().reported == []  # remembered: not posted again
    assert len(backend.posts) == 2


def test_reconcile_reports_a_failed_regrade_job_for_its_round(api, launcher) -> None:
    sid = _id()
    launcher().launch(sid, DEADLINE, grading_round=2)
    api.fail_job(f"runner-{sid}-r2", NAMESPACE)
    backend = FakeInternalApi()
    settings = _settings(backend_internal_url=backend.url)
    reconciler = Reconciler(
        settings, client.ApiClient(client.Configuration(host=api.url)), fakeredis.FakeRedis()
    )

    assert reconciler.run_once().reported == [f"runner-{sid}-r2"]

    (post,) = backend.posts
    assert post["path"] == f"/internal/submissions/{sid}/result"
    assert post["token"] == submission_token(SECRET, sid, 2)
    assert post["body"]["round"] == 2 and post["body"]["status"] == "error"


def test_reconcile_treats_a_final_submission_as_done(api, launcher) -> None:
    sid = _id()
    launcher().launch(sid, DEADLINE)
    api.fail_job(f"runner-{sid}", NAMESPACE)
    backend = FakeInternalApi(answer=(409, {"error": {"code": "result_conflict"}}))
    settings = _settings(backend_internal_url=backend.url)
    redis = fakeredis.FakeRedis()
    reconciler = Reconciler(
        settings,
        client.ApiClient(client.Configuration(host=api.url)),
        redis,
        backend=lambda s, n: InternalApiClient(
            backend.url, submission_token(SECRET, s, n), retries=0
        ),
    )

    assert reconciler.run_once().already_final == [f"runner-{sid}"]
    assert reconciler.run_once().already_final == []
    assert len(backend.posts) == 1


# --------------------------------------------------------------------------- real processes


def _submit(stack: DevStack) -> str:
    """As the demo instructor: an assignment; as a new student: a submission. Its id."""
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    assignment = instructor.post(
        "/api/assignments",
        json={
            "title": "Echo",
            "language": "python",
            "time_limit_ms": 2000,
            "tests": [
                {"name": "a", "stdin": "1\n", "expected_stdout": "1\n"},
                {"name": "b", "stdin": "2\n", "expected_stdout": "2\n", "hidden": True},
            ],
        },
    )
    assert assignment.status_code == 201, assignment.text
    submitted = register_student(stack).post(
        f"/api/assignments/{assignment.json()['id']}/submissions",
        json={"code": "print(input())\n"},
    )
    assert submitted.status_code == 202, submitted.text
    return submitted.json()["id"]


def _submission(stack: DevStack, sid: str) -> dict[str, Any]:
    instructor = signed_in(stack, DEMO_INSTRUCTOR["email"], DEMO_INSTRUCTOR["password"])
    answer = instructor.get(f"/api/submissions/{sid}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_delivered_twice_one_job_and_a_timed_out_job_ends_in_error(api, tmp_path) -> None:
    """The issue's "done when", with every part a real process."""
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE)
    # The worker has to ride out a 429 (Retry-After: 1) and a 500 on the way.
    api.enqueue("GET", "jobs", 429, headers={"Retry-After": "1"})
    api.enqueue("POST", "jobs", 500)
    extra_env = {
        "RUNNER_LAUNCHER": "kubernetes",
        "KUBECONFIG": str(kubeconfig),
        "K8S_NAMESPACE": NAMESPACE,
        "MONGO_URI": "mongomock://localhost",
        "DB_NAME": "kubernetes",
    }
    with dev_stack(extra_env=extra_env, log_dir=tmp_path) as stack:
        sid = _submit(stack)  # the first delivery
        producer = make_celery(BrokerSettings.from_env({"REDIS_URL": stack.redis_url}))
        # The second: the same message again, with the deadline the webapp sized (2 tests of 2 s).
        producer.send_task(
            SCHEDULE_TASK,
            args=[sid],
            kwargs={"deadline_seconds": 149},
            queue="queue:submissions",
        )
        producer.close()

        # Each delivery ends its launch by creating (or finding) the Job's token Secret.
        wait_until(lambda: len(api.recorded("POST", "secrets")) >= 2, 90, "two launches")
        wait_until(lambda: _submission(stack, sid)["status"] == "scheduled", 60, "scheduled")

        name = f"runner-{sid}"
        assert list(api.stored("jobs", NAMESPACE)) == [name]
        assert _job_posts(api).count(201) == 1
        statuses = [r.status for r in api.requests]
        assert 429 in statuses and 500 in statuses
        job = api.stored("jobs", NAMESPACE)[name]
        assert job["spec"]["activeDeadlineSeconds"] == 149  # 40 + 2 x 4.5 + 60 + 40
        token = submission_token(stack.env["INTERNAL_RESULT_TOKEN"], sid)
        assert _token_in_secret(api, name) == token
        assert _submission(stack, sid)["job_name"] == name

        api.fail_job(name, NAMESPACE)
        reconcile = subprocess.run(
            [sys.executable, "-m", "webapp.cli", "reconcile", "--once"],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert reconcile.returncode == 0, reconcile.stderr
        # This pass, or the stack's own reconciler loop (cloudemy dev runs one), reports it.
        wait_until(lambda: _submission(stack, sid)["status"] == "error", 60, "the error")

        final = _submission(stack, sid)
        assert final["status"] == "error"
        assert "did not finish within its deadline of 149 s" in final["feedback"]
        time.sleep(0.2)
        assert _job_posts(api).count(201) == 1
