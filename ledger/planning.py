"""The assignment plan: which course goes to which partner when the home centre loses capacity.

Pure rules on values (no store, no clock): `propose` reads the courses and the partners' offers
and proposes; `check_acceptance` decides whether a person's choice may be recorded as it stands.

1. Who must still be treated: the triage code's share (domain table: code 1 is treated while at
   least 10% of the normal capacity is left, 2: 25%, 3: 50%, 4: 80%, 5: 90%). At 50% lost, codes
   1-3 must be treated and 4-5 wait. A course without a triage code cannot be judged: it is listed
   as unplaceable ("triage it first"), never silently dropped.
2. Most urgent first: by triage code, then by patient and course id (a stable order, so the same
   state gives the same plan).
3. Where: a partner (a centre other than the course's home) whose offered machines deliver the
   course's technique and that still has room: its patients a day (a slot a day is one patient
   treated once a day) minus the active courses already assigned to it and those proposed before.
   Of those, the one with the most room left (then by code), so the load spreads.
4. What cannot be placed is listed with why: no offered machine in the network delivers the
   technique, or every partner that could is full.
A course already assigned to a partner is kept there (and takes that partner's room).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from ledger import errors
from ledger.messages import said

# Share of the normal capacity that must still be offered for a triage code to be treated.
TRIAGE_SHARE: dict[int, int] = {1: 10, 2: 25, 3: 50, 4: 80, 5: 90}


def must_be_treated(triage: int, capacity_lost: int) -> bool:
    return 100 - capacity_lost >= TRIAGE_SHARE[triage]


def check_capacity_lost(capacity_lost: int) -> None:
    if not 0 <= capacity_lost <= 100:
        raise errors.InvalidCommand("capacity_lost", "invalid.percentage", value=capacity_lost)


@dataclass(frozen=True)
class Need:
    """An active course of the home centre, as the plan needs it."""

    course_id: str
    patient_id: str
    label: str
    triage: int | None
    technique: str
    home_centre: str
    assigned: tuple[str, ...] = ()
    remaining: int = 0


@dataclass(frozen=True)
class Offer:
    """A partner's capacity in force on the day: patients (or slots) a day on its offered machines."""

    centre: str
    per_day: int
    machines: tuple[dict, ...]  # {"name", "model", "techniques"}
    unit: str = "patients"
    version: int = 1
    window: tuple[str, str] = ("07:00", "19:00")

    def machines_for(self, technique: str) -> list[str]:
        return [m["name"] for m in self.machines if technique in m["techniques"]]


@dataclass(frozen=True)
class Proposal:
    need: Need
    centre: str
    machines: tuple[str, ...]


@dataclass(frozen=True)
class Unplaceable:
    need: Need
    reason: dict  # a message (`ledger.messages.said`)


@dataclass
class AssignmentPlan:
    capacity_lost: int
    day: date
    proposals: list[Proposal] = field(default_factory=list)
    unplaceable: list[Unplaceable] = field(default_factory=list)
    kept: list[Proposal] = field(default_factory=list)  # already assigned to a partner
    waiting: list[Need] = field(default_factory=list)  # not treated at this capacity level
    load: dict[str, dict] = field(default_factory=dict)  # centre -> {per_day, taken, proposed}


def urgency(need: Need) -> tuple:
    return (need.triage if need.triage is not None else 0, need.patient_id, need.course_id)


def taken_by(needs: list[Need], offers: list[Offer]) -> dict[str, int]:
    """Courses already assigned to each offering partner (one patient a day each)."""
    taken = {o.centre: 0 for o in offers}
    for need in needs:
        for centre in set(need.assigned) - {need.home_centre}:
            if centre in taken:
                taken[centre] += 1
    return taken


def propose(needs: list[Need], offers: list[Offer], capacity_lost: int, day: date) -> AssignmentPlan:
    check_capacity_lost(capacity_lost)
    plan = AssignmentPlan(capacity_lost=capacity_lost, day=day)
    taken = taken_by(needs, offers)
    plan.load = {o.centre: {"per_day": o.per_day, "taken": taken[o.centre], "proposed": 0, "unit": o.unit,
                            "version": o.version, "window": list(o.window)} for o in offers}
    for need in sorted(needs, key=urgency):
        partners = set(need.assigned) - {need.home_centre}
        if partners:
            centre = sorted(partners)[0]
            offer = next((o for o in offers if o.centre == centre), None)
            plan.kept.append(Proposal(need, centre, tuple(offer.machines_for(need.technique)) if offer else ()))
            continue
        if need.triage is None:
            plan.unplaceable.append(Unplaceable(need, said("plan.not_triaged")))
            continue
        if not must_be_treated(need.triage, capacity_lost):
            plan.waiting.append(need)
            continue
        able = [o for o in offers if o.centre != need.home_centre and o.machines_for(need.technique)]
        if not able:
            plan.unplaceable.append(Unplaceable(need, said("plan.no_machine_for_technique", technique=need.technique)))
            continue
        room = {o.centre: o.per_day - plan.load[o.centre]["taken"] - plan.load[o.centre]["proposed"] for o in able}
        free = [o for o in able if room[o.centre] > 0]
        if not free:
            plan.unplaceable.append(Unplaceable(need, said(
                "plan.no_room", technique=need.technique, centres=", ".join(sorted(o.centre for o in able)))))
            continue
        best = min(free, key=lambda o: (-room[o.centre], o.centre))
        plan.load[best.centre]["proposed"] += 1
        plan.proposals.append(Proposal(need, best.centre, tuple(best.machines_for(need.technique))))
    return plan


def check_acceptance(needs: list[Need], offers: list[Offer], chosen: list[tuple[str, str]],
                     capacity_lost: int) -> list[tuple[Need, str]]:
    """A person accepts (course id, centre) pairs, all or part of a proposal. On the state as it is
    now (someone may have accepted another plan meanwhile), each must be a course that must be
    treated, not yet at a partner, to a partner that delivers its technique and still has room.
    Refuses the whole acceptance naming the first pair that no longer holds."""
    check_capacity_lost(capacity_lost)
    by_id = {n.course_id: n for n in needs}
    by_centre = {o.centre: o for o in offers}
    taken = taken_by(needs, offers)
    accepted: list[tuple[Need, str]] = []
    seen: set[str] = set()
    for course_id, centre in chosen:
        need = by_id.get(course_id)
        if need is None or course_id in seen:
            raise errors.PlanChanged("plan_changed.course_not_in_plan", course=course_id)
        seen.add(course_id)
        if set(need.assigned) - {need.home_centre}:
            raise errors.PlanChanged("plan_changed.already_assigned", course=need.label, patient_id=need.patient_id,
                                     centres=", ".join(sorted(set(need.assigned) - {need.home_centre})))
        if need.triage is None or not must_be_treated(need.triage, capacity_lost):
            raise errors.PlanChanged("plan_changed.not_to_be_treated", course=need.label, patient_id=need.patient_id,
                                     capacity_lost=capacity_lost)
        offer = by_centre.get(centre)
        if offer is None or centre == need.home_centre:
            raise errors.PlanChanged("plan_changed.no_offer", centre=centre)
        if not offer.machines_for(need.technique):
            raise errors.PlanChanged("plan_changed.technique_not_offered", course=need.label,
                                     patient_id=need.patient_id, centre=centre, technique=need.technique)
        if taken[centre] >= offer.per_day:
            raise errors.PlanChanged("plan_changed.partner_full", centre=centre, per_day=offer.per_day,
                                     course=need.label, patient_id=need.patient_id)
        taken[centre] += 1
        accepted.append((need, centre))
    return accepted
