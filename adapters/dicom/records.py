"""RT Beams Treatment Records and RT Treatment Summary Records built from the ledger.

One Beams Treatment Record per delivered session (a continuation is its own session), one
Treatment Summary Record per course. Everything in them comes from events: UIDs are
derived from record and course identity, every date and time from when the fraction was
delivered or recorded, never from the clock, so the same log gives the same bytes.
The ledger knows per beam only what was specified and delivered in MU, so the control-point
delivery sequence holds the first and the last control point reached (PS3.3 allows the
record to hold a subset of the plan's control points).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import RTBeamsTreatmentRecordStorage, RTPlanStorage, RTTreatmentSummaryRecordStorage, generate_uid

from schemas.course import Beam, FractionRecord, Plan

UID_ROOT = "fraction-ledger"
MANUFACTURER = "fraction-ledger"
STATUS = {"active": "ON_TREATMENT", "suspended": "SUSPENDED", "completed": "COMPLETED"}


def uid_for(*parts: str) -> str:
    """A UID derived from event identity: the same parts always give the same UID."""
    return str(generate_uid(entropy_srcs=[UID_ROOT, *parts]))


def ds_text(value: Decimal) -> str:
    """A Decimal as a DS value (at most 16 characters), exact when it fits."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    places = 6
    while len(text) > 16 and places >= 0:
        text = format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN), "f")
        places -= 1
    return text or "0"


def da(moment: datetime) -> str:
    return moment.strftime("%Y%m%d")


def tm(moment: datetime) -> str:
    return moment.strftime("%H%M%S") + (f".{moment.microsecond:06d}" if moment.microsecond else "")


def offset_text(tz_offset: timedelta) -> str:
    minutes = int(tz_offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


class CourseView:
    """What a record needs of a course; built from the aggregate (or from a bench fixture)."""

    def __init__(self, course_id: str, patient: dict, plans: list[Plan], status: str,
                 records: list[FractionRecord], registered_at: datetime, in_force: Plan | None = None):
        self.id = course_id
        self.patient = patient
        self.plans = plans
        self.status = status
        self.records = records
        self.registered_at = registered_at
        # The prescription in force: the registered plan with its countersigned amendments
        # (ledger/amendments.py); its fraction counts are what the records say was planned.
        self.in_force = in_force or plans[0]

    @classmethod
    def of(cls, course: Any) -> CourseView:
        return cls(str(course.id), course.patient, course.plans, course.status, course.records, course.registered_at,
                   in_force=getattr(course, "prescription", None))

    @property
    def prescription(self) -> Plan:
        return self.in_force

    def amended(self) -> list[str]:
        """The fraction groups whose number of fractions an amendment changed, as `group=count`."""
        original = {g.number: g.fractions_planned for g in self.plans[0].fraction_groups}
        return [f"{g.number}={g.fractions_planned}" for g in self.in_force.fraction_groups
                if original.get(g.number) != g.fractions_planned]

    def plan(self, uid: str) -> Plan:
        return next((p for p in self.plans if p.uid == uid), self.plans[0])

    def machine_detail(self, machine: str, key: str) -> str:
        for plan in self.plans:
            if f"machine/{machine}/{key}" in plan.source:
                return plan.source[f"machine/{machine}/{key}"]
        return ""

    def active(self) -> list[FractionRecord]:
        return [r for r in self.records if not r.voided]


def beams_record_uid(record: FractionRecord) -> str:
    # A later double check changes the record's content, so it is part of its identity.
    return uid_for("beams-record", record.record_id, record.verified_by or "")


def common(ds: Dataset, view: CourseView, sop_class: str, sop_uid: str, created: datetime, kind: str) -> None:
    """Patient, General Study, RT Series, General Equipment, SOP Common."""
    study = view.prescription.source
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstanceCreationDate = da(created)
    ds.InstanceCreationTime = tm(created)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = study.get("study_date", "")
    ds.StudyTime = study.get("study_time", "")
    ds.AccessionNumber = study.get("accession", "")
    ds.Modality = "RTRECORD"
    ds.Manufacturer = MANUFACTURER
    ds.ReferringPhysicianName = study.get("referring_physician", "")
    ds.TimezoneOffsetFromUTC = offset_text(created.utcoffset() or timedelta(0))
    ds.PatientName = view.patient["name"]
    ds.PatientID = view.patient["id"]
    born = view.patient.get("birth_date")
    ds.PatientBirthDate = born.strftime("%Y%m%d") if born else ""
    ds.PatientSex = view.patient.get("sex") or ""
    ds.StudyInstanceUID = study.get("study_uid") or uid_for("study", view.id)
    ds.SeriesInstanceUID = uid_for("series", view.id, kind)
    ds.StudyID = study.get("study_id", "")
    ds.SeriesNumber = 1
    ds.OperatorsName = None
    ds.SoftwareVersions = "fraction-ledger"


def plan_reference(plan: Plan) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = plan.source.get("sop_class_uid", RTPlanStorage)
    item.ReferencedSOPInstanceUID = plan.uid
    return item


def control_point(index: int, at: datetime, specified: Decimal, delivered: Decimal, dose_rate: str,
                  beam: Beam | None, first: bool = False) -> Dataset:
    item = Dataset()
    item.ReferencedControlPointIndex = index
    item.TreatmentControlPointDate = da(at)
    item.TreatmentControlPointTime = tm(at)
    item.SpecifiedMeterset = ds_text(specified)
    item.DeliveredMeterset = ds_text(delivered)
    item.DoseRateSet = dose_rate or None
    item.DoseRateDelivered = None
    if first and beam is not None and beam.energy is not None:
        item.NominalBeamEnergy = ds_text(beam.energy)
        item.NominalBeamEnergyUnit = "MEV" if beam.radiation_type in ("ELECTRON", "PROTON", "ION") else "MV"
    return item


def applicator(found: dict) -> Dataset:
    item = Dataset()
    item.ApplicatorID = found["id"] or "UNKNOWN"
    if found.get("accessory_code"):
        item.AccessoryCode = found["accessory_code"]
    item.ApplicatorType = found["type"] or "UNKNOWN"
    return item


def session_beam(record: FractionRecord, delivered: Any, plan: Plan, at: datetime, fractions_planned: int) -> Dataset:
    group = next((g for g in plan.fraction_groups if g.number == record.group), None)
    beam = next((b for b in group.beams if b.number == delivered.number), None) if group else None
    source = plan.source
    item = Dataset()
    item.ReferencedBeamNumber = delivered.number
    item.BeamName = (beam.name if beam else "") or None
    item.BeamType = beam.beam_type if beam else "STATIC"
    item.RadiationType = beam.radiation_type if beam else "PHOTON"
    pairs = Sequence()
    for device in source.get(f"beam/{delivered.number}/devices", "X:1 Y:1").split():
        kind, _, count = device.partition(":")
        d = Dataset()
        d.RTBeamLimitingDeviceType = kind
        d.NumberOfLeafJawPairs = int(count or 1)
        pairs.append(d)
    item.BeamLimitingDeviceLeafPairsSequence = pairs
    wedges, compensators, boli, blocks = (int(x) for x in source.get(f"beam/{delivered.number}/accessories", "0 0 0 0").split())
    item.NumberOfWedges = wedges
    item.NumberOfCompensators = compensators
    item.NumberOfBoli = boli
    item.NumberOfBlocks = blocks
    applicators = json.loads(source.get(f"beam/{delivered.number}/applicators", "[]"))
    if applicators:  # Type 1C: required when the plan's beam has an Applicator Sequence
        item.ApplicatorSequence = Sequence([applicator(a) for a in applicators])
    item.CurrentFractionNumber = record.plan_number or record.number  # a re-plan's record counts in its own numbering
    # A setup (or portal film) beam says so; the session's own type (TREATMENT, CONTINUATION) otherwise.
    item.TreatmentDeliveryType = beam.delivery_type if beam and beam.delivery_type != "TREATMENT" else record.delivery_type
    item.TreatmentTerminationStatus = delivered.termination
    item.TreatmentVerificationStatus = "VERIFIED" if record.verified_by else "NOT_VERIFIED"
    item.SpecifiedPrimaryMeterset = ds_text(delivered.specified_mu)
    item.DeliveredPrimaryMeterset = ds_text(delivered.delivered_mu)
    # The control point the session started at (0, or for a continuation where the interrupted
    # session stopped) and the last one reached: the end when the beam ended normally, else the
    # share of the meterset given so far (the ledger holds no per-point MU).
    points = beam.control_points if beam else 2
    specified = delivered.specified_mu

    def reached(mu: Decimal) -> int:
        return int((points - 1) * min(mu / specified, Decimal(1))) if specified > 0 else points - 1

    start = reached(delivered.start_mu) if delivered.start_mu > 0 else 0
    if delivered.termination == "NORMAL" or specified <= 0:
        last = points - 1
    else:
        last = reached(delivered.start_mu + delivered.delivered_mu)
    dose_rate = source.get(f"beam/{delivered.number}/dose_rate", "")
    cps = Sequence([control_point(start, at, specified, Decimal(0), dose_rate, beam, first=True)])
    if last > start:
        cps.append(control_point(last, at, specified, delivered.delivered_mu, dose_rate, beam))
    item.NumberOfControlPoints = len(cps)
    item.ControlPointDeliverySequence = cps
    return item


def beams_record(view: CourseView, record: FractionRecord) -> Dataset:
    """One RT Beams Treatment Record for one delivered session."""
    at = record.delivered_at
    created = (record.recorded_at or at).astimezone(at.tzinfo)
    plan = view.plan(record.plan_uid)
    ds = Dataset()
    common(ds, view, RTBeamsTreatmentRecordStorage, beams_record_uid(record), created, "beams")
    ds.InstanceNumber = next(i for i, r in enumerate(view.records, 1) if r.record_id == record.record_id)
    ds.TreatmentDate = da(at)
    ds.TreatmentTime = tm(at)
    ds.TimezoneOffsetFromUTC = offset_text(at.utcoffset() or timedelta(0))
    ds.ReferencedRTPlanSequence = Sequence([plan_reference(plan)])
    machine = Dataset()
    machine.TreatmentMachineName = record.machine
    machine.Manufacturer = view.machine_detail(record.machine, "manufacturer")
    machine.InstitutionName = record.centre
    machine.ManufacturerModelName = view.machine_detail(record.machine, "model")
    machine.DeviceSerialNumber = view.machine_detail(record.machine, "serial")
    ds.TreatmentMachineSequence = Sequence([machine])
    # The operator, then the colleague who double-checked (the record has no other place for them).
    ds.OperatorsName = [record.operator] + ([record.verified_by] if record.verified_by else [])
    # A re-plan starting later in the course: the record is in the re-plan's own numbering.
    counted = plan if record.plan_number else view.prescription
    group = next((g for g in counted.fraction_groups if g.number == record.group), None)
    planned = group.fractions_planned if group else 0
    ds.ReferencedFractionGroupNumber = record.group
    ds.NumberOfFractionsPlanned = planned
    ds.PrimaryDosimeterUnit = "MU"
    ds.TreatmentSessionBeamSequence = Sequence(
        [session_beam(record, b, plan, at, planned) for b in record.beams]
    )
    ds.TreatmentRecordContentOrigin = "USER"
    if record.note:
        ds.TreatmentStatusComment = record.note[:1024]
    return ds


def summary_uid(view: CourseView) -> str:
    # A new fraction, a void or a status change is a new summary: its content is its identity.
    # An amended prescription is a new summary too (nothing is added for a course never amended).
    facts = "|".join([view.status] + [f"{r.record_id}:{r.verified_by or ''}" for r in view.active()]
                     + [f"rx:{a}" for a in view.amended()])
    return uid_for("summary", view.id, hashlib.sha256(facts.encode()).hexdigest())


def summary_record(view: CourseView) -> Dataset:
    """One RT Treatment Summary Record for a course: planned and delivered per fraction group."""
    active = sorted(view.active(), key=lambda r: r.delivered_at)
    moments = [view.registered_at] + [m for r in view.records for m in (r.recorded_at, r.voided_at, r.verified_at) if m]
    tz = active[-1].delivered_at.tzinfo if active else timezone.utc
    created = max(moments).astimezone(tz)
    ds = Dataset()
    common(ds, view, RTTreatmentSummaryRecordStorage, summary_uid(view), created, "summary")
    ds.InstanceNumber = 1
    ds.CurrentTreatmentStatus = STATUS.get(view.status, "ON_TREATMENT") if active or view.status != "active" else "NOT_STARTED"
    first, last = (active[0].delivered_at.astimezone(tz), active[-1].delivered_at.astimezone(tz)) if active else (None, None)
    # The record's own treatment date and time are those of the latest fraction it summarises.
    ds.TreatmentDate = da(last) if last else ""
    ds.TreatmentTime = tm(last) if last else ""
    ds.FirstTreatmentDate = da(first) if first else ""
    ds.MostRecentTreatmentDate = da(last) if last else ""
    ds.ReferencedRTPlanSequence = Sequence([plan_reference(view.prescription)])
    groups = Sequence()
    for group in view.prescription.fraction_groups:
        sessions: dict[int, list[FractionRecord]] = {}
        for r in active:
            if r.group == group.number:
                sessions.setdefault(r.number, []).append(r)
        item = Dataset()
        item.ReferencedFractionGroupNumber = group.number
        item.FractionGroupType = "EXTERNAL_BEAM"
        item.NumberOfFractionsPlanned = group.fractions_planned
        item.NumberOfFractionsDelivered = len(sessions)
        statuses = Sequence()
        for number in sorted(sessions):
            final = sessions[number][-1]
            when = final.delivered_at.astimezone(tz)
            s = Dataset()
            s.ReferencedFractionNumber = number
            s.TreatmentDate = da(when)
            s.TreatmentTime = tm(when)
            ended = [b.termination for b in final.beams if b.termination != "NORMAL"]
            s.TreatmentTerminationStatus = ended[0] if ended else "NORMAL"
            statuses.append(s)
        if statuses:  # Type 3, but when present it needs an item (dciodvfy holds us to that)
            item.FractionStatusSummarySequence = statuses
        groups.append(item)
    ds.FractionGroupSummarySequence = groups
    return ds
