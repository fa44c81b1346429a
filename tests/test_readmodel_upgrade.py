"""A read model made by an older version (a column missing) is rebuilt on first use, from empty
tables: its old rows never collide with the replayed events."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

from adapters.runtime import Ledger
from ledger.service import Actor
from tests.conftest import Clock
from tests.http_support import course_body

SETUP = Actor("setup", "HOME")


def rows(ledger: Ledger) -> tuple[list, list]:
    read = ledger.fresh()
    return (sorted(map(dict, read.db.execute("SELECT * FROM courses").fetchall())),
            sorted(map(dict, read.db.execute("SELECT * FROM fractions").fetchall()), key=lambda r: r["record_id"]))


def test_an_older_read_model_with_a_column_missing_is_rebuilt_not_replayed_onto(tmp_path):
    db, read_db = str(tmp_path / "ledger.sqlite3"), str(tmp_path / "read.sqlite3")
    with Ledger(db, clock=Clock(), read_db=read_db) as ledger:
        cid = ledger.app.register_course(course_body("P-1", "1.2.3.4.1"), SETUP)["id"]
        ledger.app.log_fraction(cid, {"number": 1, "centre": "HOME", "machine": "L1", "operator": "rtt",
                                      "delivered_at": datetime(2026, 11, 2, 9, tzinfo=timezone.utc)}, SETUP)
        ledger.read.db.conn.row_factory = sqlite3.Row
        before = rows(ledger)
    with sqlite3.connect(read_db) as old:  # what an older version left: the same rows, one column fewer
        old.execute("ALTER TABLE fractions DROP COLUMN summary_only")
    with Ledger(db, clock=Clock(), read_db=read_db) as ledger:
        ledger.read.db.conn.row_factory = sqlite3.Row
        assert rows(ledger) == before
