"""The read model's part for treatment gaps: each course's schedule, site, gap category and
prescription amendments (columns of `courses`), and the gaps worklist computed from them with
the domain's own functions (ledger/gaps.py), never by loading every aggregate."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import msgspec

from ledger import gaps, schedule as schedules
from ledger.amendments import signed_at
from schemas.prescription import Amendment
from schemas.schedule import Schedule

GAP_COLUMNS = {"schedule": str, "site": str, "gap_category": int, "amendments": str, "prescribed": str}
GAP_JSON_COLUMNS = {"schedule", "amendments", "prescribed"}


def dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


class GapTables:
    db: Any

    def on_ScheduleSet(self, course_id: str, e: Any, position: int) -> None:
        self.db["courses"].update(course_id, {"schedule": dumps(e.schedule) if e.schedule else None, "site": e.site})

    def on_GapCategorySet(self, course_id: str, e: Any, position: int) -> None:
        self.db["courses"].update(course_id, {"gap_category": e.category})

    def on_PrescriptionAmended(self, course_id: str, e: Any, position: int) -> None:
        amendments = self.course_json(course_id, "amendments")  # type: ignore[attr-defined]
        self.db["courses"].update(course_id, {"amendments": dumps(amendments + [e.amendment])})

    def on_AmendmentCountersigned(self, course_id: str, e: Any, position: int) -> None:
        """The same change as `Prescriptions.apply_countersign`, on the row."""
        amendments = self.course_json(course_id, "amendments")  # type: ignore[attr-defined]
        changed = None
        for a in amendments:
            if a["id"] == e.amendment_id:
                a.update(countersigned_by=e.meta["user"], countersigned_centre=e.meta["centre"],
                         countersigned_at=signed_at(e.meta))
                if e.after is not None:
                    a.update(before=e.before, after=e.after)
                changed = a
        update: dict[str, Any] = {"amendments": dumps(amendments)}
        if e.after is not None and changed is not None and changed.get("group") is not None:
            row = self.db.execute("SELECT prescribed, plans FROM courses WHERE id=?", [course_id]).fetchone()
            prescribed = json.loads(row[0]) if row[0] else {}
            prescribed[str(changed["group"])] = e.after
            original = {str(g["number"]): g["fractions_planned"] for g in json.loads(row[1])[0]["fraction_groups"]}
            update["prescribed"] = dumps(prescribed)
            update["fractions_planned"] = sum({**original, **prescribed}.values())
        self.db["courses"].update(course_id, update)

    # ---- queries ----------------------------------------------------------------------------

    def first_sessions(self, course_ids: list[str]) -> dict[str, list[tuple[int, int, str]]]:
        """course id -> (group, number, delivery time ISO of its first session) of each fraction delivered."""
        out: dict[str, list[tuple[int, int, str]]] = {c: [] for c in course_ids}
        if not course_ids:
            return out
        marks = ",".join("?" * len(course_ids))
        for course_id, grp, number, first in self.db.execute(
            f"SELECT course_id, grp, number, MIN(delivered_at) FROM fractions WHERE voided=0 "
            f"AND course_id IN ({marks}) GROUP BY course_id, grp, number ORDER BY course_id, grp, number", course_ids,
        ).fetchall():
            out[course_id].append((grp, number, first))
        return out


def gap_of_row(row: dict, firsts: list[str], now: datetime, zone: Any, threshold: int) -> gaps.Gap:
    """A course's gap from its read-model row (decoded) and its fractions' first sessions."""
    moments = [datetime.fromisoformat(f) for f in firsts]
    given = msgspec.convert(row["schedule"], Schedule) if row.get("schedule") else None
    registered = datetime.fromisoformat(row["registered_at"])
    base = gaps.intended(given, min(moments) if moments else registered, zone)
    amendments = [msgspec.convert(a, Amendment) for a in row.get("amendments") or []]
    original = sum(g["fractions_planned"] for g in row["plans"][0]["fraction_groups"])
    return gaps.gap_of(base, amendments, original, row["fractions_planned"],
                       [schedules.local_day(m, zone) for m in moments], schedules.local_day(now, zone),
                       gaps.category_of(row.get("gap_category"), row.get("site")), threshold)
