"""cloudemy_dev.mongomock_threads: a document read while another thread updates it is read
whole, before or after the update, never half-changed and never as an error."""

from __future__ import annotations

import threading
import uuid

import mongomock

from cloudemy_dev.mongomock_lookups import use_shortcuts
from cloudemy_dev.mongomock_threads import use_collection_locks


def test_reads_and_updates_of_one_document_take_turns():
    use_shortcuts()  # in cloudemy_dev.embedded's order
    use_collection_locks()
    submissions = mongomock.MongoClient()[f"test_{uuid.uuid4().hex}"]["submissions"]
    submissions.insert_one({"_id": 1, "round": 0})
    stop = threading.Event()

    def store_results() -> None:
        """Each update adds fields and removes others, as a result and a regrade do."""
        n = 0
        while not stop.is_set():
            n += 1
            submissions.update_one(
                {"_id": 1}, {"$set": {"round": n, f"k{n % 40}": n, "tests": [{"n": n}] * 5}}
            )
            submissions.update_one({"_id": 1}, {"$unset": {f"k{(n + 20) % 40}": ""}})

    writer = threading.Thread(target=store_results)
    writer.start()
    seen = []
    try:
        for _ in range(500):
            document = submissions.find_one({"_id": 1})
            seen.append(
                document["round"] == document["tests"][0]["n"] if "tests" in document else True
            )
            assert submissions.count_documents({"round": {"$gte": 0}}) == 1
    finally:
        stop.set()
        writer.join()
    assert all(seen)


def test_turning_the_locks_on_twice_wraps_once():
    use_collection_locks()
    update = mongomock.collection.Collection._update
    use_collection_locks()
    assert mongomock.collection.Collection._update is update


def test_the_shortcuts_turned_on_again_keep_the_locks():
    use_shortcuts()
    use_collection_locks()
    update = mongomock.collection.Collection._update
    use_shortcuts()
    assert mongomock.collection.Collection._update is update
    assert getattr(update, "__wrapped_by_cloudemy__", False)
