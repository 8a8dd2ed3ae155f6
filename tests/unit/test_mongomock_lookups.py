"""cloudemy_dev.mongomock_lookups, as the embedded stand-in uses it: a document found by its
_id directly, plain equalities checked before mongomock's matcher, and every query answered
exactly as mongomock's scan of the whole collection answers it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import mongoengine
import pytest
from bson import ObjectId
from mongomock import OperationFailure
from pymongo.collection import Collection

from cloudemy_dev.embedded import connect_embedded_mongo
from cloudemy_dev.mongomock_lookups import may_match, required_equalities
from webapp.settings import WebappSettings

IDS = [ObjectId() for _ in range(3)]
OWNERS = [ObjectId(), ObjectId()]


@pytest.fixture
def collection() -> Iterator[Collection]:
    settings = WebappSettings.from_env(
        {},
        mongo_uri="mongomock://localhost",
        db_name=f"test_{uuid.uuid4().hex}",
        internal_result_token="t" * 32,
        secret_key="s" * 32,
        redis_url="redis://127.0.0.1:1/0",
    )
    things = connect_embedded_mongo(settings)["things"]
    things.insert_many([{"_id": oid, "n": n, "owner": OWNERS[n % 2]} for n, oid in enumerate(IDS)])
    things.insert_one({"_id": "by-name", "n": 9, "owner": [OWNERS[0], "x"], "f": 2.0})
    yield things
    mongoengine.disconnect()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"_id": IDS[1]}, [1]),
        ({"_id": IDS[1], "n": 1}, [1]),
        ({"_id": IDS[1], "n": 2}, []),
        ({"_id": ObjectId()}, []),
        ({"_id": "by-name"}, [9]),
        ({"_id": str(IDS[0])}, []),  # a string is not the ObjectId, as on MongoDB
        ({"_id": {"$in": [IDS[0], IDS[2]]}}, [0, 2]),  # not one _id: scanned
        ({"n": {"$gte": 1}}, [1, 2, 9]),
        ({"owner": OWNERS[0]}, [0, 2, 9]),  # 9: an array holding the value
        ({"owner": OWNERS[1], "n": 1}, [1]),
        ({"owner": "x"}, [9]),
        ({"owner": "y"}, []),
        ({"f": 2}, [9]),  # 2 == 2.0, as on MongoDB
        ({"missing": 1}, []),
    ],
)
def test_queries_answer_as_a_scan_does(collection: Collection, query, expected):
    assert sorted(doc["n"] for doc in collection.find(query)) == expected


def test_a_lookup_by_id_sees_updates_and_deletes(collection: Collection):
    collection.update_one({"_id": IDS[0]}, {"$set": {"n": 7}})
    assert collection.find_one({"_id": IDS[0]})["n"] == 7
    collection.delete_one({"_id": IDS[0]})
    assert collection.find_one({"_id": IDS[0]}) is None


def test_an_invalid_query_is_refused_as_the_scan_refuses_it(collection: Collection):
    """The scan evaluates the rest of a query only on a document whose _id matches."""
    with pytest.raises(OperationFailure):
        collection.find_one({"_id": IDS[0], "n": {"$nosuchoperator": 1}})
    assert collection.find_one({"_id": ObjectId(), "n": {"$nosuchoperator": 1}}) is None


@pytest.mark.parametrize(
    ("document", "required", "possible"),
    [
        ({"a": 1}, [("a", 1)], True),
        ({"a": 1.0}, [("a", 1)], True),
        ({"a": 2}, [("a", 1)], False),
        ({}, [("a", 1)], False),
        ({"a": None}, [("a", 1)], False),
        ({"a": [2, 1]}, [("a", 1)], True),
        ({"a": {"b": 1}}, [("a", 1)], False),
        ({"a": "1"}, [("a", 1)], False),
        ({"a": 1, "b": "x"}, [("a", 1), ("b", "y")], False),
    ],
)
def test_only_documents_mongodb_would_not_match_are_rejected(document, required, possible):
    assert may_match(document, required) is possible


def test_only_plain_top_level_equalities_are_checked_early():
    oid = ObjectId()
    query = {"a": oid, "b": "x", "c": 3, "d": True, "e.f": 1, "g": {"$gt": 1}, "$or": []}
    assert required_equalities(query) == [("a", oid), ("b", "x"), ("c", 3)]
