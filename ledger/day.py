"""The RTT's day: which courses are due for a fraction on a given day, and in which order a
worklist shows them.

An active course with fractions still to deliver is due on a day its schedule intends a fraction
(`ledger/schedule.py`: as given at registration, else Monday to Friday), until a fraction was
given that day; then it is "treated today". Days are the local dates of the centre looking (its
zone, `ledger/local_time.py`): the caller passes the day and each course's last delivery as days
of that zone.
"""

from __future__ import annotations

from datetime import date

from ledger import schedule as schedules
from schemas.schedule import Schedule

DUE, TREATED, NOT_DUE = "due", "treated", "not_due"
ORDER = {DUE: 0, TREATED: 1, NOT_DUE: 2}


def due_state(day: date, status: str, delivered: int, planned: int, last_delivery: date | None,
              schedule: Schedule | None = None) -> str:
    """DUE, TREATED or NOT_DUE for one course on `day`; `schedule` as given (None: the default).
    A schedule without a start counts from `day` at the latest: the course was registered, or had
    its first fraction, on or before the day it is looked at."""
    if last_delivery == day:
        return TREATED
    if status != "active" or delivered >= planned:
        return NOT_DUE
    intended = schedule or Schedule()
    if intended.start is None:
        intended = intended.starting(day)
    return DUE if schedules.expected_on(intended, day) else NOT_DUE


def day_order(state: str, triage: int | None, patient_id: str) -> tuple:
    """Due first, then those treated today, then the rest; within each, the most urgent triage first."""
    return ORDER[state], triage or 9, patient_id
