"""Fractions another centre recorded while it was apart from this ledger (a bundle).

Part of the `Course` aggregate (a mixin, to keep course.py to one idea): the same rules as
`Course.deliver` run, and what collides is kept and flagged, never dropped or merged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger import errors
from ledger.messages import said
from schemas.course import FractionRecord, LogFraction


class ReceivedFractions:
    """Needs the Course's rules (`check_*`), `record_session`, `_flagged`, `_verified`, `_voided`."""

    records: list[FractionRecord]
    plan: Any

    # Refusals that, for a fraction another centre delivered while apart, mean "both
    # centres treated": the fact is kept and flagged, never dropped and never merged.
    COLLISIONS = (errors.FractionAlreadyDelivered, errors.CourseNotActive)
    # Refusals that mean "it was delivered, but not as planned" (or with a plan the home centre
    # has not approved): kept and flagged too.
    DEVIATIONS = (errors.MetersetBeyondTolerance, errors.BeamAlreadyComplete, errors.PlanNotApproved)

    def receive(self, cmd: LogFraction, recorded: dict, meta: dict) -> tuple[FractionRecord, errors.RuleViolation | None]:
        """A fraction another centre recorded while the two were apart (a bundle). The rules
        of `deliver` run; a collision with what this ledger holds (the same fraction at two
        centres, or after the course was closed here), or metersets beyond tolerance that no one
        confirmed, are recorded anyway, because the patient was treated, and the course is
        flagged. Other refusals (out of the prescription, an impossible time, unknown plan or
        beam, a plan without beams) refuse the fraction."""
        group = self.group(cmd.group) if cmd.group is not None else self.only_group()
        self.check_number_in_prescription(group, cmd.number)
        self.check_plausible_time(cmd.delivered_at, meta["recorded_at"])
        plan = self.plan_for(cmd, group.number)
        self.check_plan_has_beams(plan, group.number)
        beams = self.beams_for(cmd, plan, group.number)
        # A further record of one session (a partner's OIS writes one per beam) is part of it,
        # as in `deliver`: not a second delivery colliding with the first.
        part_of = None if cmd.delivery_type == "CONTINUATION" else self.same_session(cmd, plan, group.number)
        try:
            self.check_active("doing.record_from_another_centre")
            self.check_plan_approved(plan)
            if cmd.delivery_type == "CONTINUATION":
                self.check_can_continue(group.number, cmd.number)
            elif part_of is None:
                self.check_not_delivered(group.number, cmd.number)
            self.check_metersets(cmd, plan, group.number, beams)
        except self.COLLISIONS + self.DEVIATIONS as clash:
            record = self.record_session(cmd, group, plan, beams, meta, recorded, part_of=part_of)
            clashing = (clash.conflict or {}).get("record_id")
            there = said("record.where", centre=cmd.centre, machine=cmd.machine,
                         at=cmd.delivered_at.isoformat(timespec="minutes"), operator=cmd.operator)
            kind = "bundle_collision" if isinstance(clash, self.COLLISIONS) else "bundle_deviation"
            here = clash.conflict or {}
            clashed = (said("refusal.delivered_here", record=said(
                "record.where", centre=here["centre"], machine=here["machine"], operator=here["operator"],
                at=datetime.fromisoformat(here["delivered_at"]).isoformat(timespec="minutes")))
                if "record_id" in here and "delivered_at" in here else said(f"refusal.{clash.code}"))
            reason = said(f"flag.{kind}", number=cmd.number, centre=cmd.centre, there=there, clash=clashed)
            self._flagged(kind=kind, reason=reason, record_ids=[record.record_id] + ([clashing] if clashing else []),
                          meta=meta)
            return record, clash
        return self.record_session(cmd, group, plan, beams, meta, recorded, part_of=part_of), None

    def received_records(self, source_uids: list[str], centre: str) -> list[FractionRecord]:
        """This ledger's copies of records that `centre`'s ledger named `source_uids`. A centre
        speaks only for the fractions delivered there: naming another centre's record refuses
        (record ids minted before they were unique across ledgers may be the same at two centres)."""
        wanted = set(source_uids)
        found = [r for r in self.records if r.source == "bundle" and r.source_uid in wanted and r.centre == centre]
        missing = wanted - {r.source_uid for r in found}
        elsewhere = [r for r in self.records if r.centre != centre and (r.record_id in missing or r.source_uid in missing)]
        if elsewhere:
            r = elsewhere[0]
            raise errors.BundleRefused(
                "bundle_refused.fraction_course_record_was", number=r.number, course=self.plan.label, source_uid=r.source_uid or r.record_id, centre=r.centre, centre2=centre
            )
        if missing:
            raise errors.FractionNotFound(
                "fraction_not_found.course_holds_no_fraction", course=self.plan.label, sorted=', '.join(sorted(missing))
            )
        return found

    def verify_received(self, source_uids: list[str], centre: str, by: str, meta: dict) -> bool:
        """`centre`'s double check of fractions it delivered; the four-eyes rule still holds."""
        pending = [r for r in self.received_records(source_uids, centre) if r.verified_by is None]
        for r in pending:
            if by == r.operator:
                raise errors.VerifierIsOperator(
                    "verifier_is_operator.delivered_fraction_cannot_verify", by=by, number=r.number,
                    conflict={"record_id": r.record_id, "number": r.number, "operator": r.operator},
                )
        if pending:
            self._verified(record_ids=[r.record_id for r in pending], by=by, meta=meta)
        return bool(pending)

    def void_received(self, source_uids: list[str], centre: str, reason: str, by: str, meta: dict) -> bool:
        """`centre` voids fractions it delivered."""
        active = [r for r in self.received_records(source_uids, centre) if not r.voided]
        if active:
            self._voided(record_ids=[r.record_id for r in active], reason=reason, by=by, meta=meta)
        return bool(active)
