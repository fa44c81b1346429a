"""A centre's day list: which patients are expected on a day, what was delivered, who is missing.

Pure rules on a course and its events (no store, no clock). A course is expected at a centre on a
day when that centre is in charge of it on that day (its newest partner assigned by then, else
its home centre: `in_charge_on`), the day is a treatment day of its schedule (ledger/schedule.py,
in the home centre's zone) and the course still had fractions to give. What a centre delivered is
the sessions recorded there on that local day; a patient expected and not treated is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ledger import schedule as schedules
from ledger.course import ACTIVE, Course


@dataclass
class DayEntry:
    course_id: str
    patient_id: str
    patient_name: str
    label: str
    expected: int  # fractions the schedule intends on the day (0 when not expected here)
    delivered: list[dict] = field(default_factory=list)  # {number, group, at, machine, operator}
    status: str = "expected"  # "delivered", "missing", "expected" (the day is not over), "unexpected"


def in_charge_on(course: Course, events: list[Any], day: date, zone: str) -> str:
    """The centre treating the course on `day`: its newest partner assigned by the end of that
    day (and not unassigned), else its home centre."""
    partners: list[str] = [c for c in _registered_centres(events) if c != course.home_centre]
    for e in events:
        kind = type(e).__name__
        if kind not in ("CentreAssigned", "CentreUnassigned"):
            continue
        if schedules.local_day(e.meta["recorded_at"], zone) > day:
            break
        if e.centre == course.home_centre:
            continue
        if kind == "CentreAssigned":
            partners = [c for c in partners if c != e.centre] + [e.centre]
        elif e.centre in partners:
            partners.remove(e.centre)
    return partners[-1] if partners else course.home_centre


def _registered_centres(events: list[Any]) -> list[str]:
    for e in events:
        if type(e).__name__ == "Registered":
            return list(getattr(e, "assigned_centres", []) or [])
    return []


def entry_for(course: Course, events: list[Any], centre: str, day: date, zone: str, day_over: bool) -> DayEntry | None:
    """The course on `centre`'s list for `day`, or None when it neither was expected nor treated there."""
    records = [r for r in course.active_records()
               if r.centre == centre and schedules.local_day(r.delivered_at, zone) == day and r.part_of is None]
    before = {(r.group, r.number) for r in course.active_records() if schedules.local_day(r.delivered_at, zone) < day}
    expected = 0
    if course.status == ACTIVE and in_charge_on(course, events, day, zone) == centre \
            and len(before) < course.fractions_planned():
        expected = schedules.fractions_on(course.schedule_in(zone), day)
    if not expected and not records:
        return None
    delivered = [{"number": r.number, "group": r.group, "at": r.delivered_at.isoformat(), "machine": r.machine,
                  "operator": r.operator} for r in sorted(records, key=lambda r: r.delivered_at)]
    given = len({(r.group, r.number) for r in records})
    if not expected:
        status = "unexpected"
    elif given >= expected:
        status = "delivered"
    else:
        status = "missing" if day_over else "expected"
    return DayEntry(course_id=str(course.id), patient_id=course.patient["id"], patient_name=course.patient["name"],
                    label=course.plan.label, expected=expected, delivered=delivered, status=status)
