"""The runner Jobs in flight, as the API server reports them: what the launcher counts
against MAX_RUNNING_JOBS, without asking the API server on every launch.

Fed the way client-go's reflector feeds its store: a LIST (`replace`), then the events of
a WATCH from the list's resourceVersion (`apply`); tasks/launchers/job_watch.py does
that I/O. A Job this process has just created counts from the moment its create call
returned (`created`) until the API server reports it: a burst of launches must not
overshoot the cap while its events are on the way. Such a Job stops counting as "just
created" when the watch or a LIST reports it, when a LIST started after its creation
does not show it (it has finished), or after CREATED_GRACE_SECONDS in any case, so a lost
event cannot hold a slot forever.

Pure (no API calls; the clock is injected) and thread-safe: the watch thread writes, the
launching threads read. Objects are the API server's JSON (dicts), not client models:
deserializing 1,000 Jobs into models costs seconds, and the cap needs three fields.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Obj = Mapping[str, Any]

CREATED_GRACE_SECONDS = 60.0
# Kubernetes' finished Job conditions (job_objects.finished_condition reads them off models).
FINISHED_CONDITIONS = frozenset({"Complete", "Failed"})


@dataclass(frozen=True)
class TrackedJob:
    """What the launcher needs of a Job in flight: its token Secret is owned by `uid`."""

    name: str
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict)


def tracked(obj: Obj) -> TrackedJob:
    meta = obj.get("metadata") or {}
    return TrackedJob(
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        labels=dict(meta.get("labels") or {}),
    )


def is_finished(obj: Obj) -> bool:
    """True once the Job has a true Complete or Failed condition."""
    conditions = (obj.get("status") or {}).get("conditions") or ()
    return any(
        c.get("type") in FINISHED_CONDITIONS and c.get("status") == "True" for c in conditions
    )


@dataclass
class _Created:
    job: TrackedJob
    tick: int  # orders it against LISTs (see mark)
    at: float


class InFlightJobs:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._ticks = itertools.count()
        self._reported: dict[str, TrackedJob] = {}
        self._created: dict[str, _Created] = {}
        self._resource_version: str | None = None

    # ------------------------------------------------------------------ fed by the watch

    def mark(self) -> int:
        """Call right before sending a LIST; hand the result to `replace`. Jobs created
        before it are in that LIST if they are still in flight."""
        with self._lock:
            return next(self._ticks)

    def replace(self, items: Iterable[Obj], resource_version: str, mark: int) -> None:
        """A LIST's answer: the whole truth as of `resource_version`."""
        with self._lock:
            self._reported = {
                job.name: job for job in (tracked(o) for o in items if not is_finished(o))
            }
            self._created = {
                name: created
                for name, created in self._created.items()
                if created.tick > mark and name not in self._reported
            }
            self._resource_version = resource_version

    def apply(self, event_type: str, obj: Obj) -> None:
        """One watch event: ADDED, MODIFIED, DELETED or BOOKMARK (ERROR is the watch's)."""
        version = (obj.get("metadata") or {}).get("resourceVersion")
        with self._lock:
            if event_type != "BOOKMARK":
                job = tracked(obj)
                self._created.pop(job.name, None)
                if event_type == "DELETED" or is_finished(obj):
                    self._reported.pop(job.name, None)
                else:
                    self._reported[job.name] = job
            if version:
                self._resource_version = str(version)

    @property
    def resource_version(self) -> str | None:
        """Where a watch resumes: the last LIST's or event's version; None before a LIST."""
        with self._lock:
            return self._resource_version

    # ------------------------------------------------------------------ used by launches

    def created(self, obj: Obj) -> TrackedJob:
        """This process has just created `obj` (the create call's answer)."""
        job = tracked(obj)
        with self._lock:
            if job.name not in self._reported:
                self._created[job.name] = _Created(job, next(self._ticks), self._clock())
        return job

    def get(self, name: str) -> TrackedJob | None:
        """The Job `name` if it is in flight."""
        with self._lock:
            self._expire()
            created = self._created.get(name)
            return self._reported.get(name) or (created.job if created else None)

    def count(self) -> int:
        """Runner Jobs in flight: reported by the API server or just created here."""
        with self._lock:
            self._expire()
            return len(self._reported) + len(self._created)

    def _expire(self) -> None:
        oldest = self._clock() - CREATED_GRACE_SECONDS
        for name in [n for n, c in self._created.items() if c.at < oldest]:
            del self._created[name]
