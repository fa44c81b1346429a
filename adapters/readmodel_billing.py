"""Read-model tables for incidents, agreements and splits (mixed into `ReadModel`).

They are projected in the same transaction and from the same position as the course
tables, so a rebuild gives the same rows. Money is stored as TEXT (the Decimal's exact
digits) and summed as Decimal, never as a float. Statements read only these tables.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec

from adapters.readmodel_sql import cells, insert_sql
from ledger.billing import statement_of
from ledger.messages import english, is_message

INCIDENT_TOPIC = "ledger.incident:Incident."
AGREEMENT_TOPIC = "ledger.billing:Agreement."
SETTLEMENT_TOPIC = "ledger.billing:Settlement."
BILLING_TABLES = ("incidents", "agreements", "splits", "split_shares")

INCIDENT_COLUMNS = {
    "id": str, "centre": str, "home_centre": str, "course_id": str, "fraction": int, "category": str,
    "severity": str, "description": str, "description_said": str, "registered_by": str, "occurred_at": str, "registered_at": str,
    "recorded_by": str, "status": str, "follow_ups": str, "resolution": str, "closed_by": str,
    "closed_at": str, "attempt": str, "position": int,
}
AGREEMENT_COLUMNS = {
    "agreement_id": str, "version": int, "billing_centre": str, "partner": str, "rule": str,
    "course_amount": str, "fee_per_fraction": str, "tariffs": str, "valid_from": str, "valid_to": str,
    "recorded_at": str, "recorded_by": str,
}
SPLIT_COLUMNS = {
    "course_id": str, "sequence": int, "current": int, "status": str, "home_centre": str,
    "billing_centre": str, "course_amount": str, "category": str, "first_fraction_on": str,
    "completed_on": str, "agreements": str, "reason": str, "cause": str, "recorded_at": str, "recorded_by": str,
}
SHARE_COLUMNS = {"course_id": str, "sequence": int, "centre": str, "fractions": int, "amount": str}
JSON_COLUMNS = {"follow_ups", "attempt", "tariffs", "agreements", "description_said"}

# The projection's statements, prepared once (sqlite-utils builds the schema).
INSERT_INCIDENT = insert_sql("incidents", INCIDENT_COLUMNS)
INSERT_AGREEMENT = insert_sql("agreements", AGREEMENT_COLUMNS)
INSERT_SPLIT = insert_sql("splits", SPLIT_COLUMNS)
INSERT_SHARE = insert_sql("split_shares", SHARE_COLUMNS)


def text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def decoded(row: dict) -> dict:
    out = {k: (json.loads(v) if k in JSON_COLUMNS and v is not None else v) for k, v in row.items()}
    if "reason" in out:
        out["reason"] = reason_of(out["reason"])
    out.pop("position", None)
    return out


def reason_text(reason: Any) -> str:
    """A split's reason as its column holds it: a message (code and values) as JSON, a plain text
    (written before reasons were codes) as it is."""
    return dumps(reason) if isinstance(reason, dict) else reason or ""


def reason_of(text: str | None) -> Any:
    """The reason back from its column: the message it was, or the plain text."""
    if text and text.startswith("{"):
        try:
            found = json.loads(text)
        except ValueError:
            return text
        return found if is_message(found) else text
    return text or ""


class BillingTables:
    db: Any
    conn: Any

    def create_billing_tables(self) -> None:
        self.db["incidents"].create(INCIDENT_COLUMNS, pk="id", if_not_exists=True)
        missing = set(INCIDENT_COLUMNS) - set(self.db["incidents"].columns_dict)
        for name in missing:  # a read model made by an older version: add the column, then rebuild
            self.db["incidents"].add_column(name, INCIDENT_COLUMNS[name])
        if missing:
            self.db["position"].delete_where()
        self.db["agreements"].create(AGREEMENT_COLUMNS, pk=("agreement_id", "version"), if_not_exists=True)
        self.db["splits"].create(SPLIT_COLUMNS, pk=("course_id", "sequence"), if_not_exists=True)
        self.db["split_shares"].create(SHARE_COLUMNS, pk=("course_id", "sequence", "centre"), if_not_exists=True)
        self.db["incidents"].create_index(["course_id"], if_not_exists=True)
        self.db["incidents"].create_index(["home_centre"], if_not_exists=True)
        self.db["splits"].create_index(["current", "completed_on"], if_not_exists=True)

    def apply_billing(self, app: Any, notification: Any) -> None:
        handler = self.billing_handler(notification.topic)
        if handler is not None:
            handler(str(notification.originator_id), app.mapper.to_domain_event(notification), notification.id)

    def billing_handler(self, topic: str) -> Any:
        """What projects `topic` here (e.g. `on_Incident_Registered`), or None."""
        for prefix in (INCIDENT_TOPIC, AGREEMENT_TOPIC, SETTLEMENT_TOPIC):
            if topic.startswith(prefix):
                kind = prefix.split(":")[1].rstrip(".")
                return getattr(self, f"on_{kind}_{topic[len(prefix):]}", None)
        return None

    # ---- incidents ---------------------------------------------------------------------------

    def on_Incident_Registered(self, incident_id: str, e: Any, position: int) -> None:
        self.conn.execute(INSERT_INCIDENT, cells({
            "id": incident_id, "centre": e.centre, "home_centre": e.home_centre, "course_id": e.course_id,
            "fraction": e.fraction, "category": e.category, "severity": e.severity, "description": english(e.description),
            "description_said": dumps(e.description) if is_message(e.description) else None,
            "registered_by": e.by, "occurred_at": text(e.occurred_at), "registered_at": text(e.meta["recorded_at"]),
            "recorded_by": e.meta["user"], "status": "open", "follow_ups": "[]", "resolution": None,
            "closed_by": None, "closed_at": None, "attempt": dumps(e.attempt) if e.attempt else None,
            "position": position,
        }, INCIDENT_COLUMNS))

    def on_Incident_FollowUpAdded(self, incident_id: str, e: Any, position: int) -> None:
        row = self.conn.execute("SELECT follow_ups FROM incidents WHERE id=?", [incident_id]).fetchone()
        entry = {"text": e.text, "by": e.by, "centre": e.meta["centre"], "at": text(e.meta["recorded_at"])}
        self.conn.execute("UPDATE incidents SET follow_ups=? WHERE id=?",
                          [dumps(json.loads(row[0]) + [entry]), incident_id])

    def on_Incident_Closed(self, incident_id: str, e: Any, position: int) -> None:
        self.conn.execute("UPDATE incidents SET status='closed', resolution=?, closed_by=?, closed_at=? WHERE id=?",
                          cells({"resolution": e.resolution, "closed_by": e.by, "closed_at": text(e.meta["recorded_at"]),
                                 "id": incident_id}, ("resolution", "closed_by", "closed_at", "id")))

    # ---- agreements and splits -----------------------------------------------------------------

    def on_Agreement_VersionAgreed(self, agreement_id: str, e: Any, position: int) -> None:
        t = e.terms
        self.conn.execute(INSERT_AGREEMENT, cells({
            "agreement_id": agreement_id, "version": t["version"], "billing_centre": t["billing_centre"],
            "partner": t["partner"], "rule": t["rule"], "course_amount": text(t["course_amount"]),
            "fee_per_fraction": text(t["fee_per_fraction"]),
            "tariffs": dumps({k: str(v) for k, v in t["tariffs"].items()}),
            "valid_from": text(t["valid_from"]), "valid_to": text(t["valid_to"]),
            "recorded_at": text(e.meta["recorded_at"]), "recorded_by": e.meta["user"],
        }, AGREEMENT_COLUMNS))

    def on_Settlement_SplitRecorded(self, settlement_id: str, e: Any, position: int) -> None:
        s = e.split
        sequence = (e.supersedes or 0) + 1
        # The split in force is the newest: the one it supersedes stops counting.
        self.conn.execute("UPDATE splits SET current=0 WHERE course_id=?", [s["course_id"]])
        self.conn.execute(INSERT_SPLIT, cells({
            "course_id": s["course_id"], "sequence": sequence, "current": 1, "status": s["status"],
            "home_centre": s["home_centre"], "billing_centre": s["billing_centre"],
            "course_amount": text(s["course_amount"]), "category": s["category"],
            "first_fraction_on": text(s["first_fraction_on"]), "completed_on": text(s["completed_on"]),
            "agreements": dumps(s["agreements"]), "reason": reason_text(s["reason"]), "cause": e.cause,
            "recorded_at": text(e.meta["recorded_at"]), "recorded_by": e.meta["user"],
        }, SPLIT_COLUMNS))
        self.conn.executemany(INSERT_SHARE, [
            cells({"course_id": s["course_id"], "sequence": sequence, "centre": share["centre"],
                   "fractions": share["fractions"], "amount": text(share["amount"])}, SHARE_COLUMNS)
            for share in s["shares"]])

    # ---- queries -----------------------------------------------------------------------------

    def incidents(self, centre: str | None = None, course_id: str | None = None, status: str | None = None,
                  home_centre: str | None = None, category: str | None = None) -> list[dict]:
        """Incidents in the order registered. `home_centre` gives what a home centre gets back:
        every incident about its patients, and every incident it registered itself."""
        where, params = [], []
        for column, value in (("centre", centre), ("course_id", course_id), ("status", status), ("category", category)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if home_centre is not None:
            where.append("(home_centre = ? OR centre = ?)")
            params += [home_centre, home_centre]
        rows = self.db["incidents"].rows_where(" AND ".join(where) or None, params, order_by="position")
        return [decoded(row) for row in rows]

    def incidents_for_course(self, course_id: str) -> list[dict]:
        """A course's incidents, near-misses included, oldest first (for the summary document)."""
        return self.incidents(course_id=str(course_id))

    def agreements(self, party: str | None = None) -> list[dict]:
        """Every version of every agreement, or of those `party` is one of the pair of."""
        where, params = (None, []) if party is None else ("billing_centre = ? OR partner = ?", [party, party])
        rows = self.db["agreements"].rows_where(where, params, order_by="billing_centre, partner, version")
        return [decoded(row) for row in rows]

    def billing_parties(self, course_id: str) -> set[str]:
        """The centres of a course's splits: who bills it and who has a share of it."""
        rows = self.db.execute(
            "SELECT billing_centre FROM splits WHERE course_id = ? AND billing_centre IS NOT NULL "
            "UNION SELECT centre FROM split_shares WHERE course_id = ?", [str(course_id), str(course_id)]).fetchall()
        return {r[0] for r in rows}

    def splits(self, course_id: str) -> list[dict]:
        """Every split of a course, oldest first, each with its shares; `current` marks the one in force."""
        out = []
        for row in self.db["splits"].rows_where("course_id = ?", [str(course_id)], order_by="sequence"):
            split = decoded(row)
            split["current"] = bool(split["current"])
            split["shares"] = [
                {"centre": s["centre"], "fractions": s["fractions"], "amount": s["amount"]}
                for s in self.db["split_shares"].rows_where(
                    "course_id = ? AND sequence = ?", [split["course_id"], split["sequence"]], order_by="centre")
            ]
            out.append(split)
        return out

    def statement(self, start: date, end: date, pair: tuple[str, str] | None = None,
                  seen_by: str | None = None) -> dict:
        """The statement of the courses completed from `start` to `end` (inclusive); which of them
        it shows, and how, is `ledger.billing.statement_of`'s decision."""
        rows = self.db.execute(
            "SELECT s.course_id, c.patient_id, s.completed_on, s.status, s.billing_centre, s.agreements, s.reason, "
            "sh.centre, sh.fractions, sh.amount, c.home_centre, c.assigned_centres "
            "FROM splits s JOIN split_shares sh ON sh.course_id = s.course_id AND sh.sequence = s.sequence "
            "LEFT JOIN courses c ON c.id = s.course_id "
            "WHERE s.current = 1 AND s.completed_on BETWEEN ? AND ? "
            "ORDER BY s.completed_on, s.course_id, sh.centre != s.billing_centre, sh.centre",
            [start.isoformat(), end.isoformat()],
        ).fetchall()
        splits: dict[str, dict] = {}
        for row in rows:
            split = splits.setdefault(row[0], {
                "course_id": row[0], "patient_id": row[1], "completed_on": row[2], "status": row[3],
                "billing_centre": row[4], "agreements": json.loads(row[5] or "[]"), "reason": reason_of(row[6]),
                "home_centre": row[10], "assigned_centres": json.loads(row[11] or "[]"), "shares": []})
            split["shares"].append({"centre": row[7], "fractions": row[8],
                                    "amount": Decimal(row[9]) if row[9] is not None else None})
        result = statement_of(list(splits.values()), pair, seen_by)
        result["period"] = {"from": start.isoformat(), "to": end.isoformat()}
        result["pair"] = list(pair) if pair else None
        return result

    def dump_billing(self) -> dict[str, list[dict]]:
        return {
            "incidents": list(self.db["incidents"].rows_where(order_by="id")),
            "agreements": list(self.db["agreements"].rows_where(order_by="agreement_id, version")),
            "splits": list(self.db["splits"].rows_where(order_by="course_id, sequence")),
            "split_shares": list(self.db["split_shares"].rows_where(order_by="course_id, sequence, centre")),
        }
