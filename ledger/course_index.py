"""Which course a plan belongs to, and which courses a patient has: what a write (an OIS record, a
triage line) needs to find its course before the course's own rules decide.

The index is the application's, built from the event store (the courses' `Registered` and
`FallbackPlanAdded` events, read from where it stopped before every lookup), never from a read
model: a read model is disposable and may lag, the log is what the rules decide on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TOPICS = ("ledger.course:Course.Registered", "ledger.course:Course.FallbackPlanAdded")
PAGE = 500


class CourseIndex:
    def __init__(self) -> None:
        self.position = 0
        self.by_plan: dict[str, list[str]] = {}  # plan uid (prescription or re-plan) -> course ids
        self.by_patient: dict[str, list[str]] = {}  # the home centre's patient id -> course ids
        self.lock = threading.Lock()

    def refresh(self, app: Any) -> CourseIndex:
        """Take in what was recorded since the last lookup (by this process or another)."""
        with self.lock:
            while True:
                page = app.recorder.select_notifications(self.position, PAGE, topics=TOPICS, inclusive_of_start=False)
                for n in page:
                    event = app.mapper.to_domain_event(n)
                    course_id = str(n.originator_id)
                    self.by_plan.setdefault(event.plan["uid"], []).append(course_id)
                    if n.topic == TOPICS[0]:
                        self.by_patient.setdefault(event.patient["id"], []).append(course_id)
                    self.position = n.id
                if len(page) < PAGE:
                    return self


@dataclass(frozen=True)
class Found:
    """The course a write is for, or why there is none (`problem`, with the courses concerned)."""

    course_id: str | None
    problem: str | None = None  # patient_unknown, plan_unknown, patient_not_known_as, plan_ambiguous
    courses: tuple[str, ...] = ()


def course_of_record(index: CourseIndex, patient_id: str, plan_uid: str, get_course: Callable[[str], Any],
                     sees: Callable[[str], bool]) -> Found:
    """The course of the plan an OIS record references. A partner's records carry its own patient
    id, which the course must know (its home id, or one a physicist mapped). A course the importing
    user may not see is as if it did not exist (need to know)."""
    for course_id in [c for c in index.by_plan.get(plan_uid, []) if sees(c)]:
        if get_course(course_id).knows_patient_id(patient_id):
            return Found(course_id)
        return Found(None, "patient_not_known_as", (course_id,))
    if any(sees(c) for c in index.by_patient.get(patient_id, [])):
        return Found(None, "plan_unknown")
    return Found(None, "patient_unknown")


def course_of_patient_plan(index: CourseIndex, patient_id: str, plan: str, get_course: Callable[[str], Any],
                           sees: Callable[[str], bool]) -> Found:
    """The course of a patient (the home centre's id) whose plans (prescription or re-plan) have this
    UID or label; a label that several of the patient's courses use names none."""
    courses = [c for c in index.by_patient.get(patient_id, []) if sees(c)]
    if not courses:
        return Found(None, "patient_unknown")
    matches = tuple(c for c in courses if any(plan in (p.uid, p.label) for p in get_course(c).plans))
    if not matches:
        return Found(None, "plan_unknown")
    if len(matches) > 1:
        return Found(None, "plan_ambiguous", matches)
    return Found(matches[0])
