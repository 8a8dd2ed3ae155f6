"""Faster queries for the in-process MongoDB stand-in, with the same answers. mongomock
answers every query by running its full matcher on every document of the collection, so
each request's lookups cost time in proportion to all the submissions ever made, where
MongoDB's indexes cost about the same for any number. Two shortcuts:

- a query on one `_id` value reads that document directly, as MongoDB's _id index does;
- another query that asks top-level fields to equal plain values (`assignment_id`,
  `user_id`...) reads the candidates from an equality index of one of those fields (the
  one with the fewest), then rejects, by a plain comparison, those whose fields hold a
  different plain value, and runs mongomock's matcher on the rest only.

A shortcut only ever rejects a document that MongoDB would not match: a field holding an
array, or a value of a type not listed here, is left to the matcher. A string's subclass (a
StrEnum member, as mongoengine stores and queries statuses) counts as the plain string it
equals. Documents come out in the scan's order (the order they were first stored in).

The equality index of a field is built on the first query that asks for it, and follows
every write: mongomock stores a document through its CollectionStore (insert, rollback),
deletes through it (delete, TTL expiry), and changes a document in place only in
Collection._update, which checks the unique indexes (_ensure_uniques) of every document it
changed, at once: the document is filed again right there, before that check reads the
index. An update that fails half-way has the collection's index read again. A
dropped collection's documents are a new mapping, which starts a new index."""

from __future__ import annotations

import datetime
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bson import ObjectId
from mongomock.collection import Collection
from mongomock.filtering import filter_applies
from mongomock.helpers import hashdict
from mongomock.store import CollectionStore

Document = dict[str, object]
# Values a query may ask a field to equal, for which a different plain value never matches.
EQUALITY_TYPES = (ObjectId, str, int)
# What a field may hold that equals such a value exactly when Python's == says so.
PLAIN_TYPES = (ObjectId, str, int, float, bool, type(None), dict, datetime.datetime)
_ABSENT = object()

_scan: Callable[[Collection, object], Iterator[Document]] = Collection._iter_documents


def _plain(value: object) -> object:
    """A string's subclass (a StrEnum member) as the plain string it equals."""
    return str.__str__(value) if isinstance(value, str) else value


def required_equalities(query: Mapping[str, object]) -> list[tuple[str, object]]:
    """The query's top-level `field: plain value` conditions."""
    return [
        (key, _plain(value))
        for key, value in query.items()
        if not key.startswith("$")
        and "." not in key
        and (type(value) in EQUALITY_TYPES or isinstance(value, str))
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


# What a document's field is filed under when it is not a plain value: always a candidate.
_UNSURE = object()
# Filed under nothing: a field that is absent or holds a document never equals a plain value.
_NEVER = object()


def _key(document: Document, name: str) -> object:
    value = document.get(name, _ABSENT)
    if value is _ABSENT or type(value) is dict:
        return _NEVER
    if isinstance(value, str):
        return _plain(value)
    return value if type(value) in PLAIN_TYPES else _UNSURE


@dataclass
class FieldIndex:
    """One field: the ids of the documents by plain value, and those always to be checked."""

    by_value: dict[object, set[object]] = field(default_factory=dict)
    unsure: set[object] = field(default_factory=set)
    filed: dict[object, object] = field(default_factory=dict)  # id -> its key

    def put(self, doc_id: object, key: object) -> None:
        self.remove(doc_id)
        if key is _NEVER:
            return
        (self.unsure if key is _UNSURE else self.by_value.setdefault(key, set())).add(doc_id)
        self.filed[doc_id] = key

    def remove(self, doc_id: object) -> None:
        key = self.filed.pop(doc_id, _NEVER)
        if key is _UNSURE:
            self.unsure.discard(doc_id)
        elif key is not _NEVER:
            ids = self.by_value[key]
            ids.discard(doc_id)
            if not ids:
                del self.by_value[key]

    def candidates(self, value: object) -> set[object]:
        return self.by_value.get(value, set()) | self.unsure


class EqualityIndex:
    """A collection store's field indexes, and each document's place in the scan's order:
    where the store's mapping put it (a document stored again keeps its place there)."""

    def __init__(self, store: CollectionStore) -> None:
        self.store = store
        self.documents: Mapping[object, Document] = store._documents
        self.fields: dict[str, FieldIndex] = {}
        self.order: dict[object, int] = {}
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Everything read again from the store's mapping (the fields on their next use)."""
        with self.lock:
            self.fields = {}
            self.positions = itertools.count()
            with self.store._rwlock.reader():
                self.order = {doc_id: next(self.positions) for doc_id in self.documents}

    def place(self, doc_id: object) -> None:
        """Called with the store's write lock held, as the mapping takes the document (and
        by `refile` for one stored while this index was being made)."""
        if doc_id not in self.order:
            self.order[doc_id] = next(self.positions)

    def field_index(self, name: str) -> FieldIndex:
        if name not in self.fields:
            built = FieldIndex()
            with self.store._rwlock.reader():
                stored = list(self.documents.items())
            for doc_id, document in stored:
                built.put(doc_id, _key(document, name))
            self.fields[name] = built
        return self.fields[name]

    def refile(self, doc_id: object) -> None:
        """File a document again as the store holds it now (or forget it, once deleted)."""
        with self.lock:
            document = self.documents.get(doc_id)
            if document is None:
                self.order.pop(doc_id, None)
            else:
                self.place(doc_id)
            for name, index in self.fields.items():
                if document is None:
                    index.remove(doc_id)
                else:
                    index.put(doc_id, _key(document, name))

    def lookup(self, required: list[tuple[str, object]]) -> list[object]:
        """The ids of the documents that may match, in the scan's order."""
        with self.lock:
            chosen = min(
                (self.field_index(name).candidates(value) for name, value in required), key=len
            )
            return sorted(chosen, key=self.order.__getitem__)


_indexes_made = threading.Lock()


def _index_of(store: CollectionStore) -> EqualityIndex:
    """The store's index, made on first use and again once the store was dropped (a new
    mapping). Never called with the store's lock held."""
    with _indexes_made:
        index: EqualityIndex | None = getattr(store, "_equality_index", None)
        if index is None or index.documents is not store._documents:
            index = EqualityIndex(store)
            store._equality_index = index
        return index


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
    store = collection._store
    store._remove_expired_documents()  # what the scan's reading of the store does first
    candidates = (store._documents.get(doc_id) for doc_id in _index_of(store).lookup(required))
    return (
        document
        for document in candidates
        if document is not None
        and may_match(document, required)
        and filter_applies(query, document)
    )


_update: Callable[..., Any] = Collection._update
_ensure_uniques: Callable[..., None] = Collection._ensure_uniques
_delete_document: Callable[..., None] = CollectionStore.__delitem__


def _store_key(doc_id: object) -> object:
    """The key mongomock's store holds a document under (a document _id is made hashable)."""
    return hashdict(doc_id) if isinstance(doc_id, dict) else doc_id


def _filed_then_checked(collection: Collection, document: Document) -> None:
    """mongomock's unique-index check of a document it just stored or changed in place, once
    the document is filed as it is now: the check queries through the index."""
    _index_of(collection._store).refile(_store_key(document["_id"]))
    _ensure_uniques(collection, document)


def _update_or_reindex(collection: Collection, *args: Any, **kwargs: Any) -> Any:
    """mongomock's update; one that fails may have changed a document without the check
    (an operator refused half-way), so the collection's index is read again from the store
    (in place: a query running meanwhile on another thread holds it)."""
    try:
        return _update(collection, *args, **kwargs)
    except BaseException:
        _index_of(collection._store).reset()
        raise


def _set_filed(store: CollectionStore, key: object, document: Document) -> None:
    """mongomock's CollectionStore.__setitem__, the document's place in the scan's order
    taken under the same lock (unless the index is being made, or was the dropped
    mapping's: the one made next reads the mapping as it is)."""
    with store._rwlock.writer():
        store._documents[key] = document
        index: EqualityIndex | None = getattr(store, "_equality_index", None)
        if index is not None and index.documents is store._documents:
            index.place(key)
    _index_of(store).refile(key)


def _delete_filed(store: CollectionStore, key: object) -> None:
    _delete_document(store, key)
    _index_of(store).refile(key)


def use_shortcuts() -> None:
    """Every mongomock collection of this process answers through the shortcuts (the dev
    stack's webapp, whose data lives in mongomock). Installed once: a later call leaves
    what was wrapped around them since (mongomock_threads' locks) in place."""
    if Collection._iter_documents is matching_documents:
        return
    Collection._iter_documents = matching_documents
    Collection._update = _update_or_reindex
    Collection._ensure_uniques = _filed_then_checked
    CollectionStore.__setitem__ = _set_filed
    CollectionStore.__delitem__ = _delete_filed
