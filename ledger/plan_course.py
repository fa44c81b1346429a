"""One backed-up plan is one course, wherever it is imported.

A course's id follows from its home centre, patient and plan (`course_id_for`), so a partner
that imported the same RT Plan as its own would open a second course for the same patient and
plan, and each would accept every fraction. This small aggregate, keyed by patient and plan
only, is created in the same transaction as the course: a second registration under another
home centre finds it and is refused with the course that exists; two at the same moment
conflict on saving it, and the second then finds the first's.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger import errors
from ledger.course import NAMESPACE


def plan_course_id_for(patient_id: str, plan_uid: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"course-of-plan/{patient_id}/{plan_uid}")


class PlanCourse(Aggregate):
    """Which course a patient's plan is."""

    @staticmethod
    def create_id(patient_id: str, plan_uid: str, **_: Any) -> uuid.UUID:
        return plan_course_id_for(patient_id, plan_uid)

    @event("Registered")
    def __init__(self, *, patient_id: str, plan_uid: str, course_id: str, home_centre: str, meta: dict):
        self.patient_id = patient_id
        self.plan_uid = plan_uid
        self.course_id = course_id
        self.home_centre = home_centre

    def check_is(self, course_id: uuid.UUID | str, home_centre: str) -> None:
        """Refuses a second course for this patient's plan."""
        if str(course_id) != self.course_id:
            raise errors.CourseAlreadyRegistered(
                "course_already_registered.plan_patient_already_course", plan_uid=self.plan_uid, patient_id=self.patient_id, course_id=self.course_id, home_centre=self.home_centre, home_centre2=home_centre,
                conflict={"id": self.course_id, "home_centre": self.home_centre},
            )
