"""A runner pod, simulated on this machine as the runner Job runs it: its own PID and mount
namespaces, one non-root uid for everything in it, the Job's environment (the
one-submission token, the LLM reached through the backend's gateway with that token, no
provider key), a RuntimeDefault-like seccomp profile that refuses new user namespaces
(so, as in a restricted pod, no bubblewrap), and PID 1 as the image starts it.

With the runner itself as PID 1 (the image's entrypoint) no submission can read the token
from /proc, files or the environment, the run reports `strict`, and the LLM still answers.
With a dumpable PID 1 holding the environment (what `tini` was), the runner sees the token
exposed and refuses to grade at `strict` rather than report it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from runner_image.contract import Bundle, TestCase, bundle_key
from tests.llm_fake_server import Completion, FakeChatServer, fake_chat_server
from tests.runner_harness import RecordingBackend
from tests.suite_guard import cannot_run

REPO = Path(__file__).resolve().parents[2]
SITE_PACKAGES = Path(redis.__file__).resolve().parents[1]
# The interpreter the virtualenv runs on (its stdlib is found relative to it).
PYTHON_PREFIX = Path(sys.base_prefix)
PYTHON = f"bin/python{sys.version_info.major}.{sys.version_info.minor}"
POD_UID = 150_321  # outside the sandbox uids a root runner allocates
MOUNT = "/mnt/cloudemy-pod"

# Runs as root in the pod's new PID and mount namespaces, then becomes what the image is:
# the code at /opt-like MOUNT, the profile's seccomp filter, one non-root uid, and either
# the runner exec'd as PID 1 ("runner") or a dumpable PID 1 that forks it ("tini").
BOOT = r"""
import ctypes, os, subprocess, sys
import pyseccomp as sc
repo, site, prefix, python, mount, uid, mode = sys.argv[1:8]
subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/mnt"], check=True)
for source, target in ((repo, mount + "/app"), (site, mount + "/site"), (prefix, mount + "/py")):
    os.makedirs(target)
    subprocess.run(["mount", "--bind", source, target], check=True)
profile = sc.SyscallFilter(defaction=sc.ALLOW)
for call in ("unshare", "setns", "mount", "umount2", "pivot_root"):
    profile.add_rule(sc.ERRNO(1), call)
profile.add_rule(sc.ERRNO(38), "clone3")
profile.add_rule(sc.ERRNO(1), "clone", sc.Arg(0, sc.MASKED_EQ, 0x10000000, 0x10000000))
profile.load()
os.setgroups([])
os.setgid(int(uid))
os.setuid(int(uid))
ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # dumpable again, as a process started as this uid is
env = dict(
    os.environ,
    PYTHONPATH=f"{mount}/app:{mount}/site",
    LD_LIBRARY_PATH=f"{mount}/py/lib",  # an interpreter built --enable-shared
    PYTHONDONTWRITEBYTECODE="1",
)
argv = [f"{mount}/py/{python}", "-m", "runner_image"]
os.chdir("/")
if mode == "runner":
    os.execve(argv[0], argv, env)
child = os.fork()
if child == 0:
    os.execve(argv[0], argv, env)
_, status = os.waitpid(child, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""

# The student's program: everything a process of the pod's uid can try for the secrets.
SNOOP = r"""
import os
found = [repr(dict(os.environ))]
for entry in os.listdir("/proc"):
    if entry.isdigit():
        found.append("pid " + entry)
        for name in ("environ", "cmdline", "mem"):
            try:
                with open(f"/proc/{entry}/{name}", "rb") as f:
                    found.append(repr(f.read(200000)))
            except OSError as exc:
                found.append(f"{entry}/{name}: {exc.errno}")
for root, _, files in os.walk("/proc/self/fd"):
    found.extend(files)
print("\n".join(found))
"""


@pytest.fixture(scope="module")
def pod_machine() -> None:
    if os.geteuid() != 0:
        cannot_run("hostile", "not root (simulating a pod needs new namespaces)")
    if shutil.which("unshare") is None:
        cannot_run("hostile", "no util-linux unshare to simulate a pod")


def _run_in_pod(
    mode: str, backend: RecordingBackend, redis_url: str, llm: FakeChatServer
) -> tuple[dict, str, str]:
    submission_id = uuid.uuid4().hex[:24]
    bundle = Bundle(
        submission_id=submission_id,
        language="python",
        code=SNOOP,
        tests=(TestCase(name="snoop", stdin="", expected_stdout="nothing\n"),),
    )
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(bundle_key(submission_id), bundle.model_dump_json())
    finally:
        client.close()
    token = secrets.token_hex(24)
    # The Job's environment (tasks/launchers): the token twice, as the result token and as
    # the gateway's API key; no provider key anywhere in the pod.
    job_env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "SUBMISSION_ID": submission_id,
        "REDIS_URL": redis_url,
        "BACKEND_INTERNAL_URL": backend.url,
        "INTERNAL_RESULT_TOKEN": token,
        "LLM_API_KEY": token,
        "LLM_BASE_URL": llm.base_url,
        "LLM_MAX_RETRIES": "0",
        "RUNNER_REQUIRE_ISOLATION": "strict",
    }
    pod = subprocess.run(
        [
            "unshare",
            "--pid",
            "--fork",
            "--mount",
            "--mount-proc",
            "--propagation",
            "private",
            sys.executable,
            "-c",
            BOOT,
            str(REPO),
            str(SITE_PACKAGES),
            str(PYTHON_PREFIX),
            PYTHON,
            MOUNT,
            str(POD_UID),
            mode,
        ],
        env=job_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return backend.result_for(submission_id), token, pod.stderr


def test_with_the_runner_as_pid_1_no_secret_is_readable_and_the_llm_answers(
    pod_machine, backend, redis_url
):
    answer = {"feedback": "Print `nothing`.", "explanations": [], "fail_tags": []}
    with fake_chat_server(Completion(answer)) as llm:
        result, token, stderr = _run_in_pod("runner", backend, redis_url, llm)
        received = list(llm.received)

    assert result["status"] != "error", stderr
    metrics = result["metrics"]
    assert metrics["isolation_level"] == "strict", stderr
    assert "seccomp" in metrics["isolation"] and "namespaces" not in metrics["isolation"]
    snooped = result["tests"][0]["stdout"] or ""
    # The program did look: it saw the pod's processes (PID 1, the runner, at least).
    assert "pid 1" in snooped
    everything = json.dumps(result)
    assert token not in everything
    assert token not in stderr
    # The LLM answered through the gateway with the one-submission token, and nothing else.
    assert metrics["llm"] == "ok"
    authorizations = [
        value
        for r in received
        for name, value in r.headers.items()
        if name.lower() == "authorization"
    ]
    assert authorizations == [f"Bearer {token}"]
    assert "Print `nothing`." in result["feedback"]


def test_a_dumpable_pid_1_holding_the_token_is_refused_at_strict(pod_machine, backend, redis_url):
    with fake_chat_server() as llm:
        result, token, _ = _run_in_pod("tini", backend, redis_url, llm)
        assert llm.received == []

    assert result["status"] == "error"
    assert result["verdict"] == "internal_error"
    assert "holds a secret" in result["metrics"]["error"]
    assert token not in json.dumps(result)
