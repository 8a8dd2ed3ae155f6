"""The watch that keeps the launcher's cache of runner Jobs in flight (job_cache.py) current,
as kubespawner's reflector and client-go's do: LIST once, then WATCH from the list's
resourceVersion, resuming each watch where the last one ended.

One daemon thread per process, started by the first launch (a Celery prefork child starts
its own: a thread does not survive a fork). A watch ends normally after
KUBE_WATCH_TIMEOUT_SECONDS (spread over up to twice that, so the workers of a deployment
do not reconnect in step) and is resumed at once. A 410 Gone (the history before our
resourceVersion is compacted away) re-lists at once. Any other failure (API server away,
5xx, a 429 from API Priority and Fairness, a broken stream) re-lists after a backoff:
exponential with jitter from 0.5 s to 10 s, and never shorter than a Retry-After.
The retrying is tenacity's; the thread never dies of an error, it logs and retries.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException
from tenacity import RetryCallState, Retrying, wait_exponential_jitter

from tasks.launchers.job_cache import InFlightJobs
from tasks.launchers.kube_answers import retry_after_seconds

log = logging.getLogger(__name__)

BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0


class JobReflector:
    def __init__(
        self,
        batch: client.BatchV1Api,
        namespace: str,
        label_selector: str,
        field_selector: str,
        request_timeout: float,
        watch_timeout: int,
    ) -> None:
        self.batch = batch
        self.namespace = namespace
        self.selectors = {"label_selector": label_selector, "field_selector": field_selector}
        self.request_timeout = request_timeout
        self.watch_timeout = watch_timeout
        self._backoff = wait_exponential_jitter(
            multiplier=BACKOFF_INITIAL_SECONDS,
            jitter=BACKOFF_INITIAL_SECONDS,
            max=BACKOFF_MAX_SECONDS,
        )
        self._reset()

    def _reset(self) -> None:
        """Fresh state: at construction, and in a forked child (no thread came along)."""
        self.jobs = InFlightJobs()
        self._needs_list = True
        self.lists = 0  # LISTs answered, for the logs and the tests
        self._pid = os.getpid()
        self._state = threading.Condition()
        self._synced = False
        self._error: Exception | None = None
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ for the launcher

    def synced_jobs(self, timeout: float) -> InFlightJobs:
        """The cache, once a first LIST has filled it. Starts the thread if needed; raises
        the error of the first LIST if that failed (the thread keeps retrying), or
        TimeoutError if no answer came within `timeout`."""
        self.start()
        with self._state:
            self._state.wait_for(lambda: self._synced or self._error is not None, timeout)
            if self._synced:
                return self.jobs
            if self._error is not None:
                raise self._error
        raise TimeoutError(f"no list of the runner Jobs within {timeout:g} s")

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        if self._thread is not None:
            self._thread.join(self.request_timeout)

    # ------------------------------------------------------------------ the thread

    def start(self) -> None:
        """Start the LIST and WATCH thread, again after a fork or a stop."""
        if self._pid != os.getpid() or self._stop.is_set():  # forked, or stopped
            self._reset()
        with self._state:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="runner-job-watch", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        retrying = Retrying(
            wait=self._wait,
            stop=lambda _: self._stop.is_set(),
            sleep=self._stop.wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        while not self._stop.is_set():
            try:  # each call starts at the first attempt: a good round resets the backoff
                retrying(self._round)
            except Exception:
                if not self._stop.is_set():  # only a stop ends the retrying
                    log.exception("the runner Job watch stopped unexpectedly")

    def _round(self) -> None:
        """LIST if needed, then one WATCH until it ends."""
        if self._stop.is_set():
            return
        try:
            if self._needs_list:
                self._list()
                self._needs_list = False
            self._watch_once()
        except ApiException as exc:
            self._needs_list = True
            if exc.status == 410:
                log.info("runner Job watch expired (410 Gone); listing again")
                return
            self._failed(exc)
            raise
        except Exception as exc:
            self._needs_list = True
            self._failed(exc)
            raise

    def _list(self) -> None:
        mark = self.jobs.mark()
        response = self.batch.list_namespaced_job(
            self.namespace,
            **self.selectors,
            _request_timeout=self.request_timeout,
            _preload_content=False,
        )
        try:
            body = json.loads(response.data)
        finally:
            response.release_conn()
        self.jobs.replace(body.get("items") or (), body["metadata"]["resourceVersion"], mark)
        with self._state:
            self.lists += 1
            self._synced, self._error = True, None
            self._state.notify_all()

    def _watch_once(self) -> None:
        seconds = random.randint(self.watch_timeout, 2 * self.watch_timeout)
        self._watch = stream = watch.Watch(return_type=object)  # events as plain dicts
        for event in stream.stream(
            self.batch.list_namespaced_job,
            self.namespace,
            **self.selectors,
            resource_version=self.jobs.resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=seconds,
            # The server ends the stream; the read timeout only catches a dead connection.
            _request_timeout=(self.request_timeout, seconds + self.request_timeout),
        ):
            self.jobs.apply(event["type"], event["raw_object"])
            if self._stop.is_set():
                stream.stop()

    def _failed(self, exc: Exception) -> None:
        with self._state:
            self._error = exc
            self._state.notify_all()

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff, or the Retry-After of a 429 (or of a 5xx that sends one,
        as client-go honours it) if that is longer."""
        seconds = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ApiException) and (
            exc.status == 429 or (exc.status >= 500 and "Retry-After" in (exc.headers or {}))
        ):
            seconds = max(seconds, retry_after_seconds(exc.headers))
        return seconds

    @staticmethod
    def _log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        log.warning("runner Job list/watch failed (%s); listing again in %.1f s", exc, wait)
