"""Commands on incidents, agreements and course splits (`FractionLedger.billing`).

Every command is one unit of work (`ledger.unit_of_work.UnitOfWork`). Two of its methods are
policies that course commands name as their steps (`FractionLedger.on_course`): `near_miss`
when a safety rule refuses a live attempt at treatment, and `resettle` after a change that can
move a completed course's split (its completion, a void, its category), so that the completion
or a later correction records the course's (superseding) split in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import date
from functools import cache
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from ledger import errors
from ledger.billing import Agreement, Settlement, agreement_id_for, check_terms, settlement_id_for, split_for
from ledger.course import COMPLETED, Course
from ledger.incident import Incident, incident_id_for, is_near_miss, near_miss, near_miss_id_for, registration
from schemas.billing import AgreementTerms, CloseArg, CourseCategoryArg, FollowUpArg, RegisterIncident, Split
from ledger.unit_of_work import Actor, UnitOfWork, parse
from schemas.course import to_event
from schemas.results import AgreementChange, CourseChange, IncidentChange, Settled



class BillingCommands:
    """`courses`: the ledger's course commands (loading and changing a course, centres' zones);
    `outage`: the centre registry every command checks its centres against."""

    def __init__(self, uow: UnitOfWork, courses: Any, outage: Any):
        self.uow, self.courses, self.outage = uow, courses, outage

    # ---- incidents -------------------------------------------------------------------------

    def get_incident(self, incident_id: uuid.UUID | str) -> Incident:
        try:
            incident = self.uow.repository.get(uuid.UUID(str(incident_id)))
        except (AggregateNotFoundError, ValueError):
            raise errors.IncidentNotFound("incident_not_found.no_incident_with_id", incident_id=incident_id) from None
        if not isinstance(incident, Incident):
            raise errors.IncidentNotFound("incident_not_found.no_incident_with_id", incident_id=incident_id)
        return incident

    def register_incident(self, data: Any, actor: Actor, request_id: str | None = None) -> IncidentChange:
        cmd = parse(RegisterIncident, data)
        self.outage.check_centres_known(("centre", cmd.centre))
        if cmd.fraction is not None and cmd.course_id is None:
            raise errors.InvalidCommand("fraction", "invalid.fraction_named_within_course")
        incident_id = str(incident_id_for(request_id))

        def act(meta: dict) -> tuple[list[Any], Any]:
            course = self.courses.get_course(cmd.course_id) if cmd.course_id is not None else None
            args = registration(cmd, course.home_centre if course else None, cmd.by or actor.user)
            if course is not None:
                args["course_id"] = str(course.id)
            incident = Incident(incident_id=incident_id, **args, meta=meta)
            return [incident], IncidentChange(id=incident_id, status=incident.status, category=cmd.category)

        return self.uow.run("register_incident", to_event(cmd), actor, request_id, act, IncidentChange)

    def add_follow_up(
        self, incident_id: str, text: str, actor: Actor, by: str | None = None, request_id: str | None = None
    ) -> IncidentChange:
        arg = parse(FollowUpArg, {"text": text, "by": by})
        text, by = arg.text, arg.by

        def act(meta: dict) -> tuple[list[Any], Any]:
            incident = self.get_incident(incident_id)
            incident.follow_up(text, by or actor.user, meta)
            return [incident], IncidentChange(id=str(incident.id), status=incident.status, follow_ups=len(incident.follow_ups))

        return self.uow.run("add_follow_up", {"incident": str(incident_id), "text": text, "by": by}, actor, request_id, act,
                            IncidentChange)

    def close_incident(
        self, incident_id: str, resolution: str, actor: Actor, by: str | None = None, request_id: str | None = None
    ) -> IncidentChange:
        arg = parse(CloseArg, {"resolution": resolution, "by": by})
        resolution, by = arg.resolution, arg.by

        def act(meta: dict) -> tuple[list[Any], Any]:
            incident = self.get_incident(incident_id)
            incident.close(resolution, by or actor.user, meta)
            return [incident], IncidentChange(id=str(incident.id), status=incident.status)

        return self.uow.run("close_incident", {"incident": str(incident_id), "resolution": resolution, "by": by},
                        actor, request_id, act, IncidentChange)

    def near_miss(
        self, course: Course, command: str, payload: dict, refusal: errors.RuleViolation, actor: Actor,
        request_id: str | None, meta: dict,
    ) -> None:
        """Save the refusal as a near-miss incident in its own transaction; the course is untouched.
        A refused request retried with the same request id is the same attempt: recorded once.
        Refusals that stopped no harm (a meterset to confirm, say) are not near-misses."""
        if not is_near_miss(refusal):
            return
        incident = Incident(
            incident_id=str(near_miss_id_for(request_id)),
            **near_miss(course, command, payload, refusal, actor),
            meta=meta,
        )
        try:
            self.uow.save(incident)
        except IntegrityError:
            pass  # this very request was refused (and recorded) before

    # ---- agreements --------------------------------------------------------------------------

    def agree(self, data: Any, actor: Actor, request_id: str | None = None) -> AgreementChange:
        """Record a version of the agreement between a billing centre and a partner."""
        terms = parse(AgreementTerms, data)
        if terms.version:
            raise errors.InvalidCommand("version", "invalid.versions_are_numbered_ledger")
        check_terms(terms)

        def act(meta: dict) -> tuple[list[Any], Any]:
            try:
                agreement = self.uow.repository.get(agreement_id_for(terms.billing_centre, terms.partner))
            except AggregateNotFoundError:
                agreement = Agreement(billing_centre=terms.billing_centre, partner=terms.partner, meta=meta)
            version, changed = agreement.amend(terms, meta)
            return [agreement], AgreementChange(id=str(agreement.id), changed=changed, terms=to_event(version))

        return self.uow.run("agree", to_event(terms), actor, request_id, act, AgreementChange)

    def agreement_versions(self, billing_centre: str, partner: str) -> list[dict]:
        try:
            agreement = self.uow.repository.get(agreement_id_for(billing_centre, partner))
        except AggregateNotFoundError:
            return []
        return [to_event(v) for v in agreement.versions]

    # ---- course category and splits ------------------------------------------------------------

    def set_course_category(self, course_id: uuid.UUID | str, category: str, actor: Actor, request_id: str | None = None) -> CourseChange:
        category = parse(CourseCategoryArg, {"category": category}).category
        return self.courses.on_course(
            "set_course_category", course_id, {"category": category}, actor, request_id,
            lambda course, meta: CourseChange(id=str(course.id), category=category, changed=course.set_category(category, meta)),
            then=(self.resettle,),
        )

    def split_of(self, course: Course) -> Split:
        @cache
        def find_terms(billing_centre: str, partner: str, on: date) -> AgreementTerms | None:
            try:
                agreement = self.uow.repository.get(agreement_id_for(billing_centre, partner))
            except AggregateNotFoundError:
                return None
            return agreement.in_force(on)

        return split_for(course, find_terms, self.courses.zone_of)

    def settle(self, course: Course, meta: dict, cause: str) -> tuple[list[Any], Split | None, bool]:
        """For a completed course: (aggregates to save, its split, whether a new split was recorded)."""
        if course.status != COMPLETED:
            return [], None, False
        try:
            settlement = self.uow.repository.get(settlement_id_for(course.id))
        except AggregateNotFoundError:
            settlement = Settlement(course_id=str(course.id), meta=meta)
        split = self.split_of(course)
        changed = settlement.record(split, cause, meta)
        return ([settlement] if changed else []), split, changed

    def resettle(self, course: Course, meta: dict, cause: str) -> list[Any]:
        """The policy step: what to save with a change so that a completed course's split follows it."""
        return self.settle(course, meta, cause)[0]

    def settle_course(self, course_id: uuid.UUID | str, actor: Actor, request_id: str | None = None) -> Settled:
        """Recompute a completed course's split (e.g. after an agreement was recorded late);
        a different result supersedes the split in force, the same result records nothing."""

        def act(meta: dict) -> tuple[list[Any], Any]:
            course = self.courses.get_course(course_id)
            if course.status != COMPLETED:
                raise errors.LifecycleConflict(
                    "lifecycle_conflict.course_split_recorded_when", course=course.plan.label, status=course.status
                )
            aggregates, split, changed = self.settle(course, meta, "settle_course")
            return aggregates, Settled(id=str(course.id), changed=changed, split=split)

        return self.uow.run("settle_course", {"course": str(course_id)}, actor, request_id, act, Settled)

    def splits_of(self, course_id: uuid.UUID | str) -> list[dict]:
        """Every split of a course, oldest first (the last is in force)."""
        try:
            settlement = self.uow.repository.get(settlement_id_for(course_id))
        except AggregateNotFoundError:
            return []
        return [to_event(s) for s in settlement.splits]
