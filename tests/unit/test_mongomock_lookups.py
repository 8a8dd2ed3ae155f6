"""cloudemy_dev.mongomock_lookups, as the embedded stand-in turns it on: a document found by its
_id directly, plain equalities checked before mongomock's matcher, and every query answered
exactly as mongomock's scan of the whole collection answers it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import mongomock
import pytest
from bson import ObjectId
from mongomock import OperationFailure
from mongomock.filtering import filter_applies
from pymongo.collection import Collection

from cloudemy_dev import mongomock_lookups
from cloudemy_dev.mongomock_lookups import may_match, required_equalities, use_shortcuts

IDS = [ObjectId() for _ in range(3)]
OWNERS = [ObjectId(), ObjectId()]


@pytest.fixture
def collection() -> Iterator[Collection]:
    use_shortcuts()  # as cloudemy_dev.embedded.connect_embedded_mongo does
    client = mongomock.MongoClient()
    things = client[f"test_{uuid.uuid4().hex}"]["things"]
    things.insert_many([{"_id": oid, "n": n, "owner": OWNERS[n % 2]} for n, oid in enumerate(IDS)])
    things.insert_one({"_id": "by-name", "n": 9, "owner": [OWNERS[0], "x"], "f": 2.0})
    yield things
    client.close()


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


def test_lookups_by_id_and_by_plain_fields_take_the_shortcuts(collection, monkeypatch):
    """mongomock's matcher runs on the one document with the _id, and on the documents whose
    `owner` may hold the value (one equal, one an array), not on all four."""
    matched = []

    def counted(query, document):
        matched.append(document["_id"])
        return filter_applies(query, document)

    monkeypatch.setattr(mongomock_lookups, "filter_applies", counted)
    assert collection.find_one({"_id": IDS[1]})["n"] == 1
    assert matched == [IDS[1]]
    matched.clear()
    assert sorted(d["n"] for d in collection.find({"owner": OWNERS[1]})) == [1]
    assert sorted(map(str, matched)) == sorted(map(str, [IDS[1], "by-name"]))
