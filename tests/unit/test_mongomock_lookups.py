"""cloudemy_dev.mongomock_lookups, as the embedded stand-in turns it on: a document found by its
_id directly, plain equalities checked before mongomock's matcher, and every query answered
exactly as mongomock's scan of the whole collection answers it."""

from __future__ import annotations

import datetime
import random
import threading
import uuid
from collections.abc import Iterator
from enum import StrEnum

import mongomock
import pytest
from bson import ObjectId
from mongomock import OperationFailure, WriteError
from mongomock.filtering import filter_applies
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

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


VALUES = [1, 2, 1.0, "x", "y", True, None, OWNERS[0], OWNERS[1], [1, "x"], {"k": 1}]


def _value(rng: random.Random) -> object:
    return rng.choice(VALUES)


def _scan_order(collection: Collection, query: dict) -> list[object]:
    """What mongomock's own scan answers, in its order."""
    documents = list(collection._store.documents)
    return [doc["_id"] for doc in documents if filter_applies(query, doc)]


def _random_writes(collection: Collection, rng: random.Random, count: int, writer: int = 0) -> None:
    """`count` random writes of `writer`, to its own documents only (mongomock itself is not
    safe for two threads deleting one document)."""
    for _ in range(count):
        documents = list(collection._store.documents)
        ids = [doc["_id"] for doc in documents if doc.get("writer") == writer]
        target = {"_id": rng.choice(ids)} if ids and rng.random() < 0.5 else {"a": _value(rng)}
        target["writer"] = writer
        fields = {name: _value(rng) for name in "ab" if rng.random() < 0.8} | {"writer": writer}
        match rng.randrange(8):
            case 0 | 1:
                collection.insert_one(dict(fields))
            case 2:
                collection.update_one(
                    target, {"$set": fields} if rng.random() < 0.7 else {"$unset": {"a": ""}}
                )
            case 3:
                collection.update_many(target, {"$set": {"b": _value(rng)}})
            case 4:
                collection.replace_one(target, dict(fields))
            case 5:
                collection.update_one(target, {"$set": {"b": _value(rng)}}, upsert=True)
            case 6:
                collection.find_one_and_update(target, {"$set": {"a": _value(rng)}})
            case 7:
                collection.delete_one(target)


@pytest.mark.parametrize("seed", range(6))
def test_the_equality_index_follows_every_write(collection: Collection, seed: int):
    """Random inserts, updates (in place, many, upserts), replacements and deletes, queried
    between them: every answer is the scan's, in the scan's order."""
    rng = random.Random(seed)
    for _ in range(40):
        _random_writes(collection, rng, 5)
        for query in ({"a": _value(rng)}, {"a": _value(rng), "b": _value(rng)}, {"b": "x"}):
            if required_equalities(query):
                assert [d["_id"] for d in collection.find(query)] == _scan_order(collection, query)


def test_a_dropped_collection_starts_a_new_index(collection: Collection):
    assert collection.count_documents({"owner": OWNERS[0]}) == 3
    collection.drop()
    assert collection.count_documents({"owner": OWNERS[0]}) == 0
    collection.insert_one({"owner": OWNERS[0], "n": 5})
    assert [d["n"] for d in collection.find({"owner": OWNERS[0]})] == [5]


def test_writes_from_many_threads_leave_the_index_exact(collection: Collection):
    """Eight threads writing and querying at once, as the dev webapp's do, each finding its
    own documents only: mongomock copies a document it finds, and is not safe against
    another thread changing that document in place meanwhile (the index is)."""

    def work(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(60):
            _random_writes(collection, rng, 1, writer=seed)
            collection.find_one({"a": _value(rng), "writer": seed})

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for value in VALUES:
        if required_equalities({"a": value}):
            query = {"a": value}
            assert [d["_id"] for d in collection.find(query)] == _scan_order(collection, query)


def test_a_lookup_reads_only_the_indexed_candidates(collection, monkeypatch):
    """Among a thousand documents, a query on one owner runs the matcher on that owner's
    documents and those holding an array, not on the rest."""
    collection.insert_many([{"owner": ObjectId(), "n": n} for n in range(1000)])
    matched = []

    def counted(query, document):
        matched.append(document["_id"])
        return filter_applies(query, document)

    monkeypatch.setattr(mongomock_lookups, "filter_applies", counted)
    assert sorted(d["n"] for d in collection.find({"owner": OWNERS[1]})) == [1]
    assert len(matched) == 2  # the owner's document and the one holding an array


def test_a_unique_index_holds_when_an_update_changes_the_indexed_field(collection):
    """mongomock checks unique indexes by a query, which must see the changed document
    under its new value (a course's join code drawn again, as webapp.courses does)."""
    collection.create_index("code", unique=True, sparse=True)
    collection.insert_many([{"code": "AAAA"}, {"code": "BBBB"}])
    assert collection.find_one({"code": "AAAA"})  # the index of `code` exists
    with pytest.raises(DuplicateKeyError):
        collection.update_one({"code": "BBBB"}, {"$set": {"code": "AAAA"}})
    assert sorted(d["code"] for d in collection.find({"code": {"$exists": True}})) == [
        "AAAA",
        "BBBB",
    ]
    assert [d["code"] for d in collection.find({"code": "BBBB"})] == ["BBBB"]


def test_an_update_refused_half_way_leaves_the_answers_exact(collection):
    collection.insert_one({"_id": "z", "a": 1, "t": "text"})
    assert collection.find_one({"a": 1})
    with pytest.raises((WriteError, TypeError)):  # MongoDB: WriteError; mongomock: TypeError
        collection.update_one({"_id": "z"}, {"$set": {"a": 2}, "$inc": {"t": 1}})
    for value in (1, 2):
        query = {"a": value}
        assert [d["_id"] for d in collection.find(query)] == _scan_order(collection, query)


def test_expired_documents_are_gone_from_indexed_queries_too(collection):
    collection.create_index("at", expireAfterSeconds=1)
    collection.insert_one({"k": "x", "at": datetime.datetime(2000, 1, 1)})
    assert collection.count_documents({"k": "x"}) == 0


def test_documents_with_a_document_id_are_updated_and_found(collection):
    collection.insert_one({"_id": {"k": 1}, "a": 1})
    collection.update_one({"a": 1}, {"$set": {"a": 2}})
    assert [d["_id"] for d in collection.find({"a": 2})] == [{"k": 1}]
    assert collection.count_documents({"a": 1}) == 0


class Colour(StrEnum):
    RED = "red"


def test_a_strenum_member_counts_as_its_plain_string(collection):
    """mongoengine stores and queries a status as the StrEnum member itself."""
    collection.insert_many([{"c": Colour.RED, "n": 1}, {"c": "red", "n": 2}, {"c": "blue"}])
    for asked in (Colour.RED, "red"):
        assert required_equalities({"c": asked}) == [("c", "red")]
        assert sorted(d["n"] for d in collection.find({"c": asked})) == [1, 2]
