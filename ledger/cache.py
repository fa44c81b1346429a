"""A bounded cache of loaded aggregates (courses, the centre registry), correct with other writers and processes.

Loading a course replays its stream (~30 events: about as long as checking its rules). The
cache keeps the course as the log last had it and hands out a copy only when it is still
current: before each use, one indexed query asks the store for the stream's last version
(`current_version`); another process or thread that appended since makes it stale, and the
course is loaded from the log instead. So the log stays the only truth and the cache never
needs to be told about other writers.

Every command gets its OWN copy (`fresh_copy`: the aggregate's containers are copied, the
frozen records in them shared), so a refused or failed decision never changes the kept one.
A saved aggregate is kept as saved (`saved`), with the version it now has in the store; any
failed save evicts its aggregates (`evict`), whatever the error. At most `most` aggregates are
kept, the least recently used going first; `most = 0` turns the cache off.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import msgspec

IMMUTABLE = (str, int, float, bool, bytes, type(None), uuid.UUID, datetime, date, time, timedelta, Decimal)


def fresh_copy(value: Any) -> Any:
    """A copy that shares nothing mutable with `value`: lists, dicts and sets are copied all the
    way down, immutable values (frozen Structs, text, numbers, times) are shared, anything else
    is deep-copied."""
    if isinstance(value, IMMUTABLE):
        return value
    if isinstance(value, list):
        return [fresh_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: fresh_copy(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)) and all(isinstance(v, IMMUTABLE) for v in value):
        return type(value)(value)
    if immutable(value):
        return value
    return copy.deepcopy(value)


def immutable(value: Any) -> bool:
    """Text, numbers, times, frozen Structs, and tuples of those. A frozen Struct (a fraction
    record, a plan) is replaced, never changed in place, by the aggregates (`msgspec.structs.replace`);
    tests/test_aggregate_cache.py checks that no code of ledger/ changes one's lists in place."""
    if isinstance(value, IMMUTABLE):
        return True
    if isinstance(value, tuple):
        return all(immutable(v) for v in value)
    return isinstance(value, msgspec.Struct) and type(value).__struct_config__.frozen


def stream_version(recorder: Any, aggregate_id: uuid.UUID) -> int | None:
    """The last version of a stream in an eventsourcing recorder (SQLite or PostgreSQL): one
    query on the primary key (originator_id, originator_version), None if the stream is empty."""
    last = recorder.select_events(aggregate_id, desc=True, limit=1)
    return last[0].originator_version if last else None


def copy_aggregate(aggregate: Any) -> Any:
    twin = object.__new__(type(aggregate))
    twin.__dict__.update({k: fresh_copy(v) for k, v in vars(aggregate).items()})
    twin.__dict__["_pending_events"] = []
    return twin


class AggregateCache:
    """`load(id)` reconstructs an aggregate from the log (raising if it has none); `current_version(id)`
    is the store's last version of that stream (None: no such stream); `kinds`: what is kept."""

    def __init__(self, load: Callable[[uuid.UUID], Any], current_version: Callable[[uuid.UUID], int | None],
                 kinds: tuple[type, ...], most: int = 512):
        self.load, self.current_version, self.kinds, self.most = load, current_version, kinds, most
        self._kept: OrderedDict[uuid.UUID, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, aggregate_id: uuid.UUID) -> Any:
        """The aggregate as the store has it now, as a copy of its own for the caller."""
        if self.most <= 0:
            return self.load(aggregate_id)
        with self._lock:
            known = aggregate_id in self._kept
        if known:  # kept: still current? (nothing kept: no question, load it)
            version = self.current_version(aggregate_id)
            with self._lock:
                kept = self._kept.get(aggregate_id)
                if kept is not None and version is not None and kept.version == version:
                    self._kept.move_to_end(aggregate_id)
                    self.hits += 1
                    return copy_aggregate(kept)
        self.misses += 1
        loaded = self.load(aggregate_id)  # raises for an unknown id: nothing kept
        if isinstance(loaded, self.kinds):
            self._keep(copy_aggregate(loaded))
        return loaded

    def saved(self, aggregates: Any) -> None:
        """These aggregates are now in the store as they are: keep them. Kept as they are, not
        copied: the command that saved them is done deciding, and an aggregate changes only by
        events, each of which moves its version, so one changed after its save no longer matches
        the store's version and is not used (every use hands out a copy)."""
        if self.most <= 0:
            return
        for a in aggregates:
            if isinstance(a, self.kinds) and not a.pending_events:
                self._keep(a)

    def evict(self, aggregates: Any) -> None:
        """A save of these failed (a conflict, the store, anything): forget them."""
        with self._lock:
            for a in aggregates:
                if a is not None:
                    self._kept.pop(a.id, None)

    def _keep(self, aggregate: Any) -> None:
        with self._lock:
            kept = self._kept.get(aggregate.id)
            if kept is not None and kept.version > aggregate.version:
                return  # a newer one was kept meanwhile
            self._kept[aggregate.id] = aggregate
            self._kept.move_to_end(aggregate.id)
            while len(self._kept) > self.most:
                self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)
