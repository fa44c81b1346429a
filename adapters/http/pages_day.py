"""The RTT's day at a centre: the courses due today first (`ledger/day.py`), found by patient id
or name, filtered by status, triage or "awaiting verification", sorted by any column; and the
verify queue, the fractions given here that wait for a second check by someone else."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Annotated
from urllib.parse import urlencode

import msgspec
from litestar import Request, Router, get
from litestar.params import QueryParameter
from litestar.response import Template

from adapters.http import access_log
from adapters.http.auth import current
from adapters.http.pages import backend, page
from ledger import day as days
from ledger import schedule as schedules
from schemas.schedule import Schedule

Query = Annotated[str | None, QueryParameter(max_length=100)]
STATUSES = ("active", "suspended", "completed")
SORTS = {
    "day": lambda c: days.day_order(c["due"], c["triage"], c["patient_id"]),
    "patient": lambda c: (c["patient_name"] or "", c["patient_id"]),
    "plan": lambda c: c["plan_label"] or "",
    "triage": lambda c: (c["triage"] or 9, c["patient_id"]),
    "fractions": lambda c: (c["fractions_delivered"] / max(c["fractions_planned"] or 1, 1), c["patient_id"]),
    "last": lambda c: c["last_fraction_at"] or "",
    "awaiting": lambda c: (c["awaiting_verification"] or 0, c["patient_id"]),
    "status": lambda c: (c["status"], c["patient_id"]),
}


def folded(text: str | None) -> str:
    """For search: case, accents and the DICOM name separator ignored (Müller finds MÜLLER^ZOË)."""
    plain = unicodedata.normalize("NFKD", (text or "").replace("^", " ").replace(",", " "))
    return " ".join("".join(ch for ch in plain if not unicodedata.combining(ch)).casefold().split())


def local_day(iso: str | None, where) -> date | None:
    return schedules.local_day(datetime.fromisoformat(iso), where) if iso else None


class DayView:
    """What the worklist was asked for (search, filters, sort) and the links that change one of them."""

    def __init__(self, q: str | None, status: str | None, triage: str | None, awaiting: str | None,
                 sort: str | None, direction: str | None):
        self.q = (q or "").strip()
        self.status = status if status in STATUSES else ""
        self.triage = triage if triage in {str(n) for n in range(1, 6)} else ""
        self.awaiting = awaiting == "yes"
        self.sort = sort if sort in SORTS else "day"
        self.direction = "desc" if direction == "desc" else "asc"

    def params(self, **override) -> dict:
        values = {"q": self.q, "status": self.status, "triage": self.triage, "awaiting": "yes" if self.awaiting else "",
                  "sort": self.sort, "dir": self.direction, **override}
        return {k: v for k, v in values.items() if v and not (k == "sort" and v == "day") and not (k == "dir" and v == "asc")}

    def sort_link(self, key: str) -> str:
        flip = "desc" if self.sort == key and self.direction == "asc" else "asc"
        return "/worklist?" + urlencode(self.params(sort=key, dir=flip))

    def keep(self, row: dict) -> bool:
        if self.status and row["status"] != self.status:
            return False
        if self.triage and str(row["triage"]) != self.triage:
            return False
        if self.awaiting and not row["awaiting_verification"]:
            return False
        if self.q:
            wanted = folded(self.q)
            return wanted in folded(row["patient_id"]) or all(w in folded(row["patient_name"]) for w in wanted.split())
        return True

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.status or self.triage or self.awaiting)


@get("/worklist", opt={"action": "courses.list"}, sync_to_thread=True, include_in_schema=False)
def worklist(request: Request, q: Query = None, status: Query = None, triage: Query = None, awaiting: Query = None,
             sort: Query = None, dir: Query = None) -> Template:
    b, who = backend(request), current(request)
    view = DayView(q, status, triage, awaiting, sort, dir)
    where = b.app.zone_of(who.centre)  # the day as the people of this centre live it (ledger/local_time.py)
    today = schedules.local_day(b.app.clock(), where)
    every = b.seen_courses(who)
    for c in every:
        given = msgspec.convert(c["schedule"], Schedule) if c.get("schedule") else None
        c["due"] = days.due_state(today, c["status"], c["fractions_delivered"] or 0, c["fractions_planned"] or 0,
                                  local_day(c["last_fraction_at"], where), given)
    shown = [c for c in every if view.keep(c)]
    shown.sort(key=SORTS[view.sort], reverse=view.direction == "desc")
    access_log.saw_rows(shown)
    seen = {c["id"] for c in every}
    queue = [f for f in b.read(lambda r: r.awaiting_verification(who.centre))
             if f["course_id"] in seen and f["operator"] != who.user]
    access_log.saw_rows(queue, key="course_id")
    counts = {state: sum(1 for c in every if c["due"] == state) for state in (days.DUE, days.TREATED)}
    return page(request, "worklist.html", courses=shown, view=view, today=today, counts=counts, queue=queue,
                total=len(every), statuses=STATUSES, sources=b.sources_view(), gap_alarms=b.gap_alarms_view(who))


router = Router("/", route_handlers=[worklist])
