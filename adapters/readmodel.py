"""Read models: the courses and fractions tables, pulled from the event log.

The projector reads notifications after its stored position and applies them in one
SQLite transaction together with the new position, so a crash never half-applies a
batch. The tables are disposable: `rebuild` drops them and replays the whole log, which
must give the same rows. Lists, worklists and reports read these tables.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import sqlite_utils

from adapters.files import create_private
from adapters.readmodel_access import ACCESS_TABLES, AccessLogTables
from adapters.readmodel_billing import BILLING_TABLES, BillingTables
from adapters.readmodel_gaps import GAP_COLUMNS, GAP_JSON_COLUMNS, GapTables
from adapters.readmodel_receipts import RECEIPT_TABLES, RECEIPT_TOPIC, ReceiptTables
from ledger.access import centre_sees
from ledger.counts import tally
from ledger.summaries import summary_only
from ledger.service import FractionLedger

BATCH = 500
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


class ReadModel(GapTables, AccessLogTables, BillingTables, ReceiptTables):
    def __init__(self, path: Path | str, source: str):
        """`source` names the event log; a read model built from another log is rebuilt."""
        create_private(path)  # patient names: 0600 (its -wal/-shm follow)
        conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        self.db = sqlite_utils.Database(conn)
        self.source = source
        self.guard: Any = None  # adapters.log_guard.LogGuard: what the chain covers (set by adapters.runtime)
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

    def close(self) -> None:
        self.db.close()

    # ---- projection -------------------------------------------------------------------------

    def position(self) -> int:
        row = self.db.execute("SELECT position, source FROM position WHERE name='main'").fetchone()
        if row is None or row[1] != self.source:
            return 0
        return row[0]

    def catch_up(self, app: FractionLedger) -> int:
        """Apply every event recorded since the stored position; returns how many."""
        applied = 0
        while True:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                row = self.db.execute("SELECT position, source, chain FROM position WHERE name='main'").fetchone()
                start = row[0] if row else 0
                if row is None or row[1] != self.source or row[2] != chain_hash_at(app, start):
                    # No position (a new read model, or one an older version made, whose position was
                    # dropped when its columns were added), built from another log, or the log at this
                    # path was replaced (restored from a backup, say): start again from empty tables.
                    self.clear()
                    start = 0
                notifications = app.recorder.select_notifications(start, BATCH, inclusive_of_start=False)
                more = len(notifications) == BATCH
                if self.guard is not None and notifications:
                    # Project only what the hash chain covers: the tables stop before a bad event.
                    verified = self.guard.cover(notifications[-1].id)
                    notifications = [n for n in notifications if n.id <= verified]
                    more = more and self.guard.problem is None
                for n in notifications:
                    self.apply(app, n)
                if notifications:
                    last = notifications[-1].id
                    self.db["position"].upsert(
                        {"name": "main", "position": last, "source": self.source, "chain": chain_hash_at(app, last)},
                        pk="name",
                    )
                if self.guard is not None and notifications:  # only when the tables move: a read writes nothing
                    self.store_verified_head(self.guard.position, self.guard.head)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            applied += len(notifications)
            if not more:
                return applied

    def verified_head(self) -> tuple[int, str] | None:
        """The position and chain hash the log guard verified up to, if this read model is of this log."""
        row = self.db.execute("SELECT position, source, chain FROM position WHERE name='chain'").fetchone()
        return (row[0], row[2]) if row is not None and row[1] == self.source and row[2] else None

    def store_verified_head(self, position: int, hash_: str) -> None:
        if self.verified_head() != (position, hash_):
            self.db["position"].upsert({"name": "chain", "position": position, "source": self.source, "chain": hash_},
                                       pk="name")

    def rebuild(self, app: FractionLedger) -> int:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.clear()
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return self.catch_up(app)

    def clear(self) -> None:
        for table in ("courses", "fractions", "position", "ois_imports", *BILLING_TABLES, *RECEIPT_TABLES,
                      *ACCESS_TABLES):
            self.db.execute(f"DELETE FROM {table}")

    def apply(self, app: FractionLedger, notification: Any) -> None:
        if notification.topic == OIS_IMPORT_TOPIC:
            return self.on_OisImport(app.mapper.to_domain_event(notification))
        if notification.topic == RECEIPT_TOPIC:
            return self.on_Receipt(app.mapper.to_domain_event(notification))
        if not notification.topic.startswith(COURSE_TOPIC):
            if self.apply_access(app, notification):
                return None
            return self.apply_billing(app, notification)
        event = app.mapper.to_domain_event(notification)
        kind = notification.topic[len(COURSE_TOPIC):]
        handler = getattr(self, "on_" + kind, None)
        if handler is None:
            return
        course_id = str(notification.originator_id)
        handler(course_id, event, notification.id)
        self.db.execute("UPDATE courses SET version=? WHERE id=?", [notification.originator_version, course_id])

    def on_OisImport(self, e: Any) -> None:
        """The OIS confirmed it imported these records (`reconcile acknowledge`)."""
        self.db["ois_imports"].upsert_all(
            [{"record_id": rid, "course_id": item["course_id"], "set_id": e.set_id,
              "acknowledged_at": iso(e.meta["recorded_at"]), "acknowledged_by": e.by}
             for item in e.items for rid in item["record_ids"]],
            pk="record_id",
        )

    def ois_imports(self) -> dict[str, dict]:
        """record id -> {set_id, acknowledged_at, acknowledged_by}"""
        return {r.pop("record_id"): r for r in self.db["ois_imports"].rows_where(select="record_id, set_id, acknowledged_at, acknowledged_by")}

    def on_Registered(self, course_id: str, e: Any, position: int) -> None:
        plan = e.plan
        self.db["courses"].insert(
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
            }
        )

    def on_FractionDelivered(self, course_id: str, e: Any, position: int) -> None:
        r = e.record
        self.db["fractions"].insert(
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
            }
        )
        self.recount(course_id)

    def on_FractionVerified(self, course_id: str, e: Any, position: int) -> None:
        for record_id in e.record_ids:
            self.db["fractions"].update(record_id, {"verified_by": e.by, "verified_at": iso(e.meta["recorded_at"])})
        self.recount(course_id)

    def on_FractionVoided(self, course_id: str, e: Any, position: int) -> None:
        for record_id in e.record_ids:
            self.db["fractions"].update(
                record_id,
                {"voided": 1, "void_reason": e.reason, "voided_by": e.by, "voided_at": iso(e.meta["recorded_at"])},
            )
        self.recount(course_id)

    def on_CentreAssigned(self, course_id: str, e: Any, position: int) -> None:
        centres = self.course_json(course_id, "assigned_centres")
        self.db["courses"].update(course_id, {"assigned_centres": dumps(centres + [e.centre])})

    def on_CentreUnassigned(self, course_id: str, e: Any, position: int) -> None:
        centres = [c for c in self.course_json(course_id, "assigned_centres") if c != e.centre]
        self.db["courses"].update(course_id, {"assigned_centres": dumps(centres)})

    def on_TriageSet(self, course_id: str, e: Any, position: int) -> None:
        self.db["courses"].update(course_id, {"triage": e.code})

    def on_FallbackPlanAdded(self, course_id: str, e: Any, position: int) -> None:
        plans = self.course_json(course_id, "plans")
        self.db["courses"].update(course_id, {"plans": dumps(plans + [e.plan])})

    def on_StatusChanged(self, course_id: str, e: Any, position: int) -> None:
        self.db["courses"].update(course_id, {"status": e.status, "status_reason": e.reason or None})

    def on_CourseFlagged(self, course_id: str, e: Any, position: int) -> None:
        flag = {"kind": e.kind, "reason": e.reason, "record_ids": e.record_ids, "centre": e.meta["centre"],
                "at": iso(e.meta["recorded_at"])}
        self.db["courses"].update(course_id, {"flags": dumps(self.course_json(course_id, "flags") + [flag])})

    def course_json(self, course_id: str, column: str) -> list:
        row = self.db.execute(f"SELECT {column} FROM courses WHERE id=?", [course_id]).fetchone()
        return json.loads(row[0]) if row[0] is not None else []

    def recount(self, course_id: str) -> None:
        """The course row's counts, as the ledger counts them (`ledger.counts.tally`)."""
        rows = self.db.execute(
            "SELECT grp, number, voided, verified_by, warnings, delivered_at, centre FROM fractions WHERE course_id=?",
            [course_id],
        ).fetchall()
        records = [SimpleNamespace(group=g, number=n, voided=bool(v), verified_by=by, warnings=json.loads(w or "[]"),
                                   delivered_at=datetime.fromisoformat(at), centre=c, text=at)
                   for g, n, v, by, w, at, c in rows]
        counts = tally(records)
        last = counts.last
        self.db["courses"].update(
            course_id,
            {
                "fractions_delivered": counts.delivered,
                "awaiting_verification": counts.awaiting_verification,
                "fractions_with_warnings": counts.with_warnings,
                "last_fraction_at": last.text if last else None,  # as the record states it
                "last_fraction_centre": last.centre if last else None,
            },
        )

    # ---- queries ----------------------------------------------------------------------------

    def courses(self, centre: str | None = None, status: str | None = None, billed: bool = False) -> list[dict]:
        """All courses, or those a centre sees (`ledger.access.centre_sees`: home centre or assigned to
        it; with `billed`, also those it bills or has a share of in a split: what its finance sees)."""
        where, params = ("status = ?", [status]) if status is not None else (None, [])
        rows = self.db["courses"].rows_where(where, params, order_by="patient_id, registered_at, id")
        if centre is None:
            return [decode(row) for row in rows]
        parties: dict[str, set[str]] = {}
        if billed:
            for course_id, party in self.db.execute(
                    "SELECT course_id, billing_centre FROM splits WHERE billing_centre IS NOT NULL "
                    "UNION SELECT course_id, centre FROM split_shares").fetchall():
                parties.setdefault(course_id, set()).add(party)
        return [decode(c) for c in rows if centre_sees(centre, c["home_centre"], json.loads(c["assigned_centres"] or "[]"),
                                                       parties.get(c["id"], set()) if billed else None)]

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
