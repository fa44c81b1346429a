"""The application service: a thin list of commands on courses.

Every command loads the course, lets the aggregate check its rules and record events,
and saves in one transaction. A concurrent append to the same course (another centre
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
from ledger.delivery import Destination, destination_id
from ledger.messages import said
from ledger.incident import Incident, dose_deviation
from ledger.local_time import DEFAULT_ZONE, zone_named
from ledger.requests import Request, fingerprint, request_aggregate_id
from ledger.service_billing import BillingCommands
from ledger.service_gaps import GapCommands
from ledger.service_outage import OutageCommands
from ledger.service_trust import TrustCommands
from schemas.course import (
    CentreArg, LogFraction, MapPatientId, NewPlan, ReasonArg, RegisterCourse, TriageArg, VerifyArg, VoidArg, to_event,
)
from ledger.cache import AggregateCache, stream_version
from ledger.unit_of_work import SYSTEM, Actor, DateAsISO, GroupCommit, parse, retrying, utc_now

__all__ = ["SYSTEM", "Actor", "FractionLedger", "parse", "utc_now"]

class FractionLedger(GapCommands, OutageCommands, BillingCommands, TrustCommands, OisImportCommands, Application):
    name = "FractionLedger"

    def __init__(self, env: dict[str, str] | None = None, clock: Callable[[], datetime] = utc_now,
                 zone: tzinfo = DEFAULT_ZONE):
        """`zone`: the zone of a centre that recorded none (the department's)."""
        super().__init__(env)
        self.clock = clock
        # Courses as last saved or loaded, used while the log holds no newer version (ledger/cache.py).
        self.courses = AggregateCache(self.repository.get, lambda i: stream_version(self.recorder, i), kinds=(Course,))
        self.group_commit = GroupCommit(self.save, kept=self.courses)
        self.zone = zone

    def zone_of(self, centre: str) -> tzinfo:
        """The zone a centre's days are computed in: its recorded zone, else the department's."""
        return zone_named(self.centre_zone(centre), self.zone)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # ---- plumbing --------------------------------------------------------------------------

    def meta(self, actor: Actor, request_id: str | None) -> dict:
        return {"user": actor.user, "centre": actor.centre, "recorded_at": self.clock(), "request_id": request_id}

    def get_course(self, course_id: uuid.UUID | str) -> Course:
        """The course as the log has it now, the caller's own copy (from the cache while current)."""
        try:
            course = self.courses.get(uuid.UUID(str(course_id)))
        except (AggregateNotFoundError, ValueError):
            raise errors.CourseNotFound("course_not_found.no_course_with_id", course_id=course_id) from None
        if not isinstance(course, Course):
            raise errors.CourseNotFound("course_not_found.no_course_with_id", course_id=course_id)
        return course

    def previous_answer(self, request_id: str | None, command: str, fp: str) -> Any:
        """The first result of this request, or None when it is new."""
        if request_id is None:
            return None
        try:
            request = self.repository.get(request_aggregate_id(request_id))
        except AggregateNotFoundError:
            return None
        if request.fingerprint != fp:
            raise errors.RequestIdReused(
                "request_id_reused.request_id_was_already", request_id=repr(request_id), command=request.command
            )
        return request.result

    def run(
        self,
        command: str,
        payload: Any,
        actor: Actor,
        request_id: str | None,
        act: Callable[[dict], tuple[list[Any], Any]],
    ) -> Any:
        """Run `act(meta)` -> (aggregates to save, result) until it saves without a conflict."""
        fp = fingerprint(command, {"payload": payload, "actor": actor})

        def attempt() -> Any:
            answered = self.previous_answer(request_id, command, fp)
            if answered is not None:
                return answered
            meta = self.meta(actor, request_id)
            aggregates, result = act(meta)
            if request_id is not None:
                aggregates.append(Request(request_id=request_id, command=command, fingerprint=fp, result=result, meta=meta))
            self.group_commit.save(*aggregates)  # returns once durable, with the others that came together
            return result

        return retrying(attempt)

    def on_course(
        self,
        command: str,
        course_id: uuid.UUID | str,
        payload: Any,
        actor: Actor,
        request_id: str | None,
        change: Callable[[Course, dict], Any],
        near_miss: bool = False,
    ) -> Any:
        """`near_miss`: the command is a live attempt at the patient's treatment (an RTT logging or
        verifying), so a safety rule's refusal of it is registered as a near-miss incident."""

        def act(meta: dict) -> tuple[list[Any], Any]:
            course = self.get_course(course_id)
            try:
                result = change(course, meta)
            except errors.RuleViolation as refusal:
                if near_miss:
                    self.record_near_miss(course, command, payload, refusal, actor, request_id, meta)
                raise
            # A completed course's split follows every change to it (completion, void, category).
            return [course, *self.settle(course, meta, command)[0]], result

        return self.run(command, {"course": str(course_id), **payload}, actor, request_id, act)

    # ---- commands ----------------------------------------------------------------------------

    def register_course(self, data: Any, actor: Actor, request_id: str | None = None) -> dict:
        """Register a course from its plan; the same course registered again changes nothing."""
        cmd = parse(RegisterCourse, data)
        check_plan_lists_beams(cmd.plan)
        self.check_centres_known(("home_centre", cmd.home_centre), *(("assigned_centres", c) for c in cmd.assigned_centres))
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
                return [course, *claim], {"id": str(course_id), "status": "registered"}
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
            return [], {"id": str(course_id), "status": "unchanged"}

        given = {k: to_event(v) if k == "schedule" else v for k, v in (("schedule", cmd.schedule), ("site", cmd.site))
                 if v is not None}
        return self.run("register_course", {**args, **given}, actor, request_id, act)

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
                     loaded: Course | None = None) -> dict:
        """Log a delivered session. Policies of this command: a refusal of a live log (not an import)
        is registered as a near-miss; a confirmed meterset deviation registers a dose-deviation
        incident in the same transaction. `loaded`: the course as the caller just loaded it (for its
        access check), decided on in the first attempt instead of loading it again; if another
        writer got in first its save conflicts and the next attempt loads the course afresh."""
        cmd = parse(LogFraction, data)
        self.check_centres_known(("centre", cmd.centre))
        payload = to_event(cmd)
        first = [loaded] if loaded is not None and str(loaded.id) == str(course_id) else []

        def act(meta: dict) -> tuple[list[Any], Any]:
            course = first.pop() if first else self.get_course(course_id)
            try:
                record = course.deliver_record(cmd, meta)  # a session record replaces a summary's entry
            except errors.RuleViolation as refusal:
                if cmd.source == "ledger":
                    self.record_near_miss(course, "log_fraction", payload, refusal, actor, request_id, meta)
                raise
            incidents = [Incident(**dose_deviation(course, record), meta=meta)] if record.deviations else []
            return [course, *incidents], to_event(record)

        return self.run("log_fraction", {"course": str(course_id), **payload}, actor, request_id, act)

    def log_from_summary(self, course_id: uuid.UUID | str, data: Any, actor: Actor) -> dict | None:
        """A fraction the OIS lists only in its treatment summary: recorded unless the course holds
        it already (from a session record or an earlier summary): then None. A query, not a refusal."""
        cmd = parse(LogFraction, data)

        def act(meta: dict) -> tuple[list[Any], Any]:
            course = self.get_course(course_id)
            group = course.group(cmd.group) if cmd.group is not None else course.only_group()
            if course.active_records(group.number, cmd.number):
                return [], None
            return [course], to_event(course.deliver(cmd, meta))

        return self.run("log_from_summary", {"course": str(course_id), **to_event(cmd)}, actor, None, act)

    def verify_fraction(
        self, course_id: uuid.UUID | str, number: int, by: str, actor: Actor,
        group: int | None = None, request_id: str | None = None,
    ) -> list[dict]:
        by = parse(VerifyArg, {"by": by}).by
        return self.on_course(
            "verify_fraction", course_id, {"number": number, "group": group, "by": by}, actor, request_id,
            lambda course, meta: [to_event(r) for r in course.verify(group, number, by, meta)],
            near_miss=True,  # a self-verification attempt bypasses the four-eyes check
        )

    def void_fraction(
        self, course_id: uuid.UUID | str, number: int, reason: str, by: str, actor: Actor,
        group: int | None = None, request_id: str | None = None,
    ) -> list[dict]:
        arg = parse(VoidArg, {"reason": reason, "by": by})
        reason, by = arg.reason, arg.by
        return self.on_course(
            "void_fraction", course_id, {"number": number, "group": group, "reason": reason, "by": by}, actor, request_id,
            lambda course, meta: [to_event(r) for r in course.void(group, number, reason, by, meta)],
        )

    def assign_centre(self, course_id: uuid.UUID | str, centre: str, actor: Actor, request_id: str | None = None) -> dict:
        centre = parse(CentreArg, {"centre": centre}).centre
        self.check_centres_known(("centre", centre))
        return self.on_course(
            "assign_centre", course_id, {"centre": centre}, actor, request_id,
            lambda course, meta: {"id": str(course.id), "centre": centre, "changed": course.assign(centre, meta)},
        )

    def unassign_centre(self, course_id: uuid.UUID | str, centre: str, actor: Actor, request_id: str | None = None) -> dict:
        return self.on_course(
            "unassign_centre", course_id, {"centre": centre}, actor, request_id,
            lambda course, meta: {"id": str(course.id), "centre": centre, "changed": course.unassign(centre, meta)},
        )

    def set_triage(self, course_id: uuid.UUID | str, code: int, actor: Actor, request_id: str | None = None) -> dict:
        code = parse(TriageArg, {"triage": code}).triage
        return self.on_course(
            "set_triage", course_id, {"triage": code}, actor, request_id,
            lambda course, meta: {"id": str(course.id), "triage": code, "changed": course.set_triage(code, meta)},
        )

    def add_fallback_plan(
        self, course_id: uuid.UUID | str, data: Any, actor: Actor, request_id: str | None = None,
        patient_id: str | None = None, starts_at: int | None = None,
    ) -> dict:
        """`patient_id`: the patient the plan was made for (from its file); another patient is refused.
        `starts_at`: the course's fraction that is the re-plan's fraction 1, in each of its fraction
        groups (default: each group's first fraction not yet delivered)."""
        plan = parse(NewPlan, data).as_plan()
        self.check_centres_known(("centre", plan.centre))
        payload = to_event(plan) if patient_id is None else {**to_event(plan), "patient_id": patient_id}
        starts = {g.number: starts_at for g in plan.fraction_groups} if starts_at is not None else None

        def change(course: Course, meta: dict) -> dict:
            changed = course.add_fallback_plan(plan, meta, patient_id, starts)
            return {"id": str(course.id), "plan_uid": plan.uid, "changed": changed,
                    "starts_at": course.plan_starts.get(plan.uid, {g.number: 1 for g in plan.fraction_groups}),
                    "awaiting_approval": plan.uid in course.awaiting_approval}

        return self.on_course("add_fallback_plan", course_id, {**payload, "starts_at": starts_at}, actor, request_id,
                              change)

    def map_patient_id(self, course_id: uuid.UUID | str, centre: str, patient_id: str, name: str, birth_date: Any,
                       actor: Actor, request_id: str | None = None) -> dict:
        """Record another centre's id of the course's patient, checked against name and birth date."""
        cmd = parse(MapPatientId, {"centre": centre, "patient_id": patient_id, "name": name, "birth_date": birth_date})
        self.check_centres_known(("centre", cmd.centre))
        return self.on_course(
            "map_patient_id", course_id, to_event(cmd), actor, request_id,
            lambda course, meta: {"id": str(course.id), "centre": cmd.centre, "patient_id": cmd.patient_id,
                                  "changed": course.map_patient_id(cmd.centre, cmd.patient_id, cmd.name,
                                                                   cmd.birth_date, meta)},
        )

    def approve_fallback_plan(self, course_id: uuid.UUID | str, plan_uid: str, actor: Actor,
                              request_id: str | None = None) -> dict:
        """A physicist of the home centre approves a re-plan that departs from the prescription."""
        return self.on_course(
            "approve_fallback_plan", course_id, {"plan_uid": plan_uid}, actor, request_id,
            lambda course, meta: {
                "id": str(course.id), "plan_uid": plan_uid, "changed": course.approve_fallback_plan(plan_uid, meta)
            },
        )

    def suspend_course(self, course_id: uuid.UUID | str, reason: str, actor: Actor, request_id: str | None = None) -> dict:
        reason = parse(ReasonArg, {"reason": reason}).reason
        return self.on_course(
            "suspend_course", course_id, {"reason": reason}, actor, request_id,
            lambda course, meta: (course.suspend(reason, meta), {"id": str(course.id), "status": course.status})[1],
        )

    def resume_course(self, course_id: uuid.UUID | str, actor: Actor, request_id: str | None = None) -> dict:
        return self.on_course(
            "resume_course", course_id, {}, actor, request_id,
            lambda course, meta: (course.resume(meta), {"id": str(course.id), "status": course.status})[1],
        )

    def complete_course(self, course_id: uuid.UUID | str, reason: str, actor: Actor, request_id: str | None = None) -> dict:
        reason = parse(ReasonArg, {"reason": reason}).reason
        return self.on_course(
            "complete_course", course_id, {"reason": reason}, actor, request_id,
            lambda course, meta: (course.complete(reason, meta), {"id": str(course.id), "status": course.status})[1],
        )


    # ---- deliveries to destinations (HL7 receivers, file drops) ------------------------------

    def destination(self, name: str) -> Destination | None:
        """What a destination was given and answered, or None if nothing was ever sent there."""
        try:
            found = self.repository.get(destination_id(name))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, Destination) else None

    def on_destination(self, command: str, name: str, payload: Any, actor: Actor, change: Callable[[Destination, dict], Any]) -> Any:
        if not name.strip():
            raise errors.InvalidCommand("destination", "invalid.destination_needs_name")

        def act(meta: dict) -> tuple[list[Any], Any]:
            found = self.destination(name) or Destination(name=name, meta=meta)
            return [found], change(found, meta)

        return self.run(command, {"destination": name, **payload}, actor, None, act)

    def record_export(self, name: str, message_ids: list[str], where: str, actor: Actor) -> int:
        """Messages written for a destination; returns how many were new."""
        return self.on_destination(
            "record_export", name, {"ids": message_ids, "where": where}, actor,
            lambda d, meta: d.record_export(message_ids, where, meta),
        )

    def record_answers(self, name: str, accepted: list[str], refused: list[dict], actor: Actor) -> None:
        """A receiver's acknowledgements: accepted ids, refusals as {id, code, text}."""
        self.on_destination(
            "record_answers", name, {"accepted": accepted, "refused": refused}, actor,
            lambda d, meta: d.record_answers(accepted, refused, meta),
        )
