"""How to reach a patient, and the calls made to tell them where and when to go.

St. Luc's lesson was communication: every patient whose treatment moves must be told, and the
department must know who was reached. One stream per patient of a home centre holds the contact
details (each change a new event, never an edit) and every call ("called", "not reached").

The details are personal data beyond what treatment needs: they are never projected into the
read model (so they are on disk only inside the event log, which is encrypted at rest when the
ledger is) and read only by the roles `ledger.access` lets read them ("contacts.read").

Why a patient must be called on a day (`call_reasons`): their course was moved to a partner
that day (go there, from its next treatment day by the course's schedule), resumed with a new start
date, or suspended.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate, event

from ledger.course import NAMESPACE
from ledger.messages import said


def contact_id_for(home_centre: str, patient_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"contact/{home_centre}/{patient_id}")


class PatientContact(Aggregate):
    @staticmethod
    def create_id(home_centre: str, patient_id: str, **_: Any) -> uuid.UUID:
        return contact_id_for(home_centre, patient_id)

    @event("Opened")
    def __init__(self, *, home_centre: str, patient_id: str, meta: dict):
        self.home_centre = home_centre
        self.patient_id = patient_id
        self.details: dict | None = None
        self.calls: list[dict] = []

    def set_details(self, details: dict, meta: dict) -> bool:
        if details == self.details:
            return False
        self._details_set(details=details, meta=meta)
        return True

    def record_call(self, course_id: str, day: date, outcome: str, note: str, meta: dict) -> dict:
        self._called(course_id=course_id, day=day, outcome=outcome, note=note, meta=meta)
        return self.calls[-1]

    def calls_on(self, course_id: str, day: date) -> list[dict]:
        return [c for c in self.calls if c["course_id"] == course_id and c["day"] == day]

    @event("DetailsSet")
    def _details_set(self, details: dict, meta: dict) -> None:
        self.details = details

    @event("CallRecorded")
    def _called(self, course_id: str, day: date, outcome: str, note: str, meta: dict) -> None:
        self.calls.append({"course_id": course_id, "day": day, "outcome": outcome, "note": note,
                           "by": meta["user"], "at": meta["recorded_at"]})


def next_working_day(day: date) -> date:
    following = day + timedelta(days=1)
    while following.weekday() >= 5:
        following += timedelta(days=1)
    return following


def next_treatment_day(day: date, schedule: Any = None) -> date:
    """The first treatment day after `day`: by the course's schedule (ledger/schedule.py), else the
    next working day."""
    if schedule is not None:
        from ledger import schedule as schedules

        found = schedules.fractions_from(schedule, day + timedelta(days=1), 1)
        if found is not None:
            return found
    return next_working_day(day)


def call_reasons(events: list[Any], day: date, zone: str, home_centre: str,
                 windows: dict[str, tuple[str, str]] | None = None, schedule: Any = None) -> list[dict]:
    """Why the patient of a course must be called on `day` (in the home centre's zone), from the
    course's events: a message per reason (`ledger.messages`). `windows`: centre -> the time window
    its capacity declaration offers, said with the move; `schedule`: the course's, for the day to come."""
    tz = ZoneInfo(zone)
    first = next_treatment_day(day, schedule).isoformat()
    reasons: list[dict] = []
    for e in events:
        kind = type(e).__name__
        at: datetime = e.meta["recorded_at"]
        if at.astimezone(tz).date() != day:
            continue
        if kind == "CentreAssigned" and e.centre != home_centre:
            opens, closes = (windows or {}).get(e.centre, ("", ""))
            reasons.append(said("call.moved_to_partner", centre=e.centre, start=first,
                                window=f"{opens}-{closes}" if opens else "-"))
        elif kind == "StatusChanged" and e.status == "suspended":
            reasons.append(said("call.suspended", reason=e.reason or "-"))
        elif kind == "StatusChanged" and e.status == "active":
            reasons.append(said("call.new_start_date", start=first))
    return reasons
