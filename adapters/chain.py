"""The hash chain over the ordered event log: anyone with file access can edit rows, not undetected.

Each stored event gets a chain entry `(notification id, previous hash, hash)` written by the
recorders below in the SAME transaction as the event rows, while the writer holds the log's
write lock (SQLite's write lock, PostgreSQL's EXCLUSIVE table lock), so entries follow the
commit order and no two writers read the same previous head.

hash = sha256("fraction-ledger chain v1\\0" + previous hash + length-prefixed parts of
(notification id, originator id, version, topic, stored state bytes)). The state is the
STORED bytes: with encryption at rest on, the chain covers the ciphertext, so `verify` needs
no key (an auditor can run it) and the key never has to be on the machine that checks.

The first entry's previous hash is 64 zeros. The head (newest hash) is what reports print:
a printed or remote copy of it anchors the log, because truncating or rewriting the tail
changes the head, and `verify --head H` then says that H is no longer on the chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from ledger.messages import english, said

GENESIS = "0" * 64
PREFIX = b"fraction-ledger chain v1\0"
BATCH = 1000
PROBLEM_KINDS = ("altered", "missing", "unchained", "broken")  # what `verify` can find wrong with an event


def link_hash(prev: str, notification_id: int, originator_id: UUID | str, version: int, topic: str, state: bytes) -> str:
    """The hash of one event given the hash before it (length prefixes make the encoding unambiguous)."""
    h = hashlib.sha256(PREFIX)
    h.update(bytes.fromhex(prev))
    for part in (str(notification_id).encode(), str(originator_id).encode(), str(version).encode(), topic.encode(), state):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def links(prev: str, ids: Sequence[int], events: Sequence[StoredEvent]) -> list[tuple[int, str, str]]:
    """Chain entries (id, prev, hash) for events just inserted with these notification ids."""
    rows = []
    for nid, e in zip(ids, events, strict=True):
        h = link_hash(prev, nid, e.originator_id, e.originator_version, e.topic, e.state)
        rows.append((nid, prev, h))
        prev = h
    return rows


@dataclass(frozen=True)
class ChainEntry:
    id: int
    prev: str
    hash: str


class Guarded:
    """Every append first asks the log's guard (`adapters.log_guard`), which refuses it while the
    log fails its check: one gate for every writer (pages, API, CLI, listeners)."""

    guard: Any = None

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if self.guard is not None and stored_events:
            self.guard.before_write([e.topic for e in stored_events])
        return super().insert_events(stored_events, **kwargs)  # type: ignore[misc]


class ChainedSQLiteRecorder(Guarded, SQLiteApplicationRecorder):
    """The SQLite application recorder, plus a chain entry per event in the same transaction."""

    @property
    def chain_table(self) -> str:
        return self.events_table_name + "_chain"

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.chain_table} "
            "(notification_id INTEGER PRIMARY KEY, prev TEXT NOT NULL, hash TEXT NOT NULL)",
        ]

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        if stored_events:
            # The inserts above took SQLite's write lock: nobody else can move the head now.
            c.execute(f"SELECT hash FROM {self.chain_table} ORDER BY notification_id DESC LIMIT 1")
            row = c.fetchone()
            c.executemany(
                f"INSERT INTO {self.chain_table} (notification_id, prev, hash) VALUES (?,?,?)",
                links(row[0] if row else GENESIS, ids, stored_events),
            )
        return ids

    def select_chain(self, after: int, limit: int) -> list[ChainEntry]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT notification_id, prev, hash FROM {self.chain_table} "
                "WHERE notification_id > ? ORDER BY notification_id LIMIT ?",
                (after, limit),
            )
            return [ChainEntry(r[0], r[1], r[2]) for r in c.fetchall()]

    def chain_head(self) -> ChainEntry | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT notification_id, prev, hash FROM {self.chain_table} ORDER BY notification_id DESC LIMIT 1")
            r = c.fetchone()
            return ChainEntry(r[0], r[1], r[2]) if r else None


class ChainedPostgresRecorder(Guarded, PostgresApplicationRecorder):
    """The PostgreSQL application recorder, plus a chain entry per event in the same transaction."""

    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        self.chain_table = Identifier(events_table_name + "_chain")
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{chain} "
                "(notification_id bigint PRIMARY KEY, prev text NOT NULL, hash text NOT NULL)"
            ).format(schema=schema, chain=self.chain_table)
        )
        self.select_head_statement = SQL(
            "SELECT notification_id, prev, hash FROM {schema}.{chain} ORDER BY notification_id DESC LIMIT 1"
        ).format(schema=schema, chain=self.chain_table)
        self.insert_chain_statement = SQL(
            "INSERT INTO {schema}.{chain} (notification_id, prev, hash) VALUES (%s, %s, %s)"
        ).format(schema=schema, chain=self.chain_table)
        self.select_chain_statement = SQL(
            "SELECT notification_id, prev, hash FROM {schema}.{chain} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(schema=schema, chain=self.chain_table)

    def _fetch_ids_after_insert_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        if ids:
            # Still inside the transaction that holds the EXCLUSIVE lock on the events table.
            curs.execute(self.select_head_statement)
            row = curs.fetchone()
            curs.executemany(self.insert_chain_statement, links(row["hash"] if row else GENESIS, ids, stored_events))
        return ids

    def select_chain(self, after: int, limit: int) -> list[ChainEntry]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_chain_statement, (after, limit))
            return [ChainEntry(r["notification_id"], r["prev"], r["hash"]) for r in curs.fetchall()]

    def chain_head(self) -> ChainEntry | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.select_head_statement)
            r = curs.fetchone()
            return ChainEntry(r["notification_id"], r["prev"], r["hash"]) if r else None


# ---- reading and checking the chain -------------------------------------------------------


def chained_recorder(app: Any) -> ChainedSQLiteRecorder | ChainedPostgresRecorder:
    recorder = app.recorder
    if not isinstance(recorder, (ChainedSQLiteRecorder, ChainedPostgresRecorder)):
        raise TypeError(f"{type(recorder).__name__} keeps no hash chain: open the ledger through adapters.storage")
    return recorder


def head(app: Any) -> ChainEntry:
    """The newest chain entry (id 0 with the genesis hash on an empty log)."""
    return chained_recorder(app).chain_head() or ChainEntry(0, GENESIS, GENESIS)


def head_hash(app: Any) -> str:
    """The hash every report and summary document prints, so that a copy anchors the log."""
    return head(app).hash


def describe_head(app: Any) -> str:
    """One line for the foot of a report: `log head <hash> (event <n>)`."""
    h = head(app)
    return f"log head {h.hash} (event {h.id})"


@dataclass
class Verdict:
    ok: bool
    events: int
    head: str
    head_event: int
    problem: dict | None = None
    anchor: dict | None = field(default=None)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "events": self.events, "head": self.head, "head_event": self.head_event,
                "problem": self.problem, "anchor": self.anchor}


def what(n: Notification) -> str:
    topic = n.topic if isinstance(n.topic, str) else repr(n.topic)  # an SQL edit can change the column's type
    return f"{topic.split(':', 1)[-1]} of stream {n.originator_id} version {n.originator_version}"


def problem_at(nid: int, event: Notification | None, entry: ChainEntry | None, prev: str) -> dict | None:
    """What is wrong with the event at `nid` given the hash before it, or None when it holds."""
    if event is None:
        told = said("chain.missing", event=nid)
        return {"kind": "missing", "event": nid, "message": english(told), "said": told}
    if entry is None:
        kind = "unchained"
    elif entry.prev != prev:
        kind = "broken"
    elif not isinstance(event.state, bytes) or not isinstance(event.topic, str) or link_hash(
        prev, nid, event.originator_id, event.originator_version, event.topic, event.state
    ) != entry.hash:
        # (SQL edits can also change a column's type, e.g. SQLite's replace() turns a BLOB into TEXT.)
        kind = "altered"
    else:
        return None
    told = said(f"chain.{kind}", event=nid, what=what(event))
    return {"kind": kind, "event": nid, "stream": str(event.originator_id), "version": event.originator_version,
            "type": event.topic.split(":", 1)[-1] if isinstance(event.topic, str) else None,
            "message": english(told), "said": told}


@dataclass
class Step:
    """One batch of `check_after`: the entries that held, in order, and the first problem."""

    entries: list[ChainEntry]
    problem: dict | None


def check_after(app: Any, position: int, prev: str, batch: int = BATCH) -> Step:
    """Check the next events after `position` (whose chain hash is `prev`) against their entries.

    Race-free against writers: an event and its entry commit together and ids follow commit
    order, so the events are read first and the entries after them; an entry past the last
    event read belongs to an event committed meanwhile (read again) or to a deleted one."""
    events = list(app.recorder.select_notifications(position, batch, inclusive_of_start=False))
    entries = chained_recorder(app).select_chain(position, batch)
    bound = events[-1].id if len(events) == batch else None
    last_event = events[-1].id if events else position
    if bound is None and entries and entries[-1].id > last_event:
        events += app.recorder.select_notifications(last_event, batch, stop=entries[-1].id, inclusive_of_start=False)
    if len(entries) == batch:
        bound = entries[-1].id if bound is None else min(bound, entries[-1].id)
    by_id: dict[int, list] = {}
    for n in events:
        by_id.setdefault(n.id, [None, None])[0] = n
    for c in entries:
        by_id.setdefault(c.id, [None, None])[1] = c
    held: list[ChainEntry] = []
    for nid in sorted(by_id):
        if bound is not None and nid > bound:
            break
        event, entry = by_id[nid]
        problem = problem_at(nid, event, entry, prev)
        if problem is not None:
            return Step(held, problem)
        assert entry is not None
        held.append(entry)
        prev = entry.hash
    return Step(held, None)


def verify(app: Any, anchor: str | None = None, batch: int = BATCH, start: ChainEntry | None = None) -> Verdict:
    """Recompute the chain from the first event (or after `start`, an entry verified before);
    stop at the first event that does not match.

    Kinds of problem: `altered` (content or position changed), `missing` (an event row is
    gone but its chain entry remains), `unchained` (an event row nobody chained: written
    outside the ledger), `broken` (the chain entry does not follow the one before: entries
    were deleted, inserted or rewritten there). A tail cut off with its chain entries leaves
    a consistent shorter chain: only an anchor (`anchor=` a head printed earlier) finds that.
    """
    last_id, prev = (start.id, start.hash) if start is not None else (0, GENESIS)
    count = 0
    found: dict | None = None
    problem: dict | None = None
    while True:
        step = check_after(app, last_id, prev, batch)
        for entry in step.entries:
            if anchor is not None and found is None and entry.hash == anchor:
                found = {"hash": anchor, "event": entry.id, "on_chain": True}
        if step.entries:
            prev, last_id, count = step.entries[-1].hash, step.entries[-1].id, count + len(step.entries)
        if step.problem is not None or not step.entries:
            problem = step.problem
            break
    anchor_result = None
    if anchor is not None and not found:
        told = said("chain.anchor_not_on_chain" if problem is None else "chain.anchor_not_reached", head=anchor)
        anchor_result = {"hash": anchor, "event": None, "on_chain": False, "message": english(told), "said": told}
    elif anchor is not None:
        anchor_result = found
    ok = problem is None and (anchor_result is None or anchor_result["on_chain"])
    return Verdict(ok=ok, events=count, head=prev, head_event=last_id, problem=problem, anchor=anchor_result)
