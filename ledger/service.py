"""The application: the course commands, and the composition of the other families' services.

Every course command loads the course, lets the aggregate check its rules (ledger/course.py)
and record events, and saves in one transaction (`UnitOfWork.run`). A concurrent append to the same course (another centre
logging at the same moment) makes the save fail; we then reload and decide again, so
the second writer is refused with the winner's record, or succeeds if it was another
fraction. Commands with a request id are answered once (see `ledger.requests`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

import msgspec
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import JSONTranscoder

from ledger import errors
from ledger.course import Course, check_plan_lists_beams, course_id_for, registration
from ledger.ois_import import OisImportCommands
from ledger.plan_course import PlanCourse, plan_course_id_for
from ledger.registry import CentreRegistry
from ledger.delivery import DestinationCommands
from ledger.messages import said
from ledger.incident import Incident, dose_deviation
from ledger.local_time import DEFAULT_ZONE, zone_named
from ledger.service_billing import BillingCommands
from ledger.service_gaps import GapCommands
from ledger.service_outage import OutageCommands
from ledger.service_trust import TrustCommands
from schemas.results import CourseChange
from schemas.course import (
    CentreArg, LogFraction, MapPatientId, NewPlan, ReasonArg, RegisterCourse, TriageArg, VerifyArg, VoidArg, FractionRecord, to_event,
)
from ledger.cache import AggregateCache, stream_version
from ledger.unit_of_work import SYSTEM, Actor, DateAsISO, UnitOfWork, parse, utc_now

__all__ = ["SYSTEM", "Actor", "FractionLedger", "parse", "utc_now"]

class FractionLedger(Application):
    """The ledger: the event store, one `UnitOfWork` every command goes through, and one command
    service per aggregate family, composed (each is given what it uses, nothing inherited):

    - the course commands, here (`Course`: register, log, verify, void, assign, lifecycle);
    - `gaps`: schedule, gap category, prescription amendments (`ledger/service_gaps.py`);
    - `outage`: centre registry, capacity, assignment plan, contacts, calls (`service_outage.py`);
    - `trust`: centres and their keys, aliases, zones, partner bundles (`service_trust.py`);
    - `billing`: incidents, agreements, splits (`service_billing.py`), which also gives the two
      policies that course commands name as their steps: `billing.near_miss` (a safety rule's
      refusal of a live attempt is registered as a near-miss incident) and `billing.resettle`
      (a completed course's split follows what moves it, a completion, a void, its category, in
      the same transaction);
    - `ois`: acknowledging an import set into the restored OIS (`ledger/ois_import.py`);
    - `destinations`: what was handed to each receiving system and what it answered (`delivery.py`).
    """

    name = "FractionLedger"

    def __init__(self, env: dict[str, str] | None = None, clock: Callable[[], datetime] = utc_now,
                 zone: tzinfo = DEFAULT_ZONE):
        """`zone`: the zone of a centre that recorded none (the department's)."""
        super().__init__(env)
        self.clock = clock
        self.zone = zone
        # Courses and the centre registry as last saved or loaded, used while the log holds no newer version (ledger/cache.py).
        self.course_cache = AggregateCache(self.repository.get, lambda i: stream_version(self.recorder, i),
                                           kinds=(Course, CentreRegistry))
        self.uow = UnitOfWork(self.repository, self.save, clock, kept=self.course_cache)
        self.outage = OutageCommands(self.uow, self)
        self.trust = TrustCommands(self.uow, self, self.outage)
        self.billing = BillingCommands(self.uow, self, self.outage)
        self.gaps = GapCommands(self, self.billing)
        self.ois = OisImportCommands(self.uow)
        self.destinations = DestinationCommands(self.uow)

    def zone_of(self, centre: str) -> tzinfo:
        """The zone a centre's days are computed in: its recorded zone, else the department's."""
        return zone_named(self.trust.centre_zone(centre), self.zone)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # ---- loading and changing one course ---------------------------------------------------

    def get_course(self, course_id: uuid.UUID | str) -> Course:
        """The course as the log has it now, the caller's own copy (from the cache while current)."""
        try:
            course = self.course_cache.get(uuid.UUID(str(course_id)))
        except (AggregateNotFoundError, ValueError):
            raise errors.CourseNotFound("course_not_found.no_course_with_id", course_id=course_id) from None
        if not isinstance(course, Course):
            raise errors.CourseNotFound("course_not_found.no_course_with_id", course_id=course_id)
        return course

    def course_events(self, course_id: uuid.UUID | str) -> list[Any]:
        """The course's stream as stored, oldest first."""
        return list(self.repository.event_store.get(uuid.UUID(str(course_id))))

    def on_course(
        self,
        command: str,
        course_id: uuid.UUID | str,
        payload: Any,
        actor: Actor,
        request_id: str | None,
        change: Callable[[Course, dict], Any],
        *,
        when_refused: Callable[..., None] | None = None,
        then: tuple[Callable[[Course, dict, str], list[Any]], ...] = (),
        returns: Any = CourseChange,
    ) -> Any:
        """Load the course, `change(course, meta)` it, save it in one unit of work. The policies a
        command needs are its named steps: `when_refused(course, command, payload, refusal, actor,
        request_id, meta)` runs when a rule refuses (e.g. `billing.near_miss`); each step of `then`
        returns more aggregates saved with the change (e.g. `billing.resettle`)."""

        def act(meta: dict) -> tuple[list[Any], Any]:
            course = self.get_course(course_id)
            try:
                result = change(course, meta)
            except errors.RuleViolation as refusal:
                if when_refused is not None:
                    when_refused(course, command, payload, refusal, actor, request_id, meta)
                raise
            return [course, *(a for step in then for a in step(course, meta, command))], result

        return self.uow.run(command, {"course": str(course_id), **payload}, actor, request_id, act, returns)

    # ---- commands ----------------------------------------------------------------------------

    def register_course(self, data: Any, actor: Actor, request_id: str | None = None) -> CourseChange:
        """Register a course from its plan; the same course registered again changes nothing."""
        cmd = parse(RegisterCourse, data)
        check_plan_lists_beams(cmd.plan)
        self.outage.check_centres_known(("home_centre", cmd.home_centre), *(("assigned_centres", c) for c in cmd.assigned_centres))
        args = registration(cmd)
        course_id = course_id_for(cmd.home_centre, cmd.patient.id, cmd.plan.uid)

        def act(meta: dict) -> tuple[list[Any], Any]:
            try:
                existing = self.get_course(course_id)
            except errors.CourseNotFound:
                claim = self.claim_plan(course_id, cmd, meta)
                course = Course(**args, meta=meta)
                if cmd.schedule is not None or cmd.site is not None:
                    course.set_schedule(cmd.schedule, cmd.site, meta)
                return [course, *claim], CourseChange(id=str(course_id), status="registered")
            differs = [
                name
                for name, value in (("patient", existing.patient), ("plan", to_event(existing.plan)))
                if msgspec.json.encode(value, order="sorted") != msgspec.json.encode(args[name], order="sorted")
            ]
            if differs:
                raise errors.CourseConflict(
                    "course_conflict.course_already_registered_patient", course_id=course_id, id=cmd.patient.id, uid=cmd.plan.uid, differs=[said(f"field.{name}") for name in differs],
                    conflict={"id": str(course_id), "fields": differs},
                )
            return [], CourseChange(id=str(course_id), status="unchanged")

        given = {k: to_event(v) if k == "schedule" else v for k, v in (("schedule", cmd.schedule), ("site", cmd.site))
                 if v is not None}
        return self.uow.run("register_course", {**args, **given}, actor, request_id, act, CourseChange)

    def claim_plan(self, course_id: uuid.UUID, cmd: RegisterCourse, meta: dict, pending: list[Any] = ()) -> list[Any]:
        """What a new course saves with it so that its patient's plan is no other course (see
        `ledger.plan_course`); refuses when the plan is already another course. `pending`: aggregates
        not saved yet (a bundle registering several courses)."""
        claim_id = plan_course_id_for(cmd.patient.id, cmd.plan.uid)
        claim = next((a for a in pending if isinstance(a, PlanCourse) and a.id == claim_id), None)
        if claim is None:
            try:
                claim = self.repository.get(claim_id)
            except AggregateNotFoundError:
                return [PlanCourse(patient_id=cmd.patient.id, plan_uid=cmd.plan.uid, course_id=str(course_id),
                                   home_centre=cmd.home_centre, meta=meta)]
        claim.check_is(course_id, cmd.home_centre)
        return []

    def log_fraction(self, course_id: uuid.UUID | str, data: Any, actor: Actor, request_id: str | None = None,
                     loaded: Course | None = None) -> FractionRecord:
        """Log a delivered session. Policies of this command: a refusal of a live log (not an import)
        is registered as a near-miss; a confirmed meterset deviation registers a dose-deviation
        incident in the same transaction. `loaded`: the course as the caller just loaded it (for its
        access check), decided on in the first attempt instead of loading it again; if another
        writer got in first its save conflicts and the next attempt loads the course afresh."""
        cmd = parse(LogFraction, data)
        self.outage.check_centres_known(("centre", cmd.centre))
        payload = to_event(cmd)
        first = [loaded] if loaded is not None and str(loaded.id) == str(course_id) else []

        def act(meta: dict) -> tuple[list[Any], Any]:
            course = first.pop() if first else self.get_course(course_id)
            try:
                record = course.deliver_record(cmd, meta)  # a session record replaces a summary's entry
            except errors.RuleViolation as refusal:
                if cmd.source == "ledger":
                    self.billing.near_miss(course, "log_fraction", payload, refusal, actor, request_id, meta)
                raise
            incidents = [Incident(**dose_deviation(course, record), meta=meta)] if record.deviations else []
            return [course, *incidents], record

        return self.uow.run("log_fraction", {"course": str(course_id), **payload}, actor, request_id, act, FractionRecord)

    def log_from_summary(self, course_id: uuid.UUID | str, data: Any, actor: Actor) -> FractionRecord | None:
        """A fraction the OIS lists only in its treatment summary: recorded unless the course holds
        it already (from a session record or an earlier summary): then None. A query, not a refusal."""
        cmd = parse(LogFraction, data)

        def act(meta: dict) -> tuple[list[Any], Any]:
            course = self.get_course(course_id)
            group = course.group(cmd.group) if cmd.group is not None else course.only_group()
            if course.active_records(group.number, cmd.number):
                return [], None
            return [course], course.deliver(cmd, meta)

        return self.uow.run("log_from_summary", {"course": str(course_id), **to_event(cmd)}, actor, None, act)

    def verify_fraction(
        self, course_id: uuid.UUID | str, number: int, by: str, actor: Actor,
        group: int | None = None, request_id: str | None = None,
    ) -> list[FractionRecord]:
        by = parse(VerifyArg, {"by": by}).by
        return self.on_course(
            "verify_fraction", course_id, {"number": number, "group": group, "by": by}, actor, request_id,
            lambda course, meta: course.verify(group, number, by, meta),
            when_refused=self.billing.near_miss,  # a self-verification attempt bypasses the four-eyes check
        )

    def void_fraction(
        self, course_id: uuid.UUID | str, number: int, reason: str, by: str, actor: Actor,
        group: int | None = None, request_id: str | None = None,
    ) -> list[FractionRecord]:
        arg = parse(VoidArg, {"reason": reason, "by": by})
        reason, by = arg.reason, arg.by
        return self.on_course(
            "void_fraction", course_id, {"number": number, "group": group, "reason": reason, "by": by}, actor, request_id,
            lambda course, meta: course.void(group, number, reason, by, meta),
            then=(self.billing.resettle,), returns=list[FractionRecord],
        )

    def assign_centre(self, course_id: uuid.UUID | str, centre: str, actor: Actor, request_id: str | None = None) -> CourseChange:
        centre = parse(CentreArg, {"centre": centre}).centre
        self.outage.check_centres_known(("centre", centre))
        return self.on_course(
            "assign_centre", course_id, {"centre": centre}, actor, request_id,
            lambda course, meta: CourseChange(id=str(course.id), centre=centre, changed=course.assign(centre, meta)),
        )

    def unassign_centre(self, course_id: uuid.UUID | str, centre: str, actor: Actor, request_id: str | None = None) -> CourseChange:
        return self.on_course(
            "unassign_centre", course_id, {"centre": centre}, actor, request_id,
            lambda course, meta: CourseChange(id=str(course.id), centre=centre, changed=course.unassign(centre, meta)),
        )

    def set_triage(self, course_id: uuid.UUID | str, code: int, actor: Actor, request_id: str | None = None) -> CourseChange:
        code = parse(TriageArg, {"triage": code}).triage
        return self.on_course(
            "set_triage", course_id, {"triage": code}, actor, request_id,
            lambda course, meta: CourseChange(id=str(course.id), triage=code, changed=course.set_triage(code, meta)),
        )

    def add_fallback_plan(
        self, course_id: uuid.UUID | str, data: Any, actor: Actor, request_id: str | None = None,
        patient_id: str | None = None, starts_at: int | None = None,
    ) -> CourseChange:
        """`patient_id`: the patient the plan was made for (from its file); another patient is refused.
        `starts_at`: the course's fraction that is the re-plan's fraction 1, in each of its fraction
        groups (default: each group's first fraction not yet delivered)."""
        plan = parse(NewPlan, data).as_plan()
        self.outage.check_centres_known(("centre", plan.centre))
        payload = to_event(plan) if patient_id is None else {**to_event(plan), "patient_id": patient_id}
        starts = {g.number: starts_at for g in plan.fraction_groups} if starts_at is not None else None

        def change(course: Course, meta: dict) -> CourseChange:
            changed = course.add_fallback_plan(plan, meta, patient_id, starts)
            return CourseChange(id=str(course.id), plan_uid=plan.uid, changed=changed,
                                starts_at=course.plan_starts.get(plan.uid, {g.number: 1 for g in plan.fraction_groups}),
                                awaiting_approval=plan.uid in course.awaiting_approval)

        return self.on_course("add_fallback_plan", course_id, {**payload, "starts_at": starts_at}, actor, request_id,
                              change)

    def map_patient_id(self, course_id: uuid.UUID | str, centre: str, patient_id: str, name: str, birth_date: Any,
                       actor: Actor, request_id: str | None = None) -> CourseChange:
        """Record another centre's id of the course's patient, checked against name and birth date."""
        cmd = parse(MapPatientId, {"centre": centre, "patient_id": patient_id, "name": name, "birth_date": birth_date})
        self.outage.check_centres_known(("centre", cmd.centre))
        return self.on_course(
            "map_patient_id", course_id, to_event(cmd), actor, request_id,
            lambda course, meta: CourseChange(id=str(course.id), centre=cmd.centre, patient_id=cmd.patient_id,
                                              changed=course.map_patient_id(cmd.centre, cmd.patient_id, cmd.name,
                                                                            cmd.birth_date, meta)),
        )

    def approve_fallback_plan(self, course_id: uuid.UUID | str, plan_uid: str, actor: Actor,
                              request_id: str | None = None) -> CourseChange:
        """A physicist of the home centre approves a re-plan that departs from the prescription."""
        return self.on_course(
            "approve_fallback_plan", course_id, {"plan_uid": plan_uid}, actor, request_id,
            lambda course, meta: CourseChange(
                id=str(course.id), plan_uid=plan_uid, changed=course.approve_fallback_plan(plan_uid, meta)
            ),
        )

    def suspend_course(self, course_id: uuid.UUID | str, reason: str, actor: Actor, request_id: str | None = None) -> CourseChange:
        reason = parse(ReasonArg, {"reason": reason}).reason
        return self.on_course(
            "suspend_course", course_id, {"reason": reason}, actor, request_id,
            lambda course, meta: (course.suspend(reason, meta), CourseChange(id=str(course.id), status=course.status))[1],
        )

    def resume_course(self, course_id: uuid.UUID | str, actor: Actor, request_id: str | None = None) -> CourseChange:
        return self.on_course(
            "resume_course", course_id, {}, actor, request_id,
            lambda course, meta: (course.resume(meta), CourseChange(id=str(course.id), status=course.status))[1],
        )

    def complete_course(self, course_id: uuid.UUID | str, reason: str, actor: Actor, request_id: str | None = None) -> CourseChange:
        reason = parse(ReasonArg, {"reason": reason}).reason
        return self.on_course(
            "complete_course", course_id, {"reason": reason}, actor, request_id,
            lambda course, meta: (course.complete(reason, meta), CourseChange(id=str(course.id), status=course.status))[1],
            then=(self.billing.resettle,),
        )
