"""Commands of trust between centres: centres and their keys, and importing a bundle.

A bundle is applied whole or not at all: every course it touches is loaded once, each event
is applied by the course's own rules (`Course.receive` & co.), and everything is saved in
one transaction. Each event is remembered as a `Request` keyed by the exporting centre and
the event's place in the exporting ledger, so importing the same bundle again (or an
overlapping one) applies nothing twice. The signature and the chain are checked before
this runs (adapters/bundle.py); the checks of content that need the ledger are here.
A fraction that collides with one this ledger holds is kept too: the course is flagged and a
near-miss incident is registered for the home centre, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ledger import errors
from ledger.messages import said
from ledger.centre import (
    Centre, CentreAlias, alias_id_for, centre_or_new, check_alias, check_zone, get_centre, normalized,
)
from ledger.course import Course, course_id_for, registration
from ledger.course_index import CourseIndex, Found, course_of_patient_plan, course_of_record
from ledger.incident import Incident, near_miss, near_miss_id_for
from ledger.requests import Request, fingerprint, request_aggregate_id
from ledger.unit_of_work import Actor, UnitOfWork, parse, retrying
from schemas.course import CentreArg, LogFraction, to_event
from schemas.results import BundleImported, CentreChange
from schemas.trust import (
    AddCentre, Amended, Bundle, Countersigned, Delivered, FallbackAdded, FallbackApproved, ScheduleGiven, Verified, Voided,
)

def bundle_request_id(centre: str, key: str) -> str:
    return f"bundle/{centre}/{key}"


def as_command(d: Delivered) -> LogFraction:
    """The session as the exporting centre recorded it, to run through this ledger's rules;
    validated like a fraction logged here (a value the home systems cannot take is refused)."""

    r = d.record
    return parse(LogFraction, {
        "number": r.number, "centre": r.centre, "machine": r.machine, "operator": r.operator,
        "delivered_at": r.delivered_at, "group": r.group, "plan_uid": r.plan_uid, "delivery_type": r.delivery_type,
        "note": r.note, "source": "bundle", "source_uid": r.record_id, "deviation_reason": r.deviation_reason,
        "beams": [{"number": b.number, "delivered_mu": b.delivered_mu, "specified_mu": b.specified_mu,
                   "termination": b.termination} for b in r.beams],
    })


class TrustCommands:
    """`FractionLedger.trust`. `courses`: the ledger's course commands (loading a course, claiming
    a plan for a new one); `outage`: the centre registry every command checks its centres against."""

    def __init__(self, uow: UnitOfWork, courses: Any, outage: Any):
        self.uow, self.courses, self.outage = uow, courses, outage
        self._course_index = CourseIndex()

    # ---- centres ---------------------------------------------------------------------------

    def get_centre(self, name: str) -> Centre:
        return get_centre(self.uow, name)

    def add_centre(self, name: str, public_key: str | None, actor: Any, replace_key: bool = False,
                   request_id: str | None = None) -> CentreChange:
        """Add a centre (with its public key), or give a known centre its key; the same again changes nothing."""

        cmd = parse(AddCentre, {"name": name, "public_key": public_key})
        self.outage.check_centres_known(("name", cmd.name))

        def act(meta: dict) -> tuple[list[Any], Any]:
            try:
                centre = self.get_centre(cmd.name)
            except errors.CentreNotFound:
                return [Centre(name=cmd.name, public_key=cmd.public_key, meta=meta)], CentreChange(
                    centre=cmd.name, status="added", public_key=cmd.public_key)
            changed = centre.set_key(cmd.public_key, replace_key, meta)
            return [centre], CentreChange(centre=cmd.name, status="key set" if changed else "unchanged",
                                          public_key=centre.public_key)

        return self.uow.run("add_centre", {"name": cmd.name, "public_key": cmd.public_key, "replace": replace_key},
                        actor, request_id, act, CentreChange)

    def add_centre_alias(self, name: str, kind: str, value: str, actor: Any, request_id: str | None = None) -> CentreChange:
        """Declare a name a partner's systems use for centre `name` (an institution name, a station
        name, an AE title). A name already meaning another centre is refused."""

        name = parse(CentreArg, {"centre": name}).centre
        self.outage.check_centres_known(("centre", name))
        check_alias(kind, value)

        def act(meta: dict) -> tuple[list[Any], Any]:
            known = self.uow.get(alias_id_for(kind, value))
            if known is not None and known.centre != name:
                raise errors.CentreConflict(
                    "centre_conflict.name_already_means_centre", kind=kind, value=repr(value), centre=known.centre
                )
            centre, new = centre_or_new(self.uow, name, meta)
            changed = centre.add_alias(kind, value, meta)
            found = [centre] + ([] if known is not None else [CentreAlias(kind=kind, value=value, centre=name, meta=meta)])
            return (found if changed or new else []), CentreChange(centre=name, kind=kind, value=value,
                                                                   status="added" if changed else "unchanged")

        return self.uow.run("add_centre_alias", {"centre": name, "kind": kind, "value": value}, actor, request_id, act,
                            CentreChange)

    def set_centre_zone(self, name: str, zone: str, actor: Any, request_id: str | None = None) -> CentreChange:
        """The IANA zone of a centre: times its records give without an offset are read in it, on their date."""

        name = parse(CentreArg, {"centre": name}).centre
        self.outage.check_centres_known(("centre", name))
        check_zone(zone)

        def act(meta: dict) -> tuple[list[Any], Any]:
            centre, new = centre_or_new(self.uow, name, meta)
            changed = centre.set_zone(zone, meta)
            return ([centre] if changed or new else []), CentreChange(centre=name, zone=zone,
                                                                      status="set" if changed else "unchanged")

        return self.uow.run("set_centre_zone", {"centre": name, "zone": zone}, actor, request_id, act, CentreChange)

    def centre_named(self, kind: str, value: str) -> str | None:
        """The centre a partner's name means, or None when no one declared it."""
        if not normalized(value):
            return None
        known = self.uow.get(alias_id_for(kind, value))
        return known.centre if known is not None else None

    def centre_zone(self, name: str) -> str | None:
        try:
            return self.get_centre(name).zone
        except errors.CentreNotFound:
            return None

    def course_index(self) -> CourseIndex:
        """Which course each plan is, from the event store, caught up (see `ledger.course_index`)."""
        return self._course_index.refresh(self.courses)

    def course_of_record(self, patient_id: str, plan_uid: str, sees: Callable[[str], bool] = lambda _: True) -> Found:
        return course_of_record(self.course_index(), patient_id, plan_uid, self.courses.get_course, sees)

    def course_of_patient_plan(self, patient_id: str, plan: str, sees: Callable[[str], bool] = lambda _: True) -> Found:
        return course_of_patient_plan(self.course_index(), patient_id, plan, self.courses.get_course, sees)

    def attribute_record(self, course_id: str, plan_uid: str, machine: str, names: dict[str, str]) -> str:
        """Where a record from an OIS was delivered (see `Course.centre_of_record`); `names` maps
        alias kinds (institution, station, aet) to what the record says."""
        course = self.courses.get_course(course_id)
        declared = [c for c in (self.centre_named(k, v) for k, v in names.items() if v) if c]
        return course.centre_of_record(plan_uid, machine, list(names.values()), declared)

    # ---- bundles ---------------------------------------------------------------------------

    def check_bundle_origin(self, bundle: Bundle) -> None:
        """A centre's bundle carries only what was recorded at that centre."""
        for i, ev in enumerate(bundle.events, 1):
            where = ev.record.centre if isinstance(ev, Delivered) else ev.centre
            if where != bundle.centre:
                raise errors.BundleRefused(
                    "bundle_refused.event_was_recorded_but", i=i, key=ev.key, where=where, centre=bundle.centre
                )

    def import_bundle(self, bundle: Bundle, actor: Any) -> BundleImported:
        """Apply a bundle whose signature and chain were checked; all of it or nothing."""
        self.check_bundle_origin(bundle)
        try:
            self.outage.check_centres_known(("centre", bundle.centre),
                                     *(("home_centre", c.registration.home_centre) for c in bundle.courses),
                                     *(("assigned_centres", a) for c in bundle.courses for a in c.registration.assigned_centres))
        except errors.UnknownCentre as exc:
            raise errors.BundleRefused("bundle_refused.detail", detail=str(exc)) from None

        def attempt() -> BundleImported:
            try:
                aggregates, summary = self.apply_bundle(bundle, actor)
            except errors.BundleRefused:
                raise
            except errors.LedgerError as exc:
                raise errors.BundleRefused("bundle_refused.detail", detail=str(exc)) from None
            self.uow.group_commit.save(*aggregates)
            return BundleImported(**summary)

        return retrying(attempt, "contended.ledger_kept_changing_while")

    def apply_bundle(self, bundle: Bundle, actor: Any) -> tuple[list[Any], dict]:
        courses: dict[str, Course] = {}
        new: list[Any] = []  # aggregates created by the import (courses, requests, incidents)
        summary: dict[str, Any] = {"centre": bundle.centre, "events": len(bundle.events), "applied": 0,
                                   "already_imported": 0, "courses_registered": 0, "collisions": []}
        base_meta = self.uow.meta(actor, None)
        for bc in bundle.courses:
            args = registration(bc.registration)
            cid = course_id_for(bc.registration.home_centre, bc.registration.patient.id, bc.registration.plan.uid)
            if str(cid) != bc.id:
                raise errors.BundleRefused("bundle_refused.course_registration_gives_id", id=bc.id, cid=cid)
            try:
                course = self.courses.get_course(cid)
                for name in ("patient", "plan"):
                    mine = course.patient if name == "patient" else to_event(course.plan)
                    if msgspec.json.encode(mine, order="sorted") != msgspec.json.encode(args[name], order="sorted"):
                        raise errors.BundleRefused(
                            "bundle_refused.course_bundle_s_differs", id=bc.id, name=name
                        )
            except errors.CourseNotFound:
                claim = self.courses.claim_plan(cid, bc.registration, base_meta, new)
                course = Course(**args, meta=base_meta)
                new.extend([course, *claim])
                summary["courses_registered"] += 1
            courses[bc.id] = course
        for i, ev in enumerate(bundle.events, 1):
            rid = bundle_request_id(bundle.centre, ev.key)
            # The event as recorded at its centre; its hash depends on the bundle it travels in.
            fp = fingerprint("bundle_event", {k: v for k, v in to_event(ev).items() if k != "hash"})
            done = self.uow.get(request_aggregate_id(rid))
            if done is not None:
                if done.fingerprint != fp:
                    raise errors.BundleRefused(
                        "bundle_refused.event_was_imported_before", i=i, key=ev.key
                    )
                summary["already_imported"] += 1
                continue
            course = courses.get(ev.course)
            if course is None:
                raise errors.BundleRefused("bundle_refused.event_names_course_which", i=i, key=ev.key, course=ev.course)
            meta = {**base_meta, "user": ev.user, "centre": ev.centre, "request_id": rid,
                    "bundle": {"centre": bundle.centre, "imported_by": actor.user, "recorded_at": ev.recorded_at}}
            try:
                result = self.apply_event(course, ev, meta, summary, new)
            except errors.LedgerError as exc:
                raise errors.BundleRefused("bundle_refused.event", i=i, key=ev.key, exc=exc) from None
            new.append(Request(request_id=rid, command="bundle_event", fingerprint=fp, result=result, meta=meta))
            summary["applied"] += 1
        return [*new, *(c for c in courses.values() if all(c is not n for n in new))], summary

    def apply_event(self, course: Course, ev: Any, meta: dict, summary: dict, new: list[Any]) -> dict:
        if isinstance(ev, Delivered):
            recorded = {"recorded_at": ev.record.recorded_at or ev.recorded_at, "recorded_by": ev.record.recorded_by or ev.user}
            cmd = as_command(ev)
            record, clash = course.receive(cmd, recorded, meta)
            if clash is not None:
                incident = self.collision_incident(course, cmd, clash, meta)
                new.append(incident)
                summary["collisions"].append({"course": str(course.id), "number": record.number, "record_id": record.record_id,
                                              "refusal": clash.code, "incident": str(incident.id),
                                              "message": course.flags[-1]["reason"]})
            return {"record_id": record.record_id, "collision": clash.code if clash else None}
        if isinstance(ev, Verified):
            return {"changed": course.verify_received(ev.record_ids, meta["bundle"]["centre"], ev.by, meta)}
        if isinstance(ev, Voided):
            return {"changed": course.void_received(ev.record_ids, meta["bundle"]["centre"], ev.reason, ev.by, meta)}
        if isinstance(ev, FallbackAdded):
            starts = {int(k): v for k, v in ev.starts_at.items()} if ev.starts_at else None
            return {"changed": course.add_fallback_plan(ev.plan.as_plan(), meta, starts_at=starts)}
        if isinstance(ev, FallbackApproved):
            return {"changed": course.approve_fallback_plan(ev.plan_uid, meta)}
        if isinstance(ev, Amended):
            return {"changed": course.receive_amendment(ev.amendment, meta)}
        if isinstance(ev, Countersigned):
            return {"changed": course.receive_countersign(ev.amendment_id, ev.before, ev.after, meta)}
        if isinstance(ev, ScheduleGiven):
            return {"changed": course.set_schedule(ev.schedule, ev.site, meta)}
        raise errors.BundleRefused("bundle_refused.unknown_event_type", name=type(ev).__name__)

    def collision_incident(self, course: Course, cmd: LogFraction, clash: errors.RuleViolation, meta: dict) -> Incident:
        """The collision as a near-miss incident of the course's home centre, saved in the bundle's
        transaction; its id follows from the bundle event, so it is registered once."""

        args = near_miss(course, "import_bundle", to_event(cmd), clash, Actor(meta["user"], meta["centre"]))
        args["description"] = said("incident.bundle_collision", reason=course.flags[-1]["reason"])
        return Incident(incident_id=str(near_miss_id_for(meta["request_id"])), **args, meta=meta)
