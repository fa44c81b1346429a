"""Treatment gaps: who is losing time, and how much, against the course's intended schedule.

For many tumours a longer overall treatment time lowers tumour control. The Royal College of
Radiologists' "Timely delivery of radical radiotherapy" sorts courses into three categories:
1, prolongation most harmful (radical head and neck, cervix, lung...); 2, radical treatment
where the evidence is weaker (breast, prostate...); 3, palliative. A physician sets a
course's category (`Course.set_gap_category`); until then the treatment site's default below
applies, and a course with neither has no category (it sorts last).

Per course, live (pure functions of the course and "today" in the home centre's zone):
- `days_since_last`: calendar days since the local day of the last fraction;
- `missed`: fractions the schedule intended on days that are over (before today) and that were
  not delivered (on a once-a-day schedule, the treatment days missed);
- `planned_end`: the day the last fraction falls on in the original schedule and prescription;
- `projected_end`: the day it will fall on if nothing changes, from today on (today counts while
  its fractions are not all given), with the amended prescription and compensation days;
- `prolongation`: the schedule's treatment days from `planned_end` to `projected_end` (0 when
  on time, negative when ahead): a compensation day brings it back by one;
- `alarm`: a category 1 course whose prolongation is beyond the threshold (default
  `ALARM_AFTER_DAYS`; `FRACTION_LEDGER_GAP_ALARM_DAYS` at the edge).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from msgspec import Struct

from ledger import schedule as schedules
from ledger.amendments import amended_schedule
from schemas.prescription import Amendment
from schemas.schedule import Schedule

# Our reading of the RCR guidance; a physician's category always takes precedence.
SITE_CATEGORY: dict[str, int] = {
    "head_and_neck": 1, "cervix": 1, "lung": 1, "oesophagus": 1, "anus": 1, "bladder": 1, "vulva": 1, "skin": 1,
    "brain": 2, "breast": 2, "prostate": 2, "rectum": 2, "lymphoma": 2, "sarcoma": 2,
    "palliative": 3,
}
# RCR: a category 1 course should not be prolonged by more than 2 days.
ALARM_AFTER_DAYS = 2


class Gap(Struct, frozen=True, kw_only=True):
    category: int | None
    category_from: str | None  # "physician", "site" or None
    delivered: int
    planned: int  # as amended (countersigned)
    days_since_last: int | None
    missed: int
    planned_end: date | None
    projected_end: date | None
    prolongation: int
    next_day: date | None  # the day of the next fraction the schedule intends
    alarm: bool
    dose_delivered_gy: Decimal | None = None
    dose_prescribed_gy: Decimal | None = None


def category_of(set_by_physician: int | None, site: str | None) -> tuple[int | None, str | None]:
    if set_by_physician is not None:
        return set_by_physician, "physician"
    if site in SITE_CATEGORY:
        return SITE_CATEGORY[site], "site"
    return None, None


def intended(given: Schedule | None, first_moment: datetime, zone: Any) -> Schedule:
    """The schedule with its start resolved: as given, else Monday to Friday from the local day
    of `first_moment` (the first fraction recorded, else the registration) in `zone`."""
    schedule = given or Schedule()
    return schedule if schedule.start is not None else schedule.starting(schedules.local_day(first_moment, zone))


def gap_of(base: Schedule, amendments: list[Amendment], original_total: int, planned_total: int,
           delivered_days: list[date], today: date, category: tuple[int | None, str | None],
           threshold: int = ALARM_AFTER_DAYS) -> Gap:
    """`base`: the intended schedule (start resolved); `delivered_days`: the local day of each
    fraction delivered (one entry per fraction, whatever its sessions)."""
    now = amended_schedule(base, amendments)
    delivered = len(delivered_days)
    given_today = sum(1 for d in delivered_days if d == today)
    remaining = max(0, planned_total - delivered)
    original_days = schedules.treatment_days(base, original_total)
    planned_end = original_days[-1] if original_days else None
    if remaining:
        projected_end = schedules.fractions_from(now, today, remaining, given_today)
        next_day = schedules.fractions_from(now, today, 1, given_today)
    else:
        projected_end, next_day = (max(delivered_days) if delivered_days else None), None
    prolongation = (schedules.treatment_days_between(base, planned_end, projected_end)
                    if planned_end and projected_end else 0)
    expected = min(schedules.expected_before(now, today), planned_total)
    missed = max(0, expected - (delivered - given_today))
    last = max(delivered_days) if delivered_days else None
    return Gap(
        category=category[0], category_from=category[1], delivered=delivered, planned=planned_total,
        days_since_last=(today - last).days if last else None, missed=missed, planned_end=planned_end,
        projected_end=projected_end, prolongation=prolongation, next_day=next_day,
        alarm=category[0] == 1 and prolongation > threshold,
    )


def urgency(gap: Gap) -> tuple:
    """Worklist order: category 1 first (none last), then the longest prolongation, then the most missed."""
    return (gap.category or 9, -gap.prolongation, -gap.missed)
