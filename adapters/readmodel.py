"""Read models: the courses and fractions tables, pulled from the event log.

The projector reads notifications after its stored position and applies them in one
SQLite transaction together with the new position, so a crash never half-applies a
batch. The tables are disposable: `rebuild` drops them and replays the whole log, which
must give the same rows. Lists, worklists and reports read these tables.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import sqlite_utils

from adapters.files import create_private
from adapters.readmodel_sql import cell, insert_sql, row_of
from adapters.readmodel_access import ACCESS_TABLES, ACCESS_TOPIC, AccessLogTables
from adapters.readmodel_decode import FRACTION_DELIVERED, FRACTION_VERIFIED, FRACTION_VOIDED, Decoder
from adapters.readmodel_billing import BILLING_TABLES, BillingTables
from adapters.readmodel_gaps import GAP_COLUMNS, GAP_JSON_COLUMNS, GapTables
from adapters.readmodel_lists import ListQueries, create_list_tables
from adapters.readmodel_receipts import RECEIPT_TABLES, RECEIPT_TOPIC, ReceiptTables
from ledger.counts import tally
from ledger.summaries import summary_only
from ledger.service import FractionLedger

BATCH = 500
REBUILD_BATCH = 5000  # a catch-up from the first event: fewer, larger transactions (each rewrites index pages)
COURSE_TOPIC = "ledger.course:Course."
OIS_IMPORT_TOPIC = "ledger.ois_import:OisImport.Acknowledged"
OIS_IMPORT_COLUMNS = {"record_id": str, "course_id": str, "set_id": str, "acknowledged_at": str, "acknowledged_by": str}

COURSE_COLUMNS = {
    "id": str, "patient_id": str, "patient_name": str, "birth_date": str, "sex": str,
    "home_centre": str, "plan_uid": str, "plan_label": str, "triage": int, "status": str,
    "status_reason": str, "assigned_centres": str, "plans": str, "fractions_planned": int,
    "fractions_delivered": int, "awaiting_verification": int, "fractions_with_warnings": int,
    "last_fraction_at": str, "last_fraction_centre": str, "registered_at": str, "version": int,
    "flags": str, **GAP_COLUMNS,
}
FRACTION_COLUMNS = {
    "record_id": str, "course_id": str, "grp": int, "number": int, "centre": str, "machine": str,
    "plan_uid": str, "delivered_at": str, "delivery_type": str, "operator": str, "note": str,
    "beams": str, "warnings": str, "source": str, "source_uid": str, "recorded_at": str, "recorded_by": str, "verified_by": str,
    "verified_at": str, "voided": int, "void_reason": str, "voided_by": str, "voided_at": str,
    "position": int, "part_of": str, "summary_only": int,
}
JSON_COLUMNS = {"assigned_centres", "plans", "beams", "warnings", "flags", *GAP_JSON_COLUMNS}


def dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def chain_hash_at(app: FractionLedger, position: int) -> str | None:
    """The hash chain's entry for the event at `position`: it names that event and all before it."""
    entries = app.recorder.select_chain(position - 1, 1) if position else []
    return entries[0].hash if entries and entries[0].id == position else None


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


INSERT_COURSE = insert_sql("courses", COURSE_COLUMNS)
INSERT_FRACTION = insert_sql("fractions", FRACTION_COLUMNS)
COURSE_ROW, FRACTION_ROW = row_of(COURSE_COLUMNS), row_of(FRACTION_COLUMNS)
FRACTION_TOPICS = frozenset({FRACTION_DELIVERED, FRACTION_VERIFIED, FRACTION_VOIDED})  # rows held until the batch ends
UNREAD_FRACTIONS = FRACTION_TOPICS | {COURSE_TOPIC + "Registered"}  # handlers that read no fractions rows
VERIFIED_BY, VOIDED = list(FRACTION_COLUMNS).index("verified_by"), list(FRACTION_COLUMNS).index("voided")
UPSERT_OIS_IMPORT = insert_sql("ois_imports", OIS_IMPORT_COLUMNS, upsert_on=("record_id",))
UPSERT_POSITION = insert_sql("position", ("name", "position", "source", "chain"), upsert_on=("name",))
SELECT_POSITION = "SELECT position, source, chain FROM position WHERE name=?"
VERIFY_FRACTION = "UPDATE fractions SET verified_by=?, verified_at=? WHERE record_id=?"
VOID_FRACTION = "UPDATE fractions SET voided=?, void_reason=?, voided_by=?, voided_at=? WHERE record_id=?"
SET_VERSION = "UPDATE courses SET version=? WHERE id=?"
SET_COUNTS = ("UPDATE courses SET fractions_delivered=?, awaiting_verification=?, fractions_with_warnings=?, "
              "last_fraction_at=?, last_fraction_centre=? WHERE id=?")
COUNTED = "SELECT grp, number, voided, verified_by, warnings, delivered_at, centre FROM fractions WHERE course_id=?"
SET_STATUS = "UPDATE courses SET status=?, status_reason=? WHERE id=?"


class Counted(NamedTuple):
    """A fractions row as `ledger.counts.tally` reads a record (`warnings`: whether it has any, the
    column being a JSON list; `text`: its delivery time as stored)."""

    group: int
    number: int
    voided: bool
    verified_by: str | None
    warnings: bool
    delivered_at: datetime
    centre: str
    text: str


class ReadModel(GapTables, AccessLogTables, BillingTables, ReceiptTables, ListQueries):
    """The tables, and the projector that keeps them: sqlite-utils creates the schema (and serves
    the CLI's and the queries' reads); the projection itself runs prepared SQL on the connection,
    a batch of notifications per transaction. What a batch changes in a course's counts and
    version is written once per course at the end of the batch (`finish_batch`), not per event;
    so are its new fractions rows, which its verifications and voids change before they are written.
    Fractions delivered, verified and voided are decoded by `adapters.readmodel_decode` (msgspec),
    every other event by the application's mapper."""

    decode_course = staticmethod(lambda row: decode(row))  # for the list queries (adapters/readmodel_lists.py)

    def __init__(self, path: Path | str, source: str):
        """`source` names the event log; a read model built from another log is rebuilt."""
        create_private(path)  # patient names: 0600 (its -wal/-shm follow)
        conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        # Disposable tables: a power cut may lose the last batches, never half of one (WAL keeps
        # each transaction whole), and they are projected again from the stored position.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-32768")  # up to 32 MiB of pages: a rebuild rewrites every index
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.source = source
        self.guard: Any = None  # adapters.log_guard.LogGuard: what the chain covers (set by adapters.runtime)
        self.recount_due: set[str] = set()  # courses whose counts the batch changed
        self.versions: dict[str, int] = {}  # course -> its version after the batch
        self.routes: dict[str, Callable[[Any, Any], None] | None] = {}  # topic -> what projects it
        self.pending: dict[str, list] = {}  # record id -> its new fractions row, until `flush_fractions`
        self.decoder: Decoder | None = None  # of the application last projected from
        self.create_tables()

    def create_tables(self) -> None:
        self.db["courses"].create(COURSE_COLUMNS, pk="id", if_not_exists=True)
        self.db["fractions"].create(FRACTION_COLUMNS, pk="record_id", if_not_exists=True)
        self.db["position"].create({"name": str, "position": int, "source": str, "chain": str}, pk="name",
                                   if_not_exists=True)
        if "chain" not in self.db["position"].columns_dict:
            self.db["position"].add_column("chain", str)
        self.db["ois_imports"].create(OIS_IMPORT_COLUMNS, pk="record_id", if_not_exists=True)
        for table, columns in (("courses", COURSE_COLUMNS), ("fractions", FRACTION_COLUMNS)):
            # A read model made by an older version lacks newer columns: add them (then rebuild).
            missing = set(columns) - set(self.db[table].columns_dict)
            for name in missing:
                self.db[table].add_column(name, columns[name])
            if missing:
                self.db["position"].delete_where()
        self.db["fractions"].create_index(["course_id", "grp", "number"], if_not_exists=True)
        self.db["courses"].create_index(["patient_id"], if_not_exists=True)
        self.create_billing_tables()
        self.create_receipt_tables()
        self.create_access_tables()
        create_list_tables(self.conn)  # issue 20.5: the lists' tables and indexes (adapters/readmodel_lists.py)

    def close(self) -> None:
        self.db.close()

    def image(self) -> bytes:
        """The whole database, serialized: an in-memory read model's snapshot (`adapters.readmodel_snapshot`)."""
        return self.conn.serialize()

    def restore(self, image: bytes) -> None:
        """These tables replaced by those of a serialized image (its schema brought up to date, as a
        file made by an older version is); if the image is not a database, empty tables."""
        try:
            self.conn.deserialize(image)
            self.create_tables()
        except BaseException:
            for (name,) in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                self.conn.execute(f"DROP TABLE [{name}]")
            self.create_tables()
            raise

    # ---- projection -------------------------------------------------------------------------

    def position(self) -> int:
        row = self.conn.execute(SELECT_POSITION, ["main"]).fetchone()
        if row is None or row[1] != self.source:
            return 0
        return row[0]

    def catch_up(self, app: FractionLedger) -> int:
        """Apply every event recorded since the stored position; returns how many."""
        applied = 0
        conn = self.conn
        if self.decoder is None or self.decoder.mapper is not app.mapper:
            self.decoder = Decoder(app.mapper)
            self.routes.clear()  # (they are chosen with the decoder)
        rebuilding = False  # from the first event: in batches of REBUILD_BATCH
        while True:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(SELECT_POSITION, ["main"]).fetchone()
                start = row[0] if row else 0
                if row is None or row[1] != self.source or row[2] != chain_hash_at(app, start):
                    # No position (a new read model, or one an older version made, whose position was
                    # dropped when its columns were added), built from another log, or the log at this
                    # path was replaced (restored from a backup, say): start again from empty tables.
                    self.clear()
                    start = 0
                rebuilding = rebuilding or start == 0
                size = REBUILD_BATCH if rebuilding else BATCH
                notifications = app.recorder.select_notifications(start, size, inclusive_of_start=False)
                more = len(notifications) == size
                if self.guard is not None and notifications:
                    # Project only what the hash chain covers: the tables stop before a bad event.
                    verified = self.guard.cover(notifications[-1].id)
                    notifications = [n for n in notifications if n.id <= verified]
                    more = more and self.guard.problem is None
                for n in notifications:
                    self.apply(app, n)
                self.finish_batch()
                if notifications:
                    last = notifications[-1].id
                    guard = self.guard
                    chain = guard.head if guard is not None and guard.position == last else chain_hash_at(app, last)
                    conn.execute(UPSERT_POSITION, ["main", last, self.source, chain])
                    if guard is not None:  # only when the tables move: a read writes nothing
                        conn.execute(UPSERT_POSITION, ["chain", guard.position, self.source, guard.head])
                conn.execute("COMMIT")
            except BaseException:
                self.recount_due.clear()
                self.versions.clear()
                self.pending.clear()
                conn.execute("ROLLBACK")
                raise
            applied += len(notifications)
            if not more:
                return applied

    def verified_head(self) -> tuple[int, str] | None:
        """The position and chain hash the log guard verified up to, if this read model is of this log."""
        row = self.conn.execute(SELECT_POSITION, ["chain"]).fetchone()
        return (row[0], row[2]) if row is not None and row[1] == self.source and row[2] else None

    def store_verified_head(self, position: int, hash_: str) -> None:
        if self.verified_head() != (position, hash_):
            self.conn.execute(UPSERT_POSITION, ["chain", position, self.source, hash_])

    def rebuild(self, app: FractionLedger) -> int:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.clear()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return self.catch_up(app)

    def clear(self) -> None:
        for table in ("courses", "fractions", "position", "ois_imports", *BILLING_TABLES, *RECEIPT_TABLES,
                      *ACCESS_TABLES):
            self.conn.execute(f"DELETE FROM [{table}]")

    def apply(self, app: FractionLedger, notification: Any) -> None:
        """Project one notification (within `catch_up`'s transaction: `finish_batch` completes it)."""
        topic = notification.topic
        try:
            route = self.routes[topic]
        except KeyError:
            route = self.routes[topic] = self.route(topic)
        if route is not None:
            if self.pending and topic not in UNREAD_FRACTIONS:
                self.flush_fractions()  # every other handler sees the fractions rows of the events before
            route(app, notification)

    def route(self, topic: str) -> Callable[[Any, Any], None] | None:
        """What projects notifications of `topic` (None: nothing does); looked up once per topic."""
        if topic == OIS_IMPORT_TOPIC:
            return lambda app, n: self.on_OisImport(app.mapper.to_domain_event(n))
        if topic == RECEIPT_TOPIC:
            return lambda app, n: self.on_Receipt(app.mapper.to_domain_event(n))
        if not topic.startswith(COURSE_TOPIC):
            return self.apply_other if self.projects_other(topic) else None
        handler = getattr(self, "on_" + topic[len(COURSE_TOPIC):], None)
        if handler is None:
            return None
        decoder = self.decoder
        if decoder is not None and decoder.handles(topic):
            fast = getattr(self, "fast_" + topic[len(COURSE_TOPIC):])

            def fast_course_event(app: FractionLedger, n: Any) -> None:
                course_id = str(n.originator_id)
                event = decoder.decode(n)
                if event is None:  # not as the Struct expects: the mapper's event, by the same handler
                    handler(course_id, app.mapper.to_domain_event(n), n.id)
                else:
                    fast(course_id, event, n.id)
                self.versions[course_id] = n.originator_version

            return fast_course_event

        def course_event(app: FractionLedger, n: Any) -> None:
            course_id = str(n.originator_id)
            handler(course_id, app.mapper.to_domain_event(n), n.id)
            self.versions[course_id] = n.originator_version

        return course_event

    def projects_other(self, topic: str) -> bool:
        """Whether `apply_other` projects notifications of `topic` (one not of a course)."""
        return topic == ACCESS_TOPIC or self.billing_handler(topic) is not None

    def apply_other(self, app: FractionLedger, notification: Any) -> None:
        if not self.apply_access(app, notification):
            self.apply_billing(app, notification)

    def finish_batch(self) -> None:
        """Write what the batch's events changed: new fractions rows, then each course row's counts and version."""
        self.flush_fractions()
        for course_id in self.recount_due:
            self.recount(course_id)
        self.recount_due.clear()
        if self.versions:
            self.conn.executemany(SET_VERSION, [(v, c) for c, v in self.versions.items()])
            self.versions.clear()

    def on_OisImport(self, e: Any) -> None:
        """The OIS confirmed it imported these records (`reconcile acknowledge`)."""
        at, set_id, by = iso(e.meta["recorded_at"]), cell(e.set_id), cell(e.by)
        self.conn.executemany(UPSERT_OIS_IMPORT, [
            (cell(rid), cell(item["course_id"]), set_id, at, by) for item in e.items for rid in item["record_ids"]])

    def ois_imports(self) -> dict[str, dict]:
        """record id -> {set_id, acknowledged_at, acknowledged_by}"""
        return {r.pop("record_id"): r for r in self.db["ois_imports"].rows_where(select="record_id, set_id, acknowledged_at, acknowledged_by")}

    def on_Registered(self, course_id: str, e: Any, position: int) -> None:
        plan = e.plan
        self.conn.execute(INSERT_COURSE, COURSE_ROW(
            {
                "id": course_id,
                "patient_id": e.patient["id"],
                "patient_name": e.patient["name"],
                "birth_date": iso(e.patient.get("birth_date")),
                "sex": e.patient.get("sex"),
                "home_centre": e.home_centre,
                "plan_uid": plan["uid"],
                "plan_label": plan["label"],
                "triage": e.triage,
                "status": "active",
                "status_reason": None,
                "assigned_centres": dumps(e.assigned_centres),
                "plans": dumps([plan]),
                "fractions_planned": sum(g["fractions_planned"] for g in plan["fraction_groups"]),
                "fractions_delivered": 0,
                "awaiting_verification": 0,
                "fractions_with_warnings": 0,
                "last_fraction_at": None,
                "last_fraction_centre": None,
                "registered_at": iso(e.meta["recorded_at"]),
                "version": 1,
            }))

    def add_fraction(self, course_id: str, row: list) -> None:
        """A new fractions row, written by `flush_fractions` (a second row of the same record id is
        written after the first, and refused as it always was)."""
        if row[0] in self.pending:
            self.flush_fractions()
        self.pending[row[0]] = row
        self.recount_due.add(course_id)

    def flush_fractions(self) -> None:
        if self.pending:
            self.conn.executemany(INSERT_FRACTION, self.pending.values())
            self.pending.clear()

    def mark_fractions(self, record_ids: list, at: int, values: tuple, sql: str) -> None:
        """Set the columns from `at` on to `values` (verified_by, verified_at; or voided, void_reason,
        voided_by, voided_at) in each record's row: in a row not written yet, else in the table."""
        written = []
        for record_id in record_ids:
            row = self.pending.get(record_id)
            if row is None:
                written.append((*values, record_id))
            else:
                row[at:at + len(values)] = values
        if written:
            self.conn.executemany(sql, written)

    def on_FractionDelivered(self, course_id: str, e: Any, position: int) -> None:
        r = e.record
        self.add_fraction(course_id, list(FRACTION_ROW(
            {
                "record_id": r["record_id"], "course_id": course_id, "grp": r["group"], "number": r["number"],
                "centre": r["centre"], "machine": r["machine"], "plan_uid": r["plan_uid"],
                "delivered_at": iso(r["delivered_at"]), "delivery_type": r["delivery_type"],
                "operator": r["operator"], "note": r["note"], "beams": dumps(r["beams"]),
                "warnings": dumps(r["warnings"]), "source": r["source"], "source_uid": r["source_uid"],
                "recorded_at": iso(r["recorded_at"]),
                "recorded_by": r["recorded_by"], "verified_by": None, "verified_at": None, "voided": 0,
                "void_reason": None, "voided_by": None, "voided_at": None, "position": position,
                "part_of": r.get("part_of"),
                # The ledger's word (old events included), so no reader tells a summary by its operator's name.
                "summary_only": int(summary_only(r["source"], r["operator"])),
            })))

    def fast_FractionDelivered(self, course_id: str, e: Any, position: int) -> None:
        """`on_FractionDelivered`'s row from `adapters.readmodel_decode.Delivered` (in column order)."""
        r, decoder = e.record, self.decoder  # (set: only its routes call this)
        self.add_fraction(course_id, [
            r.record_id, course_id, r.group, r.number, r.centre, r.machine, r.plan_uid,
            r.delivered_at.iso if r.delivered_at is not None else None, r.delivery_type, r.operator, r.note,
            decoder.json(r.beams), decoder.json(r.warnings), r.source, r.source_uid,
            r.recorded_at.iso if r.recorded_at is not None else None, r.recorded_by,
            None, None, 0, None, None, None, position, r.part_of, int(summary_only(r.source, r.operator))])

    def on_FractionVerified(self, course_id: str, e: Any, position: int) -> None:
        self.mark_fractions([cell(r) for r in e.record_ids], VERIFIED_BY, (cell(e.by), iso(e.meta["recorded_at"])),
                            VERIFY_FRACTION)
        self.recount_due.add(course_id)

    def fast_FractionVerified(self, course_id: str, e: Any, position: int) -> None:
        self.mark_fractions(e.record_ids, VERIFIED_BY, (e.by, e.meta.recorded_at.iso), VERIFY_FRACTION)
        self.recount_due.add(course_id)

    def on_FractionVoided(self, course_id: str, e: Any, position: int) -> None:
        self.mark_fractions([cell(r) for r in e.record_ids], VOIDED,
                            (1, cell(e.reason), cell(e.by), iso(e.meta["recorded_at"])), VOID_FRACTION)
        self.recount_due.add(course_id)

    def fast_FractionVoided(self, course_id: str, e: Any, position: int) -> None:
        self.mark_fractions(e.record_ids, VOIDED, (1, e.reason, e.by, e.meta.recorded_at.iso), VOID_FRACTION)
        self.recount_due.add(course_id)

    def set_course(self, course_id: str, column: str, value: Any) -> None:
        self.conn.execute(f"UPDATE courses SET [{column}]=? WHERE id=?", [cell(value), course_id])

    def on_CentreAssigned(self, course_id: str, e: Any, position: int) -> None:
        centres = self.course_json(course_id, "assigned_centres")
        self.set_course(course_id, "assigned_centres", dumps(centres + [e.centre]))

    def on_CentreUnassigned(self, course_id: str, e: Any, position: int) -> None:
        centres = [c for c in self.course_json(course_id, "assigned_centres") if c != e.centre]
        self.set_course(course_id, "assigned_centres", dumps(centres))

    def on_TriageSet(self, course_id: str, e: Any, position: int) -> None:
        self.set_course(course_id, "triage", e.code)

    def on_FallbackPlanAdded(self, course_id: str, e: Any, position: int) -> None:
        plans = self.course_json(course_id, "plans")
        self.set_course(course_id, "plans", dumps(plans + [e.plan]))

    def on_StatusChanged(self, course_id: str, e: Any, position: int) -> None:
        self.conn.execute(SET_STATUS, [cell(e.status), cell(e.reason or None), course_id])

    def on_CourseFlagged(self, course_id: str, e: Any, position: int) -> None:
        flag = {"kind": e.kind, "reason": e.reason, "record_ids": e.record_ids, "centre": e.meta["centre"],
                "at": iso(e.meta["recorded_at"])}
        self.set_course(course_id, "flags", dumps(self.course_json(course_id, "flags") + [flag]))

    def course_json(self, course_id: str, column: str) -> list:
        row = self.conn.execute(f"SELECT [{column}] FROM courses WHERE id=?", [course_id]).fetchone()
        return json.loads(row[0]) if row[0] is not None else []

    def recount(self, course_id: str) -> None:
        """The course row's counts, as the ledger counts them (`ledger.counts.tally`)."""
        records = [Counted(g, n, bool(v), by, w is not None and w != "[]", datetime.fromisoformat(at), c, at)
                   for g, n, v, by, w, at, c in self.conn.execute(COUNTED, [course_id])]
        counts = tally(records)
        last = counts.last
        self.conn.execute(SET_COUNTS, [counts.delivered, counts.awaiting_verification, counts.with_warnings,
                                       last.text if last else None,  # as the record states it
                                       last.centre if last else None, course_id])

    # ---- queries ----------------------------------------------------------------------------

    def courses(self, centre: str | None = None, status: str | None = None, billed: bool = False) -> list[dict]:
        """All courses, or those a centre sees (`ledger.access.centre_sees`: home centre or assigned to
        it; with `billed`, also those it bills or has a share of in a split: what its finance sees),
        in the courses' order (patient id, registration). A page of them: `course_page`."""
        return self.course_page(centre, billed, status=status)[0]

    def course(self, course_id: str) -> dict | None:
        rows = list(self.db["courses"].rows_where("id = ?", [course_id]))
        if not rows:
            return None
        course = decode(rows[0])
        course["fractions"] = self.fractions(course_id)
        course["incidents"] = self.incidents_for_course(course_id)
        course["last_received"] = self.course_receipt(course_id)
        return course

    def fractions(self, course_id: str) -> list[dict]:
        """The course's sessions, each with what the OIS acknowledged importing (or None)."""
        rows = self.db.query(
            "SELECT f.*, o.set_id AS ois_set_id, o.acknowledged_at AS ois_acknowledged_at, "
            "o.acknowledged_by AS ois_acknowledged_by FROM fractions f "
            "LEFT JOIN ois_imports o ON o.record_id = f.record_id WHERE f.course_id = ? "
            "ORDER BY f.grp, f.number, f.delivered_at, f.position",
            [course_id],
        )
        return [decode(row) for row in rows]

    def awaiting_verification(self, centre: str) -> list[dict]:
        """Sessions delivered at `centre` that nobody has verified yet (the verify queue), oldest first."""
        rows = self.db.query(
            "SELECT f.*, c.patient_id, c.patient_name, c.birth_date, c.plan_label, c.home_centre FROM fractions f "
            "JOIN courses c ON c.id = f.course_id WHERE f.centre = ? AND f.voided = 0 AND f.verified_by IS NULL "
            "ORDER BY f.delivered_at, f.position",
            [centre],
        )
        return [decode(row) for row in rows]

    def dump(self) -> dict[str, list[dict]]:
        """Every row of every table, in key order (to compare a rebuild with the incremental model)."""
        return {
            "courses": list(self.db["courses"].rows_where(order_by="id")),
            "fractions": list(self.db["fractions"].rows_where(order_by="record_id")),
            "ois_imports": list(self.db["ois_imports"].rows_where(order_by="record_id")),
            **self.dump_billing(),
            **self.dump_access(),
        }


def decode(row: dict) -> dict:
    out = {k: (json.loads(v) if k in JSON_COLUMNS and v is not None else v) for k, v in row.items()}
    if "amendments" in out and out["amendments"] is None:
        out["amendments"] = []  # a course never amended
    if "grp" in out:
        out["group"] = out.pop("grp")
    for flag in ("voided", "summary_only"):
        if flag in out and out[flag] is not None:
            out[flag] = bool(out[flag])
    out.pop("position", None)
    return out


def iter_events(app: FractionLedger, start: int = 0, batch: int = BATCH) -> Iterator[dict]:
    """The whole log in order, as plain dicts (for `fraction-ledger events`)."""
    while True:
        notifications = app.recorder.select_notifications(start, batch, inclusive_of_start=False)
        for n in notifications:
            event = app.mapper.to_domain_event(n)
            payload = {k: v for k, v in event.__dict__.items() if k not in ("originator_id", "originator_version", "timestamp")}
            yield {
                "position": n.id,
                "stream": str(n.originator_id),
                "version": n.originator_version,
                "type": n.topic.split(":", 1)[1],
                "timestamp": event.timestamp,
                **payload,
            }
        if len(notifications) < batch:
            return
        start = notifications[-1].id
