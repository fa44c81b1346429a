"""On which days a course's fractions fall: pure functions of a `Schedule` (schemas/schedule.py).

No store, no clock, no holidays: a day is a local `date` in the course's home centre's zone
(`local_day` turns a moment into one). The API, small on purpose (others build on it):

    local_day(moment, zone) -> date        the day an aware datetime falls on in `zone` (a tzinfo or an IANA name)
    fractions_on(schedule, day) -> int     fractions the schedule intends on `day` (0, 1, or 2 on a twice-daily day)
    expected_on(schedule, day) -> bool     whether `day` is a treatment day of the schedule
    treatment_days(schedule, count) -> list[date]
                                           the days of the first `count` fractions from the start, in order
                                           (a twice-daily day appears twice)
    expected_before(schedule, day) -> int  fractions intended from the start up to, not including, `day`
    fractions_from(schedule, day, count, given_today=0) -> date | None
                                           the day the `count`-th fraction from `day` on falls on, when
                                           `given_today` of `day`'s fractions are already given (None: count 0)
    treatment_days_between(schedule, after, through) -> int
                                           the schedule's weekday treatment days d with after < d <= through
                                           (negative when `through` is before `after`): a prolongation

Every function takes a `Schedule` whose `start` is set, or anything with a `schedule` attribute
that is one; a course's resolved schedule in force is `Course.schedule_in(zone)` (ledger/course.py:
its countersigned compensation days included; `Course.original_schedule_in` without them), so
`expected_on(course.schedule_in(zone), day)` says whether a course is expected on a day.
Days before `start` intend nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from schemas.schedule import Schedule

# No course lasts longer: a guard against a schedule that would never reach its count.
LONGEST = timedelta(days=3 * 366)


def _of(value: Any) -> Schedule:
    schedule = value if isinstance(value, Schedule) else getattr(value, "schedule")
    if schedule.start is None:
        raise ValueError("the schedule has no start day: resolve it first (Course.schedule_in)")
    return schedule


def local_day(moment: datetime, zone: tzinfo | str) -> date:
    """The day `moment` (timezone-aware) falls on in `zone`."""
    if moment.tzinfo is None:
        raise ValueError("a moment without a time zone has no day")
    return moment.astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone).date()


def fractions_on(schedule: Any, day: date) -> int:
    s = _of(schedule)
    if day < s.start:
        return 0
    for d in s.days:
        if d.day == day:
            return d.fractions
    return 1 if day.isoweekday() in s.weekdays else 0


def expected_on(schedule: Any, day: date) -> bool:
    return fractions_on(schedule, day) > 0


def treatment_days(schedule: Any, count: int) -> list[date]:
    s = _of(schedule)
    out: list[date] = []
    day, last = s.start, s.start + LONGEST
    while len(out) < count and day <= last:
        out.extend([day] * fractions_on(s, day))
        day += timedelta(days=1)
    return out[:count]


def expected_before(schedule: Any, day: date) -> int:
    s = _of(schedule)
    total, d = 0, s.start
    while d < day:
        total += fractions_on(s, d)
        d += timedelta(days=1)
    return total


def fractions_from(schedule: Any, day: date, count: int, given_today: int = 0) -> date | None:
    s = _of(schedule)
    if count <= 0:
        return None
    left, d, last = count, max(day, s.start), max(day, s.start) + LONGEST
    while d <= last:
        room = fractions_on(s, d) - (given_today if d == day else 0)
        if room > 0:
            left -= room
            if left <= 0:
                return d
        d += timedelta(days=1)
    return None


def treatment_days_between(schedule: Any, after: date, through: date) -> int:
    s = _of(schedule)
    if through < after:
        return -treatment_days_between(s, through, after)
    return sum(1 for n in range(1, (through - after).days + 1)
               if (after + timedelta(days=n)).isoweekday() in s.weekdays)
