"""Commands on a course's schedule, gap category and prescription amendments
(`FractionLedger.gaps`); each changes one course through `FractionLedger.on_course`.

Who may take them (an oncologist; a physicist countersigns, and amends where the centre allows
it) is `ledger.access`; what they may change is the course's (ledger/amendments.py, gaps.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from ledger import gaps
from ledger.unit_of_work import Actor, parse
from schemas.course import to_event
from schemas.results import Amended, CourseChange
from schemas.prescription import AmendPrescription, CountersignArg, GapCategoryArg, ScheduleArg


def amendment_out(course: Any, amendment: Any) -> Amended:
    """The course, the amendment as it now stands, and the course's fractions planned in force."""
    return Amended(id=str(course.id), amendment=msgspec.to_builtins(amendment),
                   fractions_planned=course.fractions_planned())


class GapCommands:
    """Days are computed in the course's home centre's zone (`FractionLedger.zone_of`).
    `courses`: the ledger's course commands; `billing`: for the near-miss policy."""

    def __init__(self, courses: Any, billing: Any):
        self.courses, self.billing = courses, billing

    def set_schedule(self, course_id: uuid.UUID | str, schedule: Any, site: str | None, actor: Actor,
                     request_id: str | None = None) -> CourseChange:
        """The intended schedule (None: the default) and the treatment site of a course."""
        arg = parse(ScheduleArg, {"schedule": schedule, "site": site})
        payload = {"schedule": to_event(arg.schedule) if arg.schedule else None, "site": arg.site}
        return self.courses.on_course(
            "set_schedule", course_id, payload, actor, request_id,
            lambda course, meta: CourseChange(id=str(course.id), changed=course.set_schedule(arg.schedule, arg.site, meta)),
        )

    def set_gap_category(self, course_id: uuid.UUID | str, category: int, actor: Actor,
                         request_id: str | None = None) -> CourseChange:
        category = parse(GapCategoryArg, {"category": category}).category
        return self.courses.on_course(
            "set_gap_category", course_id, {"category": category}, actor, request_id,
            lambda course, meta: CourseChange(id=str(course.id), gap_category=category,
                                              changed=course.set_gap_category(category, meta)),
        )

    def amend_prescription(self, course_id: uuid.UUID | str, data: Any, actor: Actor,
                           request_id: str | None = None) -> Amended:
        """Propose an amendment; it changes nothing until `countersign_amendment`."""
        cmd = parse(AmendPrescription, data)

        def change(course: Any, meta: dict) -> Amended:
            return amendment_out(course, course.amend(cmd, meta, self.courses.zone_of(course.home_centre)))

        return self.courses.on_course("amend_prescription", course_id, to_event(cmd), actor, request_id, change,
                                      returns=Amended)

    def countersign_amendment(self, course_id: uuid.UUID | str, amendment_id: str, actor: Actor,
                              request_id: str | None = None) -> Amended:
        """A second prescriber or a physicist makes an amendment take effect. Countersigning one's
        own amendment bypasses the four eyes: refused, and registered as a near-miss."""
        amendment_id = parse(CountersignArg, {"amendment": amendment_id}).amendment
        return self.courses.on_course(
            "countersign_amendment", course_id, {"amendment": amendment_id}, actor, request_id,
            lambda course, meta: amendment_out(course, course.countersign(amendment_id, meta)),
            when_refused=self.billing.near_miss, returns=Amended,
        )

    def course_gap(self, course_id: uuid.UUID | str, now: datetime | None = None,
                   threshold: int = gaps.ALARM_AFTER_DAYS) -> gaps.Gap:
        """One course's gap now (the ledger's clock), in its home centre's zone."""
        course = self.courses.get_course(course_id)
        return course.gap(now or self.courses.clock(), self.courses.zone_of(course.home_centre), threshold)
