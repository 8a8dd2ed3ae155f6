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
array, or a value of a type not listed here, is left to the matcher. Documents come out in
the scan's order (the order they were first stored in).

The equality index of a field is built on the first query that asks for it, and follows
every write: mongomock stores a document through its CollectionStore (insert, rollback),
deletes through it (delete, TTL expiry), and changes documents in place only in
Collection._update, on the documents its scan yields; those are filed again when it
returns. A dropped collection's documents are a new mapping, which starts a new index."""

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
from mongomock.store import CollectionStore

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


# What a document's field is filed under when it is not a plain value: always a candidate.
_UNSURE = object()
# Filed under nothing: a field that is absent or holds a document never equals a plain value.
_NEVER = object()


def _key(document: Document, name: str) -> object:
    value = document.get(name, _ABSENT)
    if value is _ABSENT or type(value) is dict:
        return _NEVER
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
        self.positions = itertools.count()
        self.lock = threading.RLock()
        with store._rwlock.reader():
            self.order = {doc_id: next(self.positions) for doc_id in self.documents}

    def place(self, doc_id: object) -> None:
        """Called with the store's write lock held, as the mapping takes the document."""
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


_updating = threading.local()


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
        return _noted(iter([document] if filter_applies(query, document) else []))
    required = required_equalities(query)
    if not required:
        return _noted(_scan(collection, query))
    documents = collection._store._documents
    candidates = (documents.get(doc_id) for doc_id in _index_of(collection._store).lookup(required))
    return _noted(
        document
        for document in candidates
        if document is not None
        and may_match(document, required)
        and filter_applies(query, document)
    )


def _noted(documents: Iterator[Document]) -> Iterator[Document]:
    """The documents, each noted as one an update in progress on this thread may change."""
    changing: list[object] | None = getattr(_updating, "ids", None)
    if changing is None:
        return documents
    return _noting(documents, changing)


def _noting(documents: Iterator[Document], changing: list[object]) -> Iterator[Document]:
    for document in documents:
        changing.append(document["_id"])
        yield document


_update: Callable[..., Any] = Collection._update
_delete_document: Callable[..., None] = CollectionStore.__delitem__


def _update_filed(collection: Collection, *args: Any, **kwargs: Any) -> Any:
    """mongomock's update, then the documents it may have changed in place filed again."""
    outer = getattr(_updating, "ids", None)
    _updating.ids = changed = []
    try:
        return _update(collection, *args, **kwargs)
    finally:
        _updating.ids = outer
        index = _index_of(collection._store)
        for doc_id in changed:
            index.refile(doc_id)


def _set_filed(store: CollectionStore, key: object, document: Document) -> None:
    """mongomock's CollectionStore.__setitem__, with the document's place in the scan's order
    taken under the same lock."""
    index = _index_of(store)
    with store._rwlock.writer():
        store._documents[key] = document
        index.place(key)
    index.refile(key)


def _delete_filed(store: CollectionStore, key: object) -> None:
    _delete_document(store, key)
    _index_of(store).refile(key)


def use_shortcuts() -> None:
    """Every mongomock collection of this process answers through the shortcuts (the dev
    stack's webapp, whose data lives in mongomock)."""
    Collection._iter_documents = matching_documents
    Collection._update = _update_filed
    CollectionStore.__setitem__ = _set_filed
    CollectionStore.__delitem__ = _delete_filed
