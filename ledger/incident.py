"""An incident: something that went wrong (or nearly) around a course, registered at any centre.

The agreement between centres asks the partner to return its incident registrations, so
every incident names the course's home centre. A refusal by a safety rule is itself an
incident (a near-miss): the ledger stopped something that would have harmed a patient,
and the home centre must learn who tried, where and when.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger import errors
from ledger.messages import said
from ledger.course import NAMESPACE
from schemas.billing import DOSE_DEVIATION, HIGH, LOW, MEDIUM, NEAR_MISS, RegisterIncident

OPEN, CLOSED = "open", "closed"

# A near-miss is rated by the harm it would have done had it not been refused.
# Only a live attempt at treatment is a near-miss (an RTT logging or verifying; never an import,
# whose decisions about what it already holds are queries): see `FractionLedger.log_fraction`.
NEAR_MISS_SEVERITY = {
    "fraction_already_delivered": HIGH,  # the same fraction twice (FANC REX 3's extra fraction)
    "fraction_out_of_range": HIGH,  # a fraction beyond the prescription
    "beam_already_complete": HIGH,  # a beam given again in a continuation
    "plan_has_no_beams": MEDIUM,
    "course_not_active": MEDIUM,
    "verifier_is_operator": LOW,  # the four-eyes check bypassed: no dose given, a barrier missed
    "nothing_to_continue": LOW,
    "patient_mismatch": HIGH,
    "plan_for_another_centre": HIGH,  # a partner's plan would have been the home centre's default
    "plan_not_approved": HIGH,  # a re-plan far from the prescription, not yet checked by the home centre
    "countersigner_is_prescriber": LOW,  # the four eyes on a prescription change bypassed; it changed nothing
}
# A confirmed deviation beyond this share of what was due is a high-severity dose deviation.
HIGH_DEVIATION_SHARE = Decimal("0.10")


def incident_id_for(request_id: str | None) -> uuid.UUID:
    """A retried registration (same request id) names the same incident, so it is recorded once."""
    return uuid.uuid5(NAMESPACE, f"incident/{request_id}") if request_id else uuid.uuid4()


def near_miss_id_for(request_id: str | None) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"near-miss/{request_id}") if request_id else uuid.uuid4()


class Incident(Aggregate):
    """Registered once, followed up any number of times, closed once; nothing after closing."""

    @staticmethod
    def create_id(incident_id: str, **_: Any) -> uuid.UUID:
        return uuid.UUID(incident_id)

    @event("Registered")
    def __init__(
        self,
        *,
        incident_id: str,
        centre: str,
        home_centre: str | None,
        course_id: str | None,
        fraction: int | None,
        category: str,
        severity: str,
        description: str,
        by: str,
        occurred_at: Any,
        attempt: dict | None,
        meta: dict,
    ):
        self.centre = centre
        self.home_centre = home_centre
        self.course_id = course_id
        self.fraction = fraction
        self.category = category
        self.severity = severity
        self.description = description
        self.by = by
        self.attempt = attempt
        self.status = OPEN
        self.resolution: str | None = None
        self.follow_ups: list[dict] = []

    def check_open(self, doing: str) -> None:
        """`doing`: a `doing.*` message code."""
        if self.status != OPEN:
            raise errors.IncidentClosed("incident_closed.cannot_incident_closed", doing=said(doing), id=self.id,
                                        resolution=self.resolution or said("incident.no_resolution"))

    def follow_up(self, text: str, by: str, meta: dict) -> None:
        self.check_open("doing.add_follow_up")
        if not text.strip():
            raise errors.InvalidCommand("text", "invalid.follow_up_needs_text")
        self._followed_up(text=text, by=by, meta=meta)

    def close(self, resolution: str, by: str, meta: dict) -> None:
        self.check_open("doing.close_incident")
        self._closed(resolution=resolution, by=by, meta=meta)

    @event("FollowUpAdded")
    def _followed_up(self, text: str, by: str, meta: dict) -> None:
        self.follow_ups.append({"text": text, "by": by, "at": meta["recorded_at"], "centre": meta["centre"]})

    @event("Closed")
    def _closed(self, resolution: str, by: str, meta: dict) -> None:
        self.status = CLOSED
        self.resolution = resolution


def registration(cmd: RegisterIncident, home_centre: str | None, by: str) -> dict:
    return {
        "centre": cmd.centre,
        "home_centre": home_centre,
        "course_id": cmd.course_id,
        "fraction": cmd.fraction,
        "category": cmd.category,
        "severity": cmd.severity,
        "description": cmd.description,
        "by": by,
        "occurred_at": cmd.occurred_at,
        "attempt": None,
    }


def dose_deviation(course: Any, record: Any) -> dict:
    """The Registered arguments for a session whose metersets were accepted beyond tolerance
    because a person confirmed them with a reason."""
    shown = [said("incident.beam_deviation", beam=d.beam, delivered=d.delivered, expected=d.expected)
             for d in record.deviations]
    worst = max(abs(d.delivered - d.expected) / d.expected if d.expected else Decimal(1) for d in record.deviations)
    return {
        "incident_id": str(uuid.uuid5(NAMESPACE, f"dose-deviation/{course.id}/{record.record_id}")),
        "centre": record.centre,
        "home_centre": course.home_centre,
        "course_id": str(course.id),
        "fraction": record.number,
        "category": DOSE_DEVIATION,
        "severity": HIGH if worst > HIGH_DEVIATION_SHARE else MEDIUM,
        "description": said("incident.dose_deviation", number=record.number, machine=record.machine,
                            beams=shown, by=record.recorded_by, reason=record.deviation_reason),
        "by": record.recorded_by,
        "occurred_at": record.delivered_at,
        "attempt": None,
    }


def is_near_miss(refusal: errors.RuleViolation) -> bool:
    return refusal.code in NEAR_MISS_SEVERITY


def near_miss(course: Any, command: str, payload: dict, refusal: errors.RuleViolation, actor: Any) -> dict:
    """The Registered arguments for a refused command: who tried (the person acting; the operator
    they named is kept in `attempt`), where, when, and what stopped it."""
    centre = payload.get("centre") or actor.centre
    who = actor.user
    return {
        "centre": centre,
        "home_centre": course.home_centre,
        "course_id": str(course.id),
        "fraction": payload.get("number"),
        "category": NEAR_MISS,
        "severity": NEAR_MISS_SEVERITY[refusal.code] if is_near_miss(refusal) else MEDIUM,
        "description": said("incident.near_miss", command=said(f"command.{command}"), user=who, centre=centre,
                            refusal=refusal.said or refusal.message),
        "by": who,
        "occurred_at": payload.get("delivered_at"),
        "attempt": {
            "command": command,
            "refusal": refusal.code,
            "message": refusal.message,
            "said": refusal.said,
            "user": actor.user,
            "operator": payload.get("operator"),
            "centre": centre,
            "machine": payload.get("machine"),
            "group": payload.get("group"),
            "number": payload.get("number"),
            "delivery_type": payload.get("delivery_type"),
            "conflict": refusal.conflict,
        },
    }
