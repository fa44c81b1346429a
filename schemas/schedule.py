"""The intended schedule of a course, as a value (stored on the course, given at registration).

`weekdays`: ISO weekdays (1 Monday .. 7 Sunday) on which the course is treated, one fraction a
day; their number is the fractions per week. `start`: the first treatment day (None: the day of
the course's first fraction, else the day it was registered, in the home centre's zone).
`days`: single days that depart from the weekdays (a weekend day treated, a twice-daily day, a
day off), each with the number of fractions intended on it; these come from countersigned
prescription amendments (ledger/amendments.py).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import msgspec
from msgspec import Meta, Struct

Weekday = Annotated[int, Meta(ge=1, le=7)]
# A day gives at most two fractions (twice daily, at least 6 hours apart).
FractionsOnDay = Annotated[int, Meta(ge=0, le=2)]

# Monday to Friday, one fraction a day: the usual radical schedule.
WORKING_DAYS: tuple[int, ...] = (1, 2, 3, 4, 5)


class ScheduleDay(Struct, frozen=True, kw_only=True):
    day: date
    fractions: FractionsOnDay


class Schedule(Struct, frozen=True, kw_only=True):
    start: date | None = None
    weekdays: Annotated[list[Weekday], Meta(min_length=1, max_length=7)] = msgspec.field(default_factory=lambda: list(WORKING_DAYS))
    days: list[ScheduleDay] = []

    def __post_init__(self) -> None:
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError("a weekday appears twice in the schedule")
        if len({d.day for d in self.days}) != len(self.days):
            raise ValueError("a day appears twice in the schedule")

    @property
    def per_week(self) -> int:
        return len(self.weekdays)

    def starting(self, start: date) -> "Schedule":
        return msgspec.structs.replace(self, start=start)

    def with_day(self, day: date, fractions: int) -> "Schedule":
        """The schedule with one day set to `fractions` (replacing what the day had)."""
        kept = [d for d in self.days if d.day != day]
        return msgspec.structs.replace(self, days=sorted([*kept, ScheduleDay(day=day, fractions=fractions)],
                                                         key=lambda d: d.day))
