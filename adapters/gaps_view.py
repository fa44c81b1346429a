"""The gaps worklist as the pages, the API and the CLI show it: every active course a reader
sees, ordered by urgency (ledger/gaps.py `urgency`: category, then prolongation), each with its
centres, next planned fraction and what is lost; computed from the read model."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

import msgspec

from adapters.readmodel_gaps import gap_of_row
from ledger import gaps
from ledger.amendments import dose_of, next_planned, prescribed_plan
from schemas.course import Plan
from ledger.messages import said
from schemas.prescription import Amendment


def what(a: Amendment) -> dict:
    """An amendment in words (a message: rendered in the reader's language)."""
    if a.kind in ("twice_daily", "treatment_day"):
        return said(f"amendment_what.{a.kind}", day=a.day.isoformat() if a.day else "?")
    return said(f"amendment_what.{a.kind}", group=a.group, before=a.before, after=a.after, fractions=a.fractions)


def prescription_of(row: dict) -> Plan:
    """The prescription in force of a course row: its registered plan with the amended counts."""
    plan = msgspec.convert(row["plans"][0], Plan, strict=False)
    return prescribed_plan(plan, {int(k): v for k, v in (row.get("prescribed") or {}).items()})


def worklist(rows: list[dict], sessions: dict[str, list[tuple[int, int, str]]], now: datetime,
             zone_of: Callable[[str], Any], threshold: int) -> list[dict]:
    """`rows`: decoded course rows (active); `sessions`: course id -> (group, number, first delivery ISO)."""
    out = []
    for row in rows:
        firsts = sessions.get(row["id"], [])
        gap = gap_of_row(row, [f for _, _, f in firsts], now, zone_of(row["home_centre"]), threshold)
        delivered = {(g, n) for g, n, _ in firsts}
        groups = prescription_of(row).fraction_groups
        prescribed, given = dose_of(groups, delivered)
        following = next_planned(groups, delivered)
        gap = msgspec.structs.replace(gap, dose_prescribed_gy=prescribed, dose_delivered_gy=given)
        pending = [a for a in row.get("amendments") or [] if not a.get("countersigned_by")]
        out.append({
            "id": row["id"], "patient_id": row["patient_id"], "patient_name": row["patient_name"],
            "birth_date": row.get("birth_date"), "plan_label": row["plan_label"], "home_centre": row["home_centre"],
            "assigned_centres": row["assigned_centres"], "triage": row["triage"], "site": row.get("site"),
            "next_fraction": {"group": following[0], "number": following[1]} if following else None,
            "pending_amendments": len(pending),
            **msgspec.to_builtins(gap), "_gap": gap,
        })
    out.sort(key=lambda r: (*gaps.urgency(r["_gap"]), r["patient_id"], r["id"]))
    for r in out:
        r.pop("_gap")
    return out


def alarms(rows: list[dict], threshold: int) -> list[dict]:
    """The worklist's alarms as messages (rendered at the edge)."""
    return [{"id": r["id"], "patient_id": r["patient_id"], "home_centre": r["home_centre"],
             "assigned_centres": r["assigned_centres"],
             "message": said("gap.alarm", course=r["plan_label"], patient_id=r["patient_id"],
                             prolongation=r["prolongation"], threshold=threshold)}
            for r in rows if r["alarm"]]


def gaps_of(app: Any, read: Any, rows: list[dict], threshold: int) -> list[dict]:
    """The worklist of these course rows: `app` the FractionLedger (clock, centre zones), `read`
    the read model (the fractions' first sessions)."""
    zones: dict[str, Any] = {}

    def zone_of(name: str) -> Any:
        if name not in zones:
            zones[name] = app.zone_of(name)
        return zones[name]

    sessions = read.first_sessions([r["id"] for r in rows])
    return worklist(rows, sessions, app.clock(), zone_of, threshold)
