"""Read-model tables for what the sources sent (mixed into `ReadModel`): per source, the last
object received; per course, when the ledger last received something for it and from where.
Projected in the same transaction and from the same position as the course tables."""

from __future__ import annotations

import json
from typing import Any

from adapters.readmodel_sql import cells, insert_sql

RECEIPT_TOPIC = "ledger.receipts:Receipt.Received"
RECEIPT_TABLES = ("sources", "course_receipts", "received_objects")

SOURCE_COLUMNS = {"name": str, "channel": str, "last_received_at": str, "last_kind": str, "last_status": str,
                  "last_course_id": str, "objects": int, "refused": int}
COURSE_RECEIPT_COLUMNS = {"course_id": str, "last_received_at": str, "source": str, "channel": str}
OBJECT_COLUMNS = {"sop_instance_uid": str, "source": str, "status": str, "received_at": str}
UPSERT_OBJECT = insert_sql("received_objects", OBJECT_COLUMNS, upsert_on=("sop_instance_uid",))
UPSERT_COURSE_RECEIPT = insert_sql("course_receipts", COURSE_RECEIPT_COLUMNS, upsert_on=("course_id",))


class ReceiptTables:
    db: Any
    conn: Any

    def create_receipt_tables(self) -> None:
        self.db["sources"].create(SOURCE_COLUMNS, pk="name", if_not_exists=True)
        self.db["course_receipts"].create(COURSE_RECEIPT_COLUMNS, pk="course_id", if_not_exists=True)
        self.db["received_objects"].create(OBJECT_COLUMNS, pk="sop_instance_uid", if_not_exists=True)

    def on_Receipt(self, e: Any) -> None:
        at = e.meta["recorded_at"].isoformat()
        refused = 1 if e.status == "error" else 0
        self.conn.execute(
            "INSERT INTO sources (name, channel, last_received_at, last_kind, last_status, last_course_id, objects, "
            "refused) VALUES (?, ?, ?, ?, ?, ?, 1, ?) ON CONFLICT(name) DO UPDATE SET channel=excluded.channel, "
            "last_received_at=excluded.last_received_at, last_kind=excluded.last_kind, "
            "last_status=excluded.last_status, last_course_id=excluded.last_course_id, objects=objects+1, "
            "refused=refused+excluded.refused",
            cells({"source": e.source, "channel": e.channel, "at": at, "kind": e.kind, "status": e.status,
                   "course_id": e.course_id, "refused": refused},
                  ("source", "channel", "at", "kind", "status", "course_id", "refused")))
        self.conn.execute(UPSERT_OBJECT, cells({"sop_instance_uid": e.sop_instance_uid, "source": e.source,
                                                "status": e.status, "received_at": at}, OBJECT_COLUMNS))
        if e.course_id:
            self.conn.execute(UPSERT_COURSE_RECEIPT, cells({"course_id": e.course_id, "last_received_at": at,
                                                            "source": e.source, "channel": e.channel},
                                                           COURSE_RECEIPT_COLUMNS))

    def accepted_objects(self) -> set[str]:
        """SOP Instance UIDs some source handed over and the ledger took (imported, registered,
        unchanged or with a warning); a refused one is asked for again."""
        return {r[0] for r in self.db.execute("SELECT sop_instance_uid FROM received_objects WHERE status != 'error'")}

    def held_objects(self) -> set[str]:
        """Every SOP Instance UID the ledger holds, however it came: plans of its courses, session
        records (their own UID), summaries (their UID before /group/number), and objects taken."""
        held = self.accepted_objects()
        for (plans,) in self.db.execute("SELECT plans FROM courses"):
            held.update(p["uid"] for p in json.loads(plans or "[]"))
        for (uid,) in self.db.execute("SELECT DISTINCT source_uid FROM fractions WHERE source_uid IS NOT NULL"):
            held.add(uid.split("/", 1)[0])
        return held

    def sources(self) -> list[dict]:
        return list(self.db["sources"].rows_where(order_by="name"))

    def course_receipt(self, course_id: str) -> dict | None:
        rows = list(self.db["course_receipts"].rows_where("course_id = ?", [course_id]))
        return rows[0] if rows else None
