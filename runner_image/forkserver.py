"""The runner, imported once: a process that has imported everything a runner needs and
forks one runner per submission, so a submission no longer pays an interpreter's start and
the runner's imports (about half a second of CPU) before it is graded, nor the trial run
that proves which isolation layers this machine supports (proven here once, before any
fork; each runner still takes a sandbox uid and a cgroup of its own), nor the libraries'
first-use work (runner_image.main.warm_up). The local launcher
keeps one per worker process (tasks.launchers.runner_forks).

It holds no secret: it is started with PATH alone, and each request brings one runner's
environment (its scoped token), which only the child forked for it gets. Requests and
events are JSON lines: the launcher writes {"env": {...}} to its stdin; it answers on
stdout {"started": pid} at once and {"pid": pid, "exit": code} when that runner has ended
(a negative code is the signal that ended it, as in subprocess). Each runner leads a
session of its own, as a runner started with `start_new_session` would. When its stdin
closes (the launcher's process has ended) the server ends; runners it started go on and
report as usual.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import sys
from typing import NoReturn

REQUESTS_FD = 0
EVENTS_FD = 1
WITH_LLM = "--with-llm"
# The runners (and the programs they run) yield the CPU to the platform's own processes on
# the machine they share with them, as runner pods do to the backend's in a cluster: the
# API answers during a burst of grading. They lose no CPU time when nothing else waits.
RUNNER_NICENESS = 10


def write_event(event: dict[str, int]) -> None:
    """One line in one write: far below PIPE_BUF, so it is never interleaved or split."""
    os.write(EVENTS_FD, json.dumps(event).encode() + b"\n")


def reap_children() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        write_event({"pid": pid, "exit": os.waitstatus_to_exitcode(status)})


def serve() -> dict[str, str] | None:
    """Fork a runner per request. Returns only in a forked child, with that runner's
    environment, or when the launcher has gone (None)."""
    wake_read, wake_write = os.pipe()
    for fd in (wake_read, wake_write):
        os.set_blocking(fd, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the selector below
    selector = selectors.DefaultSelector()
    selector.register(REQUESTS_FD, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    pending = b""
    while True:
        for key, _ in selector.select():
            if key.fd == wake_read:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 4096)
                reap_children()
                continue
            chunk = os.read(REQUESTS_FD, 65536)
            if not chunk:
                return None
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                env = json.loads(line)["env"]
                # The runner leads its own session before it is reported started, so that
                # a deadline's killpg(pid) finds its group whenever it comes.
                in_session, session_made = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.setsid()
                    os.close(in_session)
                    os.close(session_made)
                    selector.close()
                    signal.set_wakeup_fd(-1)
                    os.close(wake_read)
                    os.close(wake_write)
                    return env
                os.close(session_made)
                os.read(in_session, 1)  # end of file: the child has closed its end
                os.close(in_session)
                write_event({"started": pid})


def become_runner(env: dict[str, str]) -> None:
    """In the forked child (already leading a session of its own): the server's signal
    dispositions undone, stdin from /dev/null and stdout to the log (stderr), and the
    runner's environment."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, REQUESTS_FD)
    os.close(devnull)
    os.dup2(2, EVENTS_FD)
    os.environ.clear()
    os.environ.update(env)


def end_runner(code: int) -> NoReturn:
    """End a forked runner as forked children should end (multiprocessing's do): its exit
    handlers run (its cgroup removed, its log flushed), then os._exit. The interpreter's
    teardown, skipped, would free every object inherited from the server, copying each page
    the runner shares with it: about 20 ms of CPU a runner."""
    atexit._run_exitfuncs()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str]) -> int:
    # Ctrl-C in a terminal reaches the worker's whole process group: the server ends with
    # its launcher (stdin closed), never on its own; the runners it forked are not in it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Imported here, not at the top, so the launcher can import this module's constants
    # without the runner; here it is the point: everything a runner imports, before any fork.
    from runner_image.main import run, warm_up
    from runner_image.sandbox.isolation import proven_layers

    if WITH_LLM in argv:
        # LLM feedback is on: the openai client too, about a second of CPU each runner
        # would otherwise pay (runner_image.review.llm imports it only when called).
        importlib.import_module("runner_image.review.llm_call")
    proven_layers()
    warm_up()
    os.nice(RUNNER_NICENESS)
    gc.freeze()  # the imported modules' objects: runners' collections leave them shared
    env = serve()
    if env is None:
        return 0
    become_runner(env)
    end_runner(run())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
