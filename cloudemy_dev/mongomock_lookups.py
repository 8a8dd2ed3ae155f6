"""Faster queries for the in-process MongoDB stand-in, with the same answers. mongomock
answers every query by running its full matcher on every document of the collection, so
each request's lookups cost time in proportion to all the submissions ever made, where
MongoDB's indexes cost about the same for any number. Two shortcuts:

- a query on one `_id` value reads that document directly, as MongoDB's _id index does;
- another query that asks top-level fields to equal plain values (`assignment_id`,
  `user_id`...) first rejects, by a plain comparison, the documents whose field holds a
  different plain value, and runs mongomock's matcher on the rest only.

A shortcut only ever rejects a document that MongoDB would not match: a field holding an
array, or a value of a type not listed here, is left to the matcher."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Mapping

from bson import ObjectId
from mongomock.collection import Collection
from mongomock.filtering import filter_applies

Document = dict[str, object]
# Values a query may ask a field to equal, for which a different plain value never matches.
EQUALITY_TYPES = (ObjectId, str, int)
# What a field may hold that equals such a value exactly when Python's == says so.
PLAIN_TYPES = (ObjectId, str, int, float, bool, type(None), dict, datetime.datetime)
_ABSENT = object()

_scan: Callable[[Collection, object], Iterator[Document]] = Collection._iter_documents


def required_equalities(query: Mapping[str, object]) -> list[tuple[str, object]]:
    """The query's top-level `field: plain value` conditions."""
    return [
        (key, value)
        for key, value in query.items()
        if not key.startswith("$") and "." not in key and type(value) in EQUALITY_TYPES
    ]


def may_match(document: Document, required: Iterable[tuple[str, object]]) -> bool:
    """False only for a document that cannot match: a condition's field is absent, or holds
    a different plain value."""
    for key, value in required:
        found = document.get(key, _ABSENT)
        if found is _ABSENT:
            return False
        if type(found) in PLAIN_TYPES and found != value:
            return False
    return True


def matching_documents(collection: Collection, query: object) -> Iterator[Document]:
    """What mongomock's Collection._iter_documents yields, through the shortcuts."""
    if not isinstance(query, Mapping):
        return _scan(collection, query)
    wanted = query.get("_id")
    if type(wanted) in (ObjectId, str):
        try:
            document = collection._store[wanted]
        except KeyError:
            return iter(())
        return iter([document] if filter_applies(query, document) else [])
    required = required_equalities(query)
    if not required:
        return _scan(collection, query)
    return (
        document
        for document in list(collection._store.documents)
        if may_match(document, required) and filter_applies(query, document)
    )


def use_shortcuts() -> None:
    """Every mongomock collection of this process answers through the shortcuts (the dev
    stack's webapp, whose data lives in mongomock)."""
    Collection._iter_documents = matching_documents
