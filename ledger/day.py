"""The RTT's day: which courses are due for a fraction on a given day, and in which order a
worklist shows them.

Until the course schedule (`ledger/schedule.py`) tells each course's planned treatment days,
the rule is simple and stated here: an active course with fractions still to deliver is due on
every working day (Monday to Friday) on which it has not yet had a fraction; once one is
delivered that day it is "treated today". Days are the department's local dates: the caller
passes the day and each course's last delivery already converted to that zone.
"""

from __future__ import annotations

from datetime import date

WORKING_DAYS = frozenset(range(5))  # Monday..Friday

DUE, TREATED, NOT_DUE = "due", "treated", "not_due"
ORDER = {DUE: 0, TREATED: 1, NOT_DUE: 2}


def due_state(day: date, status: str, delivered: int, planned: int, last_delivery: date | None) -> str:
    """DUE, TREATED or NOT_DUE for one course on `day`."""
    if last_delivery == day:
        return TREATED
    if status != "active" or delivered >= planned or day.weekday() not in WORKING_DAYS:
        return NOT_DUE
    return DUE


def day_order(state: str, triage: int | None, patient_id: str) -> tuple:
    """Due first, then those treated today, then the rest; within each, the most urgent triage first."""
    return ORDER[state], triage or 9, patient_id
