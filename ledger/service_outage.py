"""Commands of outage operations: the centre registry, capacity, the assignment plan, contacts, calls
(`FractionLedger.outage`).

The rules are in `ledger.registry`, `ledger.capacity`, `ledger.planning` and `ledger.contacts`;
this is plumbing: each command is one unit of work (`ledger.unit_of_work.UnitOfWork`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ledger import errors
from ledger.capacity import Capacity, capacity_id_for
from ledger.centre import centre_id_for, centre_or_new, check_zone
from ledger.contacts import PatientContact, contact_id_for
from ledger.course import ACTIVE, Course
from ledger.planning import AssignmentPlan, Need, Offer, check_acceptance, propose
from ledger.registry import REGISTRY_ID, CentreRegistry, technique_of
from ledger.unit_of_work import UnitOfWork, parse
from schemas.course import to_event
from schemas.results import Accepted, CallRecorded, CentreChange, ContactChange
from schemas.outage import ContactDetails, DeclareCapacity, MachineSpec, RecordCall, RegisterCentre


def _parse(kind: Any, data: Any) -> Any:
    return parse(kind, data)


class OutageCommands:
    """`courses`: the ledger's course commands (loading a course)."""

    def __init__(self, uow: UnitOfWork, courses: Any):
        self.uow, self.courses = uow, courses

    # ---- the registry ----------------------------------------------------------------------

    def registry(self) -> CentreRegistry | None:
        return self.uow.get(REGISTRY_ID)

    def check_centres_known(self, *named: tuple[str, str]) -> None:
        """Each (field, centre code) must be in the registry, once it holds any centre."""
        registry = self.registry()
        if registry is None or not registry.centres:
            return
        for field, code in named:
            if code:
                registry.check_known(code, field)

    def register_centre(self, data: Any, actor: Any, request_id: str | None = None) -> CentreChange:
        """Register a centre (code, name, zone, machines); again with other values: renamed, machines set."""
        cmd = _parse(RegisterCentre, data)
        check_zone(cmd.zone)
        machines = [to_event(m) for m in cmd.machines]

        def act(meta: dict) -> tuple[list[Any], Any]:
            registry = self.registry() or CentreRegistry(meta=meta)
            new = not registry.knows(cmd.code)
            changed = registry.register(cmd.code, cmd.name, machines, meta)
            centre, centre_new = centre_or_new(self.uow, cmd.code, meta)
            zone_changed = centre.set_zone(cmd.zone, meta)
            saved = ([registry] if changed else []) + ([centre] if zone_changed or centre_new else [])
            return saved, CentreChange(centre=cmd.code, status="registered" if new else (
                "changed" if changed or zone_changed else "unchanged"))

        return self.uow.run("register_centre", {**to_event(cmd)}, actor, request_id, act, CentreChange)

    def set_machine(self, code: str, data: Any, actor: Any, request_id: str | None = None) -> CentreChange:
        machine = to_event(_parse(MachineSpec, data))

        def act(meta: dict) -> tuple[list[Any], Any]:
            registry = self.known_registry(code)
            changed = registry.set_machine(code, machine, meta)
            return ([registry] if changed else []), CentreChange(centre=code, machine=machine["name"],
                                                                 status="set" if changed else "unchanged")

        return self.uow.run("set_machine", {"centre": code, **machine}, actor, request_id, act, CentreChange)

    def remove_machine(self, code: str, name: str, actor: Any, request_id: str | None = None) -> CentreChange:
        def act(meta: dict) -> tuple[list[Any], Any]:
            registry = self.known_registry(code)
            registry.remove_machine(code, name, meta)
            return [registry], CentreChange(centre=code, machine=name, status="removed")

        return self.uow.run("remove_machine", {"centre": code, "name": name}, actor, request_id, act, CentreChange)

    def known_registry(self, code: str) -> CentreRegistry:
        registry = self.registry()
        if registry is None:
            raise errors.UnknownCentre("unknown_centre.registry_empty", centre=code)
        registry.check_known(code)
        return registry

    def centres(self) -> list[dict]:
        """The registry as a list: code, name, zone, aliases, machines."""
        registry = self.registry()
        out = []
        for code in sorted(registry.centres if registry else {}):
            entry = registry.centres[code]
            centre = self.uow.get(centre_id_for(code))
            out.append({"code": code, "name": entry["name"], "zone": centre.zone if centre else None,
                        "aliases": list(centre.aliases) if centre else [], "machines": registry.machines(code)})
        return out

    # ---- capacity --------------------------------------------------------------------------

    def declare_capacity(self, data: Any, actor: Any, request_id: str | None = None) -> CentreChange:
        """A partner's offer, or an amendment of it: a new version of its capacity stream."""
        cmd = _parse(DeclareCapacity, data)
        offer = to_event(cmd)
        offer["valid_from"], offer["valid_until"] = cmd.valid_from, cmd.valid_until

        def act(meta: dict) -> tuple[list[Any], Any]:
            registry = self.known_registry(cmd.centre)
            registry.check_machines(cmd.centre, cmd.machines)
            capacity = self.capacity_of(cmd.centre) or Capacity(centre=cmd.centre, meta=meta)
            before = len(capacity.versions)
            version = capacity.declare(offer, meta)
            return ([capacity] if len(capacity.versions) != before else []), CentreChange(
                centre=cmd.centre, version=version["version"],
                status="declared" if len(capacity.versions) != before else "unchanged")

        return self.uow.run("declare_capacity", to_event(cmd), actor, request_id, act, CentreChange)

    def capacity_of(self, centre: str) -> Capacity | None:
        return self.uow.get(capacity_id_for(centre))

    def offers_on(self, day: date) -> list[Offer]:
        """Every registered centre's capacity in force on `day`, with its offered machines."""
        registry = self.registry()
        offers = []
        for code in sorted(registry.centres if registry else {}):
            capacity = self.capacity_of(code)
            version = capacity.in_force(day) if capacity else None
            if version is None:
                continue
            own = {m["name"]: m for m in registry.machines(code)}
            machines = tuple(own[n] for n in version["machines"] if n in own)
            offers.append(Offer(centre=code, per_day=version["per_day"], machines=machines, unit=version["unit"],
                                version=version["version"], window=(version["window_start"], version["window_end"])))
        return offers

    # ---- the assignment plan ---------------------------------------------------------------

    def needs(self, course_ids: list[str]) -> list[Need]:
        """The active courses among `course_ids` as the plan reads them."""
        out = []
        for course_id in course_ids:
            course = self.courses.get_course(course_id)
            if course.status != ACTIVE:
                continue
            left = course.fractions_planned() - course.fractions_delivered()
            if left <= 0:
                continue
            out.append(need_of(course, left))
        return out

    def plan_assignments(self, course_ids: list[str], capacity_lost: int, day: date) -> AssignmentPlan:
        """A proposal only: nothing is recorded."""
        return propose(self.needs(course_ids), self.offers_on(day), capacity_lost, day)

    def accept_assignments(self, course_ids: list[str], chosen: list[tuple[str, str]], capacity_lost: int, day: date,
                           actor: Any, request_id: str | None = None) -> Accepted:
        """A person accepts (course, centre) pairs of a proposal: checked again on the current state,
        then each recorded as the course's `CentreAssigned`, all in one transaction."""

        def act(meta: dict) -> tuple[list[Any], Any]:
            courses = {cid: self.courses.get_course(cid) for cid in course_ids}
            needs = [need_of(c, c.fractions_planned() - c.fractions_delivered()) for c in courses.values()
                     if c.status == ACTIVE and c.fractions_planned() > c.fractions_delivered()]
            accepted = check_acceptance(needs, self.offers_on(day), chosen, capacity_lost)
            saved: list[Any] = []
            for need, centre in accepted:
                course = courses[need.course_id]
                course.assign(centre, {**meta, "plan": {"capacity_lost": capacity_lost, "day": day.isoformat()}})
                saved.append(course)
            for centre in sorted({c for _, c in accepted}):
                capacity = self.capacity_of(centre)
                capacity.take([n.course_id for n, c in accepted if c == centre], meta)
                saved.append(capacity)
            return saved, Accepted(accepted=[{"course": n.course_id, "patient_id": n.patient_id, "centre": c}
                                             for n, c in accepted])

        return self.uow.run("accept_assignments", {"chosen": [list(p) for p in chosen], "capacity_lost": capacity_lost,
                                               "day": day.isoformat()}, actor, request_id, act, Accepted)

    # ---- contacts and calls ----------------------------------------------------------------

    def contact(self, home_centre: str, patient_id: str) -> PatientContact | None:
        return self.uow.get(contact_id_for(home_centre, patient_id))

    def set_contact(self, home_centre: str, patient_id: str, data: Any, actor: Any,
                    request_id: str | None = None) -> ContactChange:
        details = to_event(_parse(ContactDetails, data))
        self.check_centres_known(("home_centre", home_centre))

        def act(meta: dict) -> tuple[list[Any], Any]:
            found = self.contact(home_centre, patient_id) or PatientContact(
                home_centre=home_centre, patient_id=patient_id, meta=meta)
            changed = found.set_details(details, meta)
            return ([found] if changed else []), ContactChange(patient_id=patient_id, status="set" if changed else "unchanged")

        return self.uow.run("set_contact", {"home_centre": home_centre, "patient_id": patient_id, **details},
                        actor, request_id, act, ContactChange)

    def record_call(self, data: Any, actor: Any, request_id: str | None = None) -> CallRecorded:
        cmd = _parse(RecordCall, data)

        def act(meta: dict) -> tuple[list[Any], Any]:
            course = self.courses.get_course(cmd.course_id)
            found = self.contact(course.home_centre, course.patient["id"]) or PatientContact(
                home_centre=course.home_centre, patient_id=course.patient["id"], meta=meta)
            call = found.record_call(str(course.id), cmd.day, cmd.outcome, cmd.note, meta)
            return [found], CallRecorded(course=str(course.id), day=cmd.day, outcome=call["outcome"])

        return self.uow.run("record_call", to_event(cmd), actor, request_id, act, CallRecorded)



def need_of(course: Course, remaining: int) -> Need:
    return Need(course_id=str(course.id), patient_id=course.patient["id"], label=course.plan.label,
                triage=course.triage, technique=technique_of(course.plan), home_centre=course.home_centre,
                assigned=tuple(course.assigned_centres), remaining=remaining)
