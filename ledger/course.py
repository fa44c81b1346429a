"""The course: one prescription for one patient, and every fraction delivered against it.

This is where a fraction is checked. `Course.deliver` runs the `check_*` rules below and
only then records `FractionDelivered`; the other public methods follow the same pattern.
The `@event` methods only apply facts: they run again on every replay and never refuse.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
from eventsourcing.domain import Aggregate, event

from ledger import errors, gaps, replan
from ledger.counts import tally
from ledger import schedule as schedules
from ledger.amendments import Prescriptions, amended_schedule
from ledger.messages import said
from ledger.origin import RecordOrigin
from ledger.received import ReceivedFractions
from ledger.summaries import SummaryFractions
from schemas.course import (
    BeamDelivery,
    FractionGroup,
    FractionRecord,
    LogFraction,
    MetersetDeviation,
    Plan,
    RegisterCourse,
    from_event,
    to_event,
)
from schemas.schedule import Schedule

NAMESPACE = uuid.UUID("6f1c7f0e-3c55-5b8e-9a57-0d1b7c1e2f40")
# A delivered beam within this many MU of its meterset counts as delivered in full.
MU_TOLERANCE = Decimal("0.5")
# Beyond this a beam's delivered MU differ from what it should have received, and a person
# must confirm the deviation with a reason: 2% of the beam's meterset, at least 1 MU.
MU_DEVIATION_SHARE = Decimal("0.02")
MU_DEVIATION_FLOOR = Decimal("1")
MIN_HOURS_BETWEEN_FRACTIONS = 6
# When a fraction can have been delivered: not after the ledger's clock (beyond a small skew
# between the linac's clock and ours), not long before the course was registered (a baseline
# from the OIS backup reaches back weeks, never years), and in a real time zone.
CLOCK_SKEW = timedelta(minutes=10)
LONGEST_BEFORE_REGISTRATION = timedelta(days=366)
UTC_OFFSETS = (timedelta(hours=-12), timedelta(hours=14))

ACTIVE, SUSPENDED, COMPLETED = "active", "suspended", "completed"


def course_id_for(home_centre: str, patient_id: str, plan_uid: str) -> uuid.UUID:
    """Two centres importing the same backed-up plan get the same course."""
    return uuid.uuid5(NAMESPACE, f"{home_centre}/{patient_id}/{plan_uid}")


def check_plan_lists_beams(plan: Plan, field: str = "plan") -> None:
    """A course (or a re-plan) is registered with the beams each fraction delivers: without them no
    fraction's metersets can be checked, and no treatment record can be written for the OIS."""
    for i, group in enumerate(plan.fraction_groups):
        if not group.beams:
            raise errors.InvalidCommand(
                f"{field}.fraction_groups[{i}].beams",
                "invalid.fraction_group_lists_no", number=group.number,
            )


def metersets(plan: Plan, group: int) -> dict[int, Decimal]:
    """Beam number -> meterset (MU) of one fraction group of a plan."""
    return {b.number: b.meterset for g in plan.fraction_groups if g.number == group for b in g.beams}


def mu_tolerance(meterset: Decimal) -> Decimal:
    return max(MU_DEVIATION_FLOOR, meterset * MU_DEVIATION_SHARE)


def where(record: FractionRecord) -> dict[str, Any]:
    """Who delivered a fraction, where and when: the words of a refusal that names it."""
    return said("record.where", centre=record.centre, machine=record.machine,
                at=record.delivered_at.isoformat(timespec="minutes"), operator=record.operator)


def conflict_of(record: FractionRecord) -> dict[str, Any]:
    return {
        "record_id": record.record_id,
        "group": record.group,
        "number": record.number,
        "centre": record.centre,
        "machine": record.machine,
        "delivered_at": record.delivered_at.isoformat(),
        "operator": record.operator,
        "recorded_by": record.recorded_by,
        "recorded_at": record.recorded_at.isoformat() if record.recorded_at else None,
        "delivery_type": record.delivery_type,
    }


class Course(Prescriptions, ReceivedFractions, SummaryFractions, RecordOrigin, Aggregate):
    """Invariants (each a `check_` method): a fraction number lies within the prescription and
    is delivered once (a continuation completes an interrupted one, beam by beam, never beyond
    the plan's meterset); its time is believable; its plan has beams; nothing is delivered on a
    suspended or completed course; a fraction is verified by someone other than its operator.
    Fraction numbers count against the prescription in force (`prescription`: the registered plan
    with its countersigned amendments, ledger/amendments.py)."""

    @staticmethod
    def create_id(patient: dict, home_centre: str, plan: dict, **_: Any) -> uuid.UUID:
        return course_id_for(home_centre, patient["id"], plan["uid"])

    @event("Registered")
    def __init__(
        self,
        *,
        patient: dict,
        home_centre: str,
        plan: dict,
        triage: int | None,
        assigned_centres: list[str],
        meta: dict,
    ):
        self.patient = patient
        self.home_centre = home_centre
        self.plans: list[Plan] = [from_event(plan, Plan)]
        self.triage = triage
        self.assigned_centres: list[str] = list(assigned_centres)
        self.status = ACTIVE
        self.status_note: dict | None = None
        self.status_changed_at: datetime | None = None  # typed: a completion's day is computed from it
        self.records: list[FractionRecord] = []
        self.registered_at: datetime = meta["recorded_at"]
        self.category: str | None = None  # treatment category: picks the billing tariff
        self.flags: list[dict] = []  # what a physicist must review (e.g. a bundle collision)
        # Where each re-plan starts in the course: plan uid -> {fraction group: course fraction
        # that is the re-plan's fraction 1}. The prescription itself starts at 1.
        self.plan_starts: dict[str, dict[int, int]] = {}
        # The patient's id at other centres (a partner registers the patient in its own OIS):
        # centre -> id, each set by a physicist who checked name and birth date.
        self.patient_ids: dict[str, str] = {}
        self.awaiting_approval: dict[str, list[dict]] = {}  # fallback plan uid -> how it departs from the prescription
        # The intended schedule as given (None: the default, `schedule_in`), and the treatment site.
        # (Set by `ScheduleSet`, saved with the registration when given: eventsourcing treats every
        # keyword of `__init__` as required, so a new one would not load older registrations.)
        self.schedule_given: Schedule | None = None
        self.site: str | None = None
        self.gap_category: int | None = None  # 1-3, set by a physician (ledger/gaps.py)
        self.amendments: list = []  # schemas.prescription.Amendment, proposed and countersigned
        self.prescribed: dict[int, int] = {}  # group -> fractions planned, as amended

    # ---- reading the state --------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        """The prescription: the plan the course was registered from."""
        return self.plans[0]

    def group(self, number: int) -> FractionGroup:
        """A fraction group of the prescription in force (its number of fractions as amended)."""
        for group in self.prescription.fraction_groups:
            if group.number == number:
                return group
        known = ", ".join(str(g.number) for g in self.plan.fraction_groups)
        raise errors.InvalidCommand("group", "invalid.fraction_group_not_plan", number=number, course=self.plan.label, known=known)

    def schedule_in(self, zone: Any) -> Schedule:
        """The course's schedule in force (ledger/schedule.py): the intended one
        (`original_schedule_in`) with the compensation days of its countersigned amendments (a
        twice-daily day intends 2 fractions, a Saturday treated 1)."""
        return amended_schedule(self.original_schedule_in(zone), self.amendments)

    def original_schedule_in(self, zone: Any) -> Schedule:
        """The intended schedule with its start resolved: as given, else Monday to Friday; from the
        given start, else the day of the first fraction recorded, else the day the course was
        registered, in `zone` (the home centre's, a tzinfo or name). The gap's planned end counts on it."""
        delivered = [r.delivered_at for r in self.active_records()]
        return gaps.intended(self.schedule_given, min(delivered) if delivered else self.registered_at, zone)

    def delivered_days(self, zone: Any) -> list:
        """The local day of each fraction delivered (its first session), one entry per fraction."""
        first: dict[tuple[int, int], datetime] = {}
        for r in self.active_records():
            key = (r.group, r.number)
            first[key] = min(first.get(key, r.delivered_at), r.delivered_at)
        return [schedules.local_day(at, zone) for at in first.values()]

    def gap(self, now: datetime, zone: Any, threshold: int = gaps.ALARM_AFTER_DAYS) -> gaps.Gap:
        """The course's treatment gap today (ledger/gaps.py), in the home centre's `zone`."""
        prescribed, delivered = self.dose()
        gap = gaps.gap_of(self.original_schedule_in(zone), self.amendments, self.original_fractions_planned(),
                          self.fractions_planned(), self.delivered_days(zone), schedules.local_day(now, zone),
                          gaps.category_of(self.gap_category, self.site), threshold)
        return msgspec.structs.replace(gap, dose_prescribed_gy=prescribed, dose_delivered_gy=delivered)

    def find_plan(self, uid: str) -> Plan | None:
        return next((p for p in self.plans if p.uid == uid), None)

    def active_records(self, group: int | None = None, number: int | None = None) -> list[FractionRecord]:
        return [
            r
            for r in self.records
            if not r.voided
            and (group is None or r.group == group)
            and (number is None or r.number == number)
        ]

    def delivered_numbers(self, group: int) -> set[int]:
        return {r.number for r in self.active_records(group)}

    def first_missing(self, group: int) -> int:
        """The lowest fraction number of a group not delivered (one past the end when all are)."""
        done = self.delivered_numbers(group)
        return next(n for n in range(1, len(done) + 2) if n not in done)

    def plan_start(self, plan_uid: str, group: int) -> int:
        return self.plan_starts.get(plan_uid, {}).get(group, 1)

    def fractions_planned(self) -> int:
        """As amended (countersigned amendments); `original_fractions_planned` as registered."""
        return sum(g.fractions_planned for g in self.prescription.fraction_groups)

    def fractions_delivered(self) -> int:
        return tally(self.records).delivered

    def is_complete_fraction(self, group: int, number: int) -> bool:
        """Every beam of the plan used has received its meterset over the fraction's sessions."""
        sessions = self.active_records(group, number)
        if not sessions:
            return False
        plan = self.find_plan(sessions[0].plan_uid) or self.plan
        beams = next((g.beams for g in plan.fraction_groups if g.number == group), [])
        for beam in beams:
            given = sum((b.delivered_mu for s in sessions for b in s.beams if b.number == beam.number), Decimal(0))
            if given < beam.meterset - MU_TOLERANCE:
                return False
        return all(b.termination == "NORMAL" for b in sessions[-1].beams)

    # ---- rules ---------------------------------------------------------------------------

    def check_active(self, doing: str) -> None:
        """`doing`: a `doing.*` message code (what was refused)."""
        if self.status != ACTIVE:
            note = self.status_note or {}
            raise errors.CourseNotActive(
                "course_not_active.cannot_doing_reason" if note.get("reason") else "course_not_active.cannot_doing",
                doing=said(doing), course=self.plan.label, patient_id=self.patient["id"],
                status=said(f"status.{self.status}"), user=note.get("user", "?"), centre=note.get("centre", "?"),
                at=note.get("at", "?"), **({"reason": note["reason"]} if note.get("reason") else {}),
                conflict={"status": self.status, **note},
            )

    def check_number_in_prescription(self, group: FractionGroup, number: int) -> None:
        """`group` of the prescription in force (`group`, `only_group`): as amended and countersigned."""
        if not 1 <= number <= group.fractions_planned:
            delivered = len(self.delivered_numbers(group.number))
            raise errors.FractionOutOfRange(
                "fraction_out_of_range.fraction_outside_prescription_course", number=number, course=self.plan.label, patient_id=self.patient['id'], fractions_planned=group.fractions_planned, number2=group.number, delivered=delivered,
                conflict={"fractions_planned": group.fractions_planned, "fractions_delivered": delivered},
            )

    def check_not_delivered(self, group: int, number: int) -> None:
        existing = self.active_records(group, number)
        if existing:
            first = existing[0]
            raise errors.FractionAlreadyDelivered(
                "fraction_already_delivered.fraction_course_patient_was", number=number, course=self.plan.label, patient_id=self.patient['id'], record=where(first),
                conflict=conflict_of(first),
            )

    def check_plausible_time(self, at: datetime, now: datetime) -> None:
        """A delivery time the ledger can believe: in a real zone, not in the future, not long
        before the course existed. Everything downstream (DICOM dates, statements) relies on it."""
        offset = at.utcoffset()
        if offset is None or not UTC_OFFSETS[0] <= offset <= UTC_OFFSETS[1]:
            raise errors.InvalidCommand(
                "delivered_at", "invalid.utc_offset_not_time", isoformat=at.isoformat()[19:] or 'missing'
            )
        if at > now + CLOCK_SKEW:
            raise errors.InvalidCommand(
                "delivered_at", "invalid.future_ledger_s_clock", at=at.isoformat(timespec='minutes'), now=now.astimezone(at.tzinfo).isoformat(timespec='minutes')
            )
        if at < self.registered_at - LONGEST_BEFORE_REGISTRATION:
            raise errors.InvalidCommand(
                "delivered_at", "invalid.before_course_could_have", at=at.isoformat(timespec='minutes'), course=self.plan.label, registered_at=self.registered_at.astimezone(at.tzinfo).date().isoformat(), days=LONGEST_BEFORE_REGISTRATION.days
            )

    def check_plan_has_beams(self, plan: Plan, group: int) -> None:
        if not any(g.beams for g in plan.fraction_groups if g.number == group):
            raise errors.PlanHasNoBeams(
                "plan_has_no_beams.plan_patient_lists_no", course=plan.label, uid=plan.uid, patient_id=self.patient['id'], group=group
            )

    def check_can_continue(self, group: int, number: int) -> None:
        if not self.active_records(group, number):
            raise errors.NothingToContinue(
                "nothing_to_continue.fraction_course_has_no", number=number, course=self.plan.label
            )
        if self.is_complete_fraction(group, number):
            last = self.active_records(group, number)[-1]
            raise errors.FractionAlreadyDelivered(
                "fraction_already_delivered.fraction_course_patient_was_2", number=number, course=self.plan.label, patient_id=self.patient['id'], record=where(last),
                conflict=conflict_of(last),
            )

    def warnings_for(self, cmd: LogFraction, group: int) -> list[dict]:
        """What is accepted but must be seen: stored with the fraction (as messages) and shown."""
        found = []
        gap = timedelta(hours=MIN_HOURS_BETWEEN_FRACTIONS)
        for other in self.active_records():
            if (other.group, other.number) != (group, cmd.number) and abs(other.delivered_at - cmd.delivered_at) < gap:
                found.append(said("warning.short_interval", hours=MIN_HOURS_BETWEEN_FRACTIONS, number=other.number,
                                  record=where(other)))
                break
        if cmd.centre != self.home_centre and cmd.centre not in self.assigned_centres:
            found.append(said("warning.centre_not_assigned", centre=cmd.centre, home_centre=self.home_centre))
        if cmd.delivery_type == "TREATMENT" and cmd.source == "ledger":  # an import comes in any order
            missing = sorted(set(range(1, cmd.number)) - self.delivered_numbers(group))
            if missing:
                shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
                found.append(said("warning.earlier_not_recorded", n=len(missing), numbers=shown))
        if self.flags:
            found.append(said("warning.course_flagged", reason=self.flags[-1]["reason"]))
        return found

    # ---- commands --------------------------------------------------------------------------

    def deliver(self, cmd: LogFraction, meta: dict) -> FractionRecord:
        """Check every rule, then record the session. Returns the stored record."""
        self.check_active("doing.log_fraction")
        # The group as the prescription in force has it: its countersigned amendments count, a
        # pending one does not (ledger/amendments.py).
        group = self.group(cmd.group) if cmd.group is not None else self.only_group()
        cmd = self.in_course_numbering(cmd, group)
        self.check_number_in_prescription(group, cmd.number)
        self.check_plausible_time(cmd.delivered_at, meta["recorded_at"])
        part_of = None
        if cmd.delivery_type == "CONTINUATION":
            self.check_can_continue(group.number, cmd.number)
            plan = self.plan_for(cmd, group.number)
        else:
            plan = self.plan_for(cmd, group.number)
            part_of = self.same_session(cmd, plan, group.number)
            if part_of is None:
                self.check_not_delivered(group.number, cmd.number)
        self.check_plan_approved(plan)
        self.check_plan_has_beams(plan, group.number)
        beams = self.beams_for(cmd, plan, group.number)
        self.check_metersets(cmd, plan, group.number, beams)
        return self.record_session(cmd, group, plan, beams, meta, part_of=part_of)

    def in_course_numbering(self, cmd: LogFraction, group: FractionGroup) -> LogFraction:
        """A fraction numbered in its plan's own numbering (a re-plan's record says "fraction 1" for
        the course's fraction where the re-plan starts) as the course's fraction."""
        if cmd.numbering == "course":
            return cmd
        plan = self.find_plan(cmd.plan_uid) if cmd.plan_uid else self.plan_in_use(cmd.centre)
        if plan is None:
            raise errors.UnknownPlan("unknown_plan.plan_not_plan_course", plan_uid=cmd.plan_uid, course=self.plan.label)
        own = next((g for g in plan.fraction_groups if g.number == group.number), None)
        if own is None or not 1 <= cmd.number <= own.fractions_planned:
            raise errors.FractionOutOfRange(
                "fraction_out_of_range.fraction_outside_plan_which", number=cmd.number, course=plan.label, uid=plan.uid, fractions_planned=own.fractions_planned if own else 0, number2=group.number,
                conflict={"plan_uid": plan.uid, "fractions_planned": own.fractions_planned if own else 0},
            )
        number = self.plan_start(plan.uid, group.number) + cmd.number - 1
        return msgspec.structs.replace(cmd, number=number, numbering="course", plan_uid=plan.uid)

    def same_session(self, cmd: LogFraction, plan: Plan, group: int) -> FractionRecord | None:
        """The recorded session this one belongs to, when a system writes one record per beam: the
        fraction's sessions are on the same plan, machine and day, and give none of these beams."""
        sessions = self.active_records(group, cmd.number)
        if not sessions or not cmd.beams:
            return None
        first, day = sessions[0], cmd.delivered_at.date()
        given = {b.number for s in sessions for b in s.beams}
        for s in sessions:
            if (s.plan_uid, s.machine, s.delivery_type) != (plan.uid, cmd.machine, "TREATMENT") \
                    or s.delivered_at.astimezone(cmd.delivered_at.tzinfo).date() != day:
                return None
        return first if not given & {b.number for b in cmd.beams} else None

    def check_metersets(self, cmd: LogFraction, plan: Plan, group: int, beams: list[BeamDelivery]) -> None:
        """Each beam gives what the fraction still lacks on it, within tolerance: a continuation
        never repeats a complete beam, nothing is given beyond the plan, and a beam that ended
        NORMAL gave its meterset. A deviation stands only when a person confirms it with a reason."""
        planned = metersets(plan, group)
        found = self.meterset_deviations(planned, beams)
        for beam in beams:
            lacking = planned[beam.number] - beam.start_mu
            if cmd.delivery_type == "CONTINUATION" and lacking <= MU_TOLERANCE and beam.delivered_mu > 0:
                raise errors.BeamAlreadyComplete(
                    "beam_already_complete.beam_fraction_course_patient", number=beam.number, number2=cmd.number, course=self.plan.label, patient_id=self.patient['id'], start_mu=beam.start_mu, planned=planned[beam.number],
                    conflict={"beam": beam.number, "delivered_mu": str(beam.start_mu),
                              "meterset": str(planned[beam.number])},
                )
            if beam.termination == "NORMAL" and beam.delivered_mu == 0 and lacking > mu_tolerance(planned[beam.number]):
                raise errors.InvalidCommand(
                    f"beams[{beams.index(beam)}].delivered_mu",
                    "invalid.beam_ended_normal_but", number=beam.number, lacking=lacking,
                )
        if found and cmd.deviation_reason is None:
            # one message per beam (rendered "; "-joined), so that each reader reads them in their language
            shown = [said("refusal.beam_beyond_tolerance", beam=d.beam, delivered=d.delivered, expected=d.expected,
                          tolerance=d.tolerance) for d in found]
            raise errors.MetersetBeyondTolerance(
                "meterset_beyond_tolerance.fraction_course_patient_check", number=cmd.number, course=self.plan.label, patient_id=self.patient['id'], shown=shown,
                conflict={"deviations": [to_event(d) for d in found]},
            )

    @staticmethod
    def meterset_deviations(planned: dict[int, Decimal], beams: list[BeamDelivery]) -> list[MetersetDeviation]:
        found = []
        for beam in beams:
            lacking = max(planned[beam.number] - beam.start_mu, Decimal(0))
            tolerance = mu_tolerance(planned[beam.number])
            if beam.delivered_mu > lacking + tolerance:
                kind = "over"
            elif beam.termination == "NORMAL" and beam.delivered_mu < lacking - tolerance:
                kind = "under"
            else:
                continue
            found.append(MetersetDeviation(beam=beam.number, kind=kind, expected=lacking, delivered=beam.delivered_mu,
                                           tolerance=tolerance.quantize(Decimal("0.01"))))
        return found

    def record_session(self, cmd: LogFraction, group: FractionGroup, plan: Plan, beams: list[BeamDelivery], meta: dict,
                       recorded: dict | None = None, part_of: FractionRecord | None = None) -> FractionRecord:
        """Record a session whose rules were checked, on the plan and beams they were checked with.
        `recorded` keeps the original `recorded_at`/`recorded_by` of a session that another
        centre's ledger recorded; `part_of` is the session's first record when this is a further
        one (one per beam)."""
        start = self.plan_start(plan.uid, group.number)
        deviations = self.meterset_deviations(metersets(plan, group.number), beams)
        recorded = recorded or {"recorded_at": meta["recorded_at"], "recorded_by": meta["user"]}
        record = FractionRecord(
            record_id=self.new_record_id(meta),
            group=group.number,
            number=cmd.number,
            centre=cmd.centre,
            machine=cmd.machine,
            plan_uid=plan.uid,
            delivered_at=cmd.delivered_at,
            beams=beams,
            delivery_type=cmd.delivery_type,
            operator=cmd.operator,
            note=cmd.note,
            source=cmd.source,
            source_uid=cmd.source_uid,
            warnings=self.warnings_for(cmd, group.number),
            deviations=deviations,
            deviation_reason=cmd.deviation_reason if deviations else None,
            plan_number=cmd.number - start + 1 if start != 1 and cmd.number >= start else None,
            part_of=part_of.record_id if part_of else None,
            recorded_at=recorded["recorded_at"],
            recorded_by=recorded["recorded_by"],
        )
        self._delivered(record=to_event(record), meta=meta)
        return self.records[-1]

    def new_record_id(self, meta: dict) -> str:
        """Unique across ledgers: two ledgers with the same history are at the same version, but
        not at the same centre and instant. (Ids already stored stay as they are.)"""
        when = meta["recorded_at"].isoformat()
        return str(uuid.uuid5(self.id, f"fraction/{meta['centre']}/{when}/{self.version + 1}"))

    def only_group(self) -> FractionGroup:
        if len(self.plan.fraction_groups) != 1:
            raise errors.InvalidCommand("group", "invalid.plan_has_several_fraction")
        return self.prescription.fraction_groups[0]

    def plan_for(self, cmd: LogFraction, group: int) -> Plan:
        """The plan named, else the newest fallback plan of the delivering centre, else the original."""
        if cmd.plan_uid is not None:
            plan = self.find_plan(cmd.plan_uid)
            if plan is None:
                raise errors.UnknownPlan(
                    "unknown_plan.plan_not_plan_course_2", plan_uid=cmd.plan_uid, course=self.plan.label, value=', '.join((p.uid for p in self.plans))
                )
            return plan
        if cmd.delivery_type == "CONTINUATION":
            return self.find_plan(self.active_records(group, cmd.number)[0].plan_uid) or self.plan
        return self.plan_in_use(cmd.centre)

    def plan_in_use(self, centre: str) -> Plan:
        """The plan a centre treats with: its newest approved fallback plan, else the original."""
        own = [p for p in self.plans[1:] if p.centre == centre and p.uid not in self.awaiting_approval]
        return own[-1] if own else self.plan

    def check_plan_approved(self, plan: Plan) -> None:
        found = self.awaiting_approval.get(plan.uid)
        if found:
            raise errors.PlanNotApproved(
                "plan_not_approved.plan_awaits_approval_physicist", course=plan.label, uid=plan.uid, centre=plan.centre or 'another centre', home_centre=self.home_centre, record=replan.describe(found),
                conflict={"plan_uid": plan.uid, "centre": plan.centre, "differences": found},
            )

    def next_fraction(self, centre: str) -> tuple[FractionGroup, int] | None:
        """What a centre's next visit delivers, as a form's default: the first fraction group of
        the prescription that is not yet complete (its beams from the plan in use) and its first
        missing number; None when there is nothing to deliver (the course is not active, or every
        fraction is delivered). Only a suggestion: `deliver` still checks whatever is logged."""
        if self.status != ACTIVE:
            return None
        in_use = {g.number: g for g in self.plan_in_use(centre).fraction_groups}
        for group in self.prescription.fraction_groups:
            done = self.delivered_numbers(group.number)
            missing = next((n for n in range(1, group.fractions_planned + 1) if n not in done), None)
            if missing is not None:
                return in_use.get(group.number, group), missing
        return None

    def beams_for(self, cmd: LogFraction, plan: Plan, group: int) -> list[BeamDelivery]:
        """The beams as delivered. A beam's specified MU is its meterset in the plan, also for a
        continuation (PS3.3 C.8.8.21.2.1); `start_mu` is what earlier sessions of the fraction gave it."""
        planned = metersets(plan, group)
        given = {n: Decimal(0) for n in planned}
        if cmd.delivery_type == "CONTINUATION":
            for s in self.active_records(group, cmd.number):
                for b in s.beams:
                    if b.number in given:
                        given[b.number] += b.delivered_mu
        if cmd.beams is None:
            if cmd.delivery_type == "CONTINUATION":
                raise errors.InvalidCommand("beams", "invalid.continuation_must_say_which")
            return [BeamDelivery(number=n, specified_mu=mu, delivered_mu=mu) for n, mu in planned.items()]
        if not cmd.beams:
            raise errors.InvalidCommand("beams", "invalid.session_delivers_least_one")
        out: list[BeamDelivery] = []
        for b in cmd.beams:
            if b.number not in planned:
                raise errors.UnknownBeam(
                    "unknown_beam.beam_not_plan_beams", number=b.number, course=plan.label, join=', '.join(map(str, planned)) or 'none'
                )
            if any(o.number == b.number for o in out):
                raise errors.InvalidCommand("beams", "invalid.beam_listed_twice", number=b.number)
            specified = b.specified_mu if b.specified_mu is not None else planned[b.number]
            out.append(BeamDelivery(number=b.number, specified_mu=specified, delivered_mu=b.delivered_mu,
                                    termination=b.termination, start_mu=given[b.number]))
        return out

    def verify(self, group: int | None, number: int, by: str, meta: dict) -> list[FractionRecord]:
        """A second person confirms every unverified session of the fraction; never its operator."""
        grp = self.group(group) if group is not None else self.only_group()
        sessions = self.active_records(grp.number, number)
        if not sessions:
            raise errors.FractionNotFound("fraction_not_found.fraction_course_not_recorded", number=number, course=self.plan.label)
        pending = [s for s in sessions if s.verified_by is None]
        if not pending:
            raise errors.AlreadyVerified(
                "already_verified.fraction_was_already_verified", number=number, verified_by=sessions[-1].verified_by,
                conflict=conflict_of(sessions[-1]),
            )
        for s in pending:
            if by == s.operator:
                raise errors.VerifierIsOperator(
                    "verifier_is_operator.delivered_fraction_cannot_verify", by=by, number=number,
                    conflict=conflict_of(s),
                )
        self._verified(record_ids=[s.record_id for s in pending], by=by, meta=meta)
        return [r for r in self.records if r.record_id in {s.record_id for s in pending}]

    def void(self, group: int | None, number: int, reason: str, by: str, meta: dict) -> list[FractionRecord]:
        grp = self.group(group) if group is not None else self.only_group()
        if not reason.strip():
            raise errors.InvalidCommand("reason", "invalid.void_needs_reason")
        sessions = self.active_records(grp.number, number)
        if not sessions:
            voided = [r for r in self.records if r.group == grp.number and r.number == number]
            if voided:
                raise errors.AlreadyVoided(
                    "already_voided.fraction_was_already_voided", number=number, voided_by=voided[-1].voided_by, void_reason=voided[-1].void_reason
                )
            raise errors.FractionNotFound("fraction_not_found.fraction_course_not_recorded", number=number, course=self.plan.label)
        self._voided(record_ids=[s.record_id for s in sessions], reason=reason, by=by, meta=meta)
        return [r for r in self.records if r.record_id in {s.record_id for s in sessions}]

    def assign(self, centre: str, meta: dict) -> bool:
        if centre in self.assigned_centres:
            return False
        self._assigned(centre=centre, meta=meta)
        return True

    def unassign(self, centre: str, meta: dict) -> bool:
        if centre not in self.assigned_centres:
            return False
        self._unassigned(centre=centre, meta=meta)
        return True

    def set_triage(self, code: int, meta: dict) -> bool:
        if code == self.triage:
            return False
        self._triaged(code=code, meta=meta)
        return True

    def set_schedule(self, schedule: Schedule | None, site: str | None, meta: dict) -> bool:
        """The intended schedule and the treatment site (None: the default schedule, no site)."""
        if schedule == self.schedule_given and site == self.site:
            return False
        self._schedule_set(schedule=to_event(schedule) if schedule is not None else None, site=site, meta=meta)
        return True

    def set_gap_category(self, category: int, meta: dict) -> bool:
        """The gap category (1-3) a physician sets; it replaces the treatment site's default."""
        if category == self.gap_category:
            return False
        self._gap_category_set(category=category, meta=meta)
        return True

    def set_category(self, category: str, meta: dict) -> bool:
        if category == self.category:
            return False
        self._categorised(category=category, meta=meta)
        return True

    def check_same_patient(self, patient_id: str | None, plan: Plan) -> None:
        """A re-plan made for someone else must never be attached to this patient's course."""
        if patient_id is not None and not self.knows_patient_id(patient_id):
            raise errors.PatientMismatch(
                "patient_mismatch.plan_patient_but_course", course=plan.label, uid=plan.uid, patient_id=patient_id, course2=self.plan.label, patient_id2=self.patient['id'],
                conflict={"course_patient_id": self.patient["id"], "plan_patient_id": patient_id},
            )

    def check_plan_of_acting_centre(self, plan: Plan, centre: str) -> None:
        """A centre re-plans for its own linacs only: a plan for another centre would become
        that centre's default plan (its RTTs' forms, its metersets). The home centre's physicists
        may bring in a partner's re-plan that the partner returned (the SLA's "completed plans")."""
        if plan.centre != centre and centre != self.home_centre:
            raise errors.PlanForAnotherCentre(
                "plan_for_another_centre.plan_plan_but_added", course=plan.label, uid=plan.uid, centre=plan.centre or 'no centre', centre2=centre,
                conflict={"plan_centre": plan.centre, "acting_centre": centre},
            )

    def add_fallback_plan(self, plan: Plan, meta: dict, patient_id: str | None = None,
                          starts_at: dict[int, int] | None = None) -> bool:
        """A partner's re-plan: its fractions keep counting against the original prescription.
        `patient_id` is the patient the plan was made for, where the caller knows it.
        `starts_at`: per fraction group, the course's fraction that is the re-plan's fraction 1
        (default: the group's first fraction not yet delivered). A re-plan that prescribes more
        fractions than remain from there is flagged for the physicist. A plan that departs from the
        prescription beyond a re-plan's expected changes (`ledger.replan`) is kept, but waits for a
        physicist of the home centre to approve it."""
        self.check_same_patient(patient_id, plan)
        self.check_plan_of_acting_centre(plan, meta["centre"])
        check_plan_lists_beams(plan)
        known = self.find_plan(plan.uid)
        if known is not None:
            if known != plan:
                raise errors.CourseConflict("course_conflict.plan_already_course_with", uid=plan.uid)
            return False
        original = {g.number for g in self.plan.fraction_groups}
        for g in plan.fraction_groups:
            if g.number not in original:
                raise errors.InvalidCommand(
                    "plan.fraction_groups", "invalid.fallback_group_matches_no", number=g.number
                )
        starts = {}
        for g in plan.fraction_groups:
            planned = self.group(g.number).fractions_planned
            start = (starts_at or {}).get(g.number) or self.first_missing(g.number)
            if not 1 <= start <= planned:
                raise errors.InvalidCommand(
                    "starts_at", "invalid.group_re_plan_starts", number=g.number, planned=planned, start=start
                )
            starts[g.number] = start
        self._fallback_added(plan=to_event(plan), meta=meta, starts_at={str(k): v for k, v in starts.items()},
                             differences=replan.differences(self.plan, plan))
        for g in plan.fraction_groups:
            planned, start = self.group(g.number).fractions_planned, starts[g.number]
            if start + g.fractions_planned - 1 > planned:
                self._flagged(
                    kind="replan_exceeds_prescription",
                    reason=said("flag.replan_exceeds_prescription", course=plan.label, uid=plan.uid,
                                planned=g.fractions_planned, group=g.number, start=start, left=planned - start + 1,
                                prescribed=planned),
                    record_ids=[], meta=meta,
                )
        return True

    def approve_fallback_plan(self, plan_uid: str, meta: dict) -> bool:
        """A physicist of the home centre approves a re-plan that waits for it; False if none waits."""
        plan = self.find_plan(plan_uid)
        if plan is None:
            raise errors.UnknownPlan("unknown_plan.plan_not_plan_course", plan_uid=plan_uid, course=self.plan.label)
        if meta["centre"] != self.home_centre:
            raise errors.AccessDenied(
                "forbidden.only_physicist_course_s", home_centre=self.home_centre, course=plan.label, plan_uid=plan_uid, meta_user=meta['user'], meta_centre=meta['centre'],
                conflict={"home_centre": self.home_centre, "centre": meta["centre"], "plan_uid": plan_uid},
            )
        if plan_uid not in self.awaiting_approval:
            return False
        self._fallback_approved(plan_uid=plan_uid, meta=meta)
        return True

    def suspend(self, reason: str, meta: dict) -> None:
        if self.status != ACTIVE:
            raise errors.LifecycleConflict("lifecycle_conflict.course_only_active_course", course=self.plan.label, status=self.status)
        self._status_changed(status=SUSPENDED, reason=reason, meta=meta)

    def resume(self, meta: dict) -> None:
        if self.status != SUSPENDED:
            raise errors.LifecycleConflict("lifecycle_conflict.course_only_suspended_course", course=self.plan.label, status=self.status)
        self._status_changed(status=ACTIVE, reason="", meta=meta)

    def complete(self, reason: str, meta: dict) -> None:
        if self.status == COMPLETED:
            raise errors.LifecycleConflict("lifecycle_conflict.course_already_completed", course=self.plan.label)
        self._status_changed(status=COMPLETED, reason=reason, meta=meta)

    # ---- facts (applied on every replay) ---------------------------------------------------

    @event("FractionDelivered")
    def _delivered(self, record: dict, meta: dict) -> None:
        self.records.append(from_event(record, FractionRecord))

    @event("FractionVerified")
    def _verified(self, record_ids: list[str], by: str, meta: dict) -> None:
        self._update(record_ids, verified_by=by, verified_at=meta["recorded_at"])

    @event("FractionVoided")
    def _voided(self, record_ids: list[str], reason: str, by: str, meta: dict) -> None:
        self._update(record_ids, voided=True, void_reason=reason, voided_by=by, voided_at=meta["recorded_at"])

    @event("CentreAssigned")
    def _assigned(self, centre: str, meta: dict) -> None:
        self.assigned_centres.append(centre)

    @event("CentreUnassigned")
    def _unassigned(self, centre: str, meta: dict) -> None:
        self.assigned_centres.remove(centre)

    @event("TriageSet")
    def _triaged(self, code: int, meta: dict) -> None:
        self.triage = code

    @event("ScheduleSet")
    def _schedule_set(self, schedule: dict | None, site: str | None, meta: dict) -> None:
        self.schedule_given = from_event(schedule, Schedule) if schedule else None
        self.site = site

    @event("GapCategorySet")
    def _gap_category_set(self, category: int, meta: dict) -> None:
        self.gap_category = category

    @event("PrescriptionAmended")
    def _amendment_proposed(self, amendment: dict, meta: dict) -> None:
        self.apply_amendment(amendment)

    @event("AmendmentCountersigned")
    def _amendment_countersigned(self, amendment_id: str, before: int | None, after: int | None, meta: dict) -> None:
        self.apply_countersign(amendment_id, before, after, meta)

    @event("CategorySet")
    def _categorised(self, category: str, meta: dict) -> None:
        self.category = category

    @event("FallbackPlanAdded")
    def _fallback_added(self, plan: dict, meta: dict, starts_at: dict | None = None,
                        differences: list[dict] | None = None) -> None:
        # Stored before approvals existed: no `differences`, the plan is usable as it was then.
        self.plans.append(from_event(plan, Plan))
        if starts_at:  # stored as JSON: the group numbers come back as strings
            self.plan_starts[plan["uid"]] = {int(k): int(v) for k, v in starts_at.items()}
        if differences:
            self.awaiting_approval[plan["uid"]] = differences

    @event("FallbackPlanApproved")
    def _fallback_approved(self, plan_uid: str, meta: dict) -> None:
        self.awaiting_approval.pop(plan_uid, None)

    @event("PatientIdMapped")
    def _identity_mapped(self, centre: str, patient_id: str, meta: dict) -> None:
        self.patient_ids[centre] = patient_id

    @event("StatusChanged")
    def _status_changed(self, status: str, reason: str, meta: dict) -> None:
        self.status = status
        self.status_changed_at = meta["recorded_at"]
        self.status_note = {
            "user": meta["user"],
            "centre": meta["centre"],
            "at": meta["recorded_at"].isoformat(timespec="minutes"),
            "reason": reason,
        }

    @event("CourseFlagged")
    def _flagged(self, kind: str, reason: str, record_ids: list[str], meta: dict) -> None:
        self.flags.append({"kind": kind, "reason": reason, "record_ids": record_ids,
                           "centre": meta["centre"], "at": meta["recorded_at"].isoformat(timespec="minutes")})

    def _update(self, record_ids: list[str], **changes: Any) -> None:
        ids = set(record_ids)
        self.records = [msgspec.structs.replace(r, **changes) if r.record_id in ids else r for r in self.records]


def registration(cmd: RegisterCourse) -> dict:
    """The Registered event's arguments for a command (also used to compare a re-registration)."""
    return {
        "patient": to_event(cmd.patient),
        "home_centre": cmd.home_centre,
        "plan": to_event(cmd.plan),
        "triage": cmd.triage,
        "assigned_centres": sorted(set(cmd.assigned_centres)),
    }
