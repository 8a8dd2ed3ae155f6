"""One lock per collection for the in-process MongoDB stand-in, shared by the dev webapp's
threads. mongomock changes a stored document in place when it updates it and copies a
document as it answers a query, with nothing between them: a request reading a submission
while another stores its result fails with "dictionary changed size during iteration" (a
500 for the student) or reads a half-made update. MongoDB applies a single-document update
atomically, so here the writes, the copies and the counts of one collection take turns."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from mongomock.collection import Collection, Cursor
from mongomock.store import CollectionStore

_locks_made = threading.Lock()


def collection_lock(store: CollectionStore) -> threading.RLock:
    """The store's lock, made on first use; reentrant, as an update's upsert inserts."""
    lock: threading.RLock | None = getattr(store, "_document_lock", None)
    if lock is None:
        with _locks_made:
            lock = getattr(store, "_document_lock", None)
            if lock is None:
                lock = store._document_lock = threading.RLock()
    return lock


def _holding_lock(
    method: Callable[..., Any], store_of: Callable[[Any], CollectionStore]
) -> Callable[..., Any]:
    """`method`, run holding the lock of the store `store_of(self)` names."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with collection_lock(store_of(self)):
            return method(self, *args, **kwargs)

    locked.__wrapped_by_cloudemy__ = True
    return locked


# What changes stored documents in place, and what reads them whole (a cursor's results are
# copies made in _compute_results; a count runs the matcher over them).
WRITERS = ("_insert", "_update", "_delete")
READERS = ("count_documents",)


def use_collection_locks() -> None:
    """Every mongomock collection of this process takes turns (idempotent)."""
    for name in (*WRITERS, *READERS):
        method = getattr(Collection, name)
        if not getattr(method, "__wrapped_by_cloudemy__", False):
            setattr(Collection, name, _holding_lock(method, lambda c: c._store))
    if not getattr(Cursor._compute_results, "__wrapped_by_cloudemy__", False):
        Cursor._compute_results = _holding_lock(
            Cursor._compute_results, lambda cursor: cursor.collection._store
        )
