"""The vocabulary of a course: plans, beams, fractions, as msgspec Structs.

These are values: commands validate into them, events carry them as plain builtins
(`to_event`), and views are rebuilt from them (`from_event`). Field constraints live
here so that a bad value is refused with the field's name before anything is written.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from schemas.result import Result
from schemas.schedule import Schedule
from schemas.text import (
    ONE_LINE, Label, LongString, Machine, Note, PatientId, PersonName, ShortString, check_person_name, long_text,
)

NonEmpty = Annotated[str, Meta(min_length=1, max_length=200)]
Centre = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
# A DICOM UID: digit groups separated by dots, at most 64 characters (PS3.5 9.1).
Uid = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")]
MU = Decimal  # checked by check_mu: msgspec cannot bound a Decimal
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Triage = Annotated[int, Meta(ge=1, le=5)]
PositiveInt = Annotated[int, Meta(ge=1, le=10000)]
Reason = long_text(2000)  # a void's or a status change's reason: HL7 NTE/FT and the summary PDF

# Treatment sites the gap category has a default for (ledger/gaps.py SITE_CATEGORY).
Site = Literal["head_and_neck", "cervix", "lung", "oesophagus", "anus", "bladder", "vulva", "skin", "brain",
               "breast", "prostate", "rectum", "lymphoma", "sarcoma", "other", "palliative"]
Termination = Literal["NORMAL", "OPERATOR", "MACHINE", "UNKNOWN"]
DeliveryType = Literal["TREATMENT", "CONTINUATION"]
Sex = Literal["M", "F", "O"]
BeamKind = Literal["STATIC", "DYNAMIC"]
# A plan beam's Treatment Delivery Type (300A,00CE), as RT Plans use it.
PlanDeliveryType = Literal["TREATMENT", "OPEN_PORTFILM", "TRMT_PORTFILM", "SETUP"]

TERMINATIONS: tuple[str, ...] = ("NORMAL", "OPERATOR", "MACHINE", "UNKNOWN")


# Set while an event is applied (`from_event`): a stored fact is not judged again by a rule
# added after it was recorded, so that an older log still loads.
REPLAYING: ContextVar[bool] = ContextVar("replaying", default=False)


def check_unique(numbers: list[int], what: str, within: str) -> None:
    """Two items with one number would be read as one: refuse the value, naming the number."""
    seen: set[int] = set()
    for n in numbers:
        if n in seen and not REPLAYING.get():
            raise ValueError(f"{what} {n} appears twice in {within}: each needs its own number")
        seen.add(n)


def check_mu(value: Decimal, what: str) -> None:
    if not value.is_finite() or value < 0 or value > 100000:
        raise ValueError(f"{what} must be a number of MU between 0 and 100000, got {value}")


class Beam(Struct, frozen=True, kw_only=True):
    number: PositiveInt
    meterset: MU
    name: str = ""
    machine: str = ""
    radiation_type: str = "PHOTON"
    energy: Decimal | None = None
    beam_type: BeamKind = "STATIC"
    control_points: Annotated[int, Meta(ge=2)] = 2
    # A SETUP beam (positioning, usually 0 MU) is delivered like the others and recorded as such.
    delivery_type: PlanDeliveryType = "TREATMENT"

    def __post_init__(self) -> None:
        check_mu(self.meterset, "meterset")


class FractionGroup(Struct, frozen=True, kw_only=True):
    number: PositiveInt
    fractions_planned: PositiveInt
    beams: list[Beam] = []
    # The prescribed dose per fraction in Gy, where the RT Plan gives it (adapters/dicom/plans.py).
    dose_gy: Decimal | None = None

    def __post_init__(self) -> None:
        check_unique([b.number for b in self.beams], "beam", f"fraction group {self.number}")
        if self.dose_gy is not None and (not self.dose_gy.is_finite() or not 0 <= self.dose_gy <= 100):
            raise ValueError(f"dose_gy must be a dose per fraction between 0 and 100 Gy, got {self.dose_gy}")


class Plan(Struct, frozen=True, kw_only=True):
    """An RT Plan as the ledger needs it. `source` keeps what an adapter read from the
    original file (study, series, manufacturer...) so that records can be rebuilt."""

    uid: Uid
    label: NonEmpty
    fraction_groups: Annotated[list[FractionGroup], Meta(min_length=1)]
    machine: str = ""
    centre: str = ""
    source: dict[str, str] = {}

    def __post_init__(self) -> None:
        check_unique([g.number for g in self.fraction_groups], "fraction group", "the plan")


# ---- a plan as it comes in ---------------------------------------------------------------
# `Beam`, `FractionGroup` and `Plan` are also what stored events replay into, so they keep
# the bounds they always had (a value accepted once must stay readable). A plan being
# registered or added is one of these subclasses instead: same fields, each typed by the
# DICOM attribute it is written back to (schemas/text.py).


class NewBeam(Beam, frozen=True, kw_only=True):
    name: LongString = ""  # BeamName (LO)
    machine: ShortString = ""  # TreatmentMachineName (SH)
    radiation_type: ShortString = "PHOTON"  # RadiationType (CS 16)


class NewFractionGroup(FractionGroup, frozen=True, kw_only=True):
    beams: list[NewBeam] = []


# What `Plan.source` keeps that goes back into the records, and as what (every other value:
# one line). Checked in `__post_init__` so that the refusal names the key.
SOURCE_VALUES: dict[str, type] = {
    "study_id": ShortString, "accession": ShortString, "referring_physician": PersonName,
    "plan_name": LongString, "study_uid": Uid,
}
SourceValue = Annotated[str, Meta(max_length=256, pattern=ONE_LINE)]


class NewPlan(Plan, frozen=True, kw_only=True):
    label: Label  # shown and matched on (triage lists); the name of the plan, as RTPlanName (LO)
    fraction_groups: Annotated[list[NewFractionGroup], Meta(min_length=1)]
    machine: ShortString = ""
    centre: LongString = ""
    source: dict[Annotated[str, Meta(max_length=128)], Annotated[str, Meta(max_length=256)]] = {}

    def __post_init__(self) -> None:
        super().__post_init__()
        for key, value in self.source.items():
            kind = SOURCE_VALUES.get(key) or (LongString if key.startswith("machine/") else SourceValue)
            if value == "":
                continue
            try:
                msgspec.convert(value, kind)
                if kind is PersonName:
                    check_person_name(value, f"source.{key}")
            except msgspec.ValidationError as exc:
                raise ValueError(f"source.{key}: {exc}") from None

    def as_plan(self) -> Plan:
        """The same plan as the value the course holds (and compares with: Structs of two
        types are never equal)."""
        return from_event(to_event(self), Plan)


class Patient(Struct, frozen=True, kw_only=True):
    id: PatientId  # PatientID (LO)
    name: PersonName  # PatientName (PN)
    birth_date: date | None = None
    sex: Sex | None = None

    def __post_init__(self) -> None:
        check_person_name(self.name, "name")


class BeamDelivery(Result, frozen=True, kw_only=True):
    """A beam as one session delivered it. `specified_mu` is the plan's meterset (also for a
    continuation, PS3.3 C.8.8.21.2.1); `start_mu` is what earlier sessions of the fraction
    had given it when this session began (0 unless a continuation)."""

    number: PositiveInt
    specified_mu: MU
    delivered_mu: MU
    termination: Termination = "NORMAL"
    start_mu: MU = Decimal(0)

    def __post_init__(self) -> None:
        check_mu(self.specified_mu, "specified_mu")
        check_mu(self.delivered_mu, "delivered_mu")


class BeamInput(Struct, frozen=True, kw_only=True):
    """A beam as an RTT reports it; without `specified_mu` the plan's meterset is meant."""

    number: PositiveInt
    delivered_mu: MU
    specified_mu: MU | None = None
    termination: Termination = "NORMAL"

    def __post_init__(self) -> None:
        check_mu(self.delivered_mu, "delivered_mu")
        if self.specified_mu is not None:
            check_mu(self.specified_mu, "specified_mu")


class MetersetDeviation(Result, frozen=True, kw_only=True):
    """A beam that received more (`over`) or, although it ended NORMAL, less (`under`) than it
    should have: `expected` is what the fraction still lacked on that beam."""

    beam: int
    kind: Literal["over", "under"]
    expected: MU
    delivered: MU
    tolerance: MU


class FractionRecord(Result, frozen=True, kw_only=True):
    """One session at a linac: a fraction delivered, or a continuation completing it."""

    record_id: str
    group: int
    number: int
    centre: str
    machine: str
    plan_uid: str
    delivered_at: datetime
    beams: list[BeamDelivery]
    delivery_type: DeliveryType
    operator: str
    note: str = ""
    source: str = "ledger"
    source_uid: str | None = None
    warnings: list[str | dict[str, Any]] = []  # messages (ledger.messages); plain text if written before codes
    # Beams whose delivered MU differ from the plan beyond tolerance, confirmed with a reason.
    deviations: list[MetersetDeviation] = []
    deviation_reason: str | None = None
    # The fraction's number in its plan's own numbering, when that plan is a re-plan starting
    # later in the course (its records carry this number).
    plan_number: int | None = None
    # A further record of one session (a system that writes one record file per beam): the
    # record_id of the session's first record.
    part_of: str | None = None
    recorded_at: datetime | None = None
    recorded_by: str = ""
    verified_by: str | None = None
    verified_at: datetime | None = None
    voided: bool = False
    void_reason: str | None = None
    voided_by: str | None = None
    voided_at: datetime | None = None


# ---- commands -------------------------------------------------------------------------


class RegisterCourse(Struct, frozen=True, kw_only=True):
    patient: Patient
    home_centre: Centre
    plan: NewPlan
    triage: Triage | None = None
    assigned_centres: list[Centre] = []
    # The intended schedule (default: Monday to Friday from the first fraction) and the
    # treatment site, which gives the gap category's default (ledger/gaps.py).
    schedule: Schedule | None = None
    site: Site | None = None


class LogFraction(Struct, frozen=True, kw_only=True):
    number: PositiveInt
    centre: Centre
    machine: Machine
    operator: PersonName  # OperatorsName (PN)
    delivered_at: AwareDatetime
    group: PositiveInt | None = None
    plan_uid: Uid | None = None
    beams: list[BeamInput] | None = None
    delivery_type: DeliveryType = "TREATMENT"
    note: Note = ""
    # Where the record comes from: "ledger" (logged live), "baseline" (imported from the
    # OIS's session records of before the outage), "summary" (a fraction the OIS lists only in a
    # treatment summary: no MU, no machine; its session record replaces it, `ledger.summaries`),
    # "bundle" (another centre's ledger).
    source: Literal["ledger", "baseline", "summary", "bundle"] = "ledger"
    source_uid: Annotated[str, Meta(max_length=128)] | None = None
    # "plan": `number` is the plan's own numbering (a partner's re-plan counts its fractions
    # from 1; a record of its linac says so); the course maps it to the course's fraction.
    numbering: Literal["course", "plan"] = "course"
    # A person's reason for metersets beyond tolerance: with it they are accepted as a
    # dose deviation (and an incident is registered); without it they are refused.
    deviation_reason: Reason | None = None

    def __post_init__(self) -> None:
        check_person_name(self.operator, "operator")


class MapPatientId(Struct, frozen=True, kw_only=True):
    """Another centre's id of a course's patient, with the second identifiers that were checked."""

    centre: Centre
    patient_id: PatientId
    name: PersonName
    birth_date: date

    def __post_init__(self) -> None:
        check_person_name(self.name, "name")


# Arguments that service methods take as plain values are validated through these.


class VerifyArg(Struct, frozen=True):
    by: PersonName  # the second name of OperatorsName (PN)

    def __post_init__(self) -> None:
        check_person_name(self.by, "by")


class VoidArg(Struct, frozen=True):
    reason: Reason
    by: PersonName

    def __post_init__(self) -> None:
        check_person_name(self.by, "by")


class ReasonArg(Struct, frozen=True):
    reason: Reason


class CentreArg(Struct, frozen=True):
    centre: Centre


class TriageArg(Struct, frozen=True):
    triage: Triage


def to_event(value: Struct) -> dict:
    """Builtins for an event payload; Decimal, datetime and date stay typed (the event
    store's transcoder keeps them exact)."""
    return msgspec.to_builtins(value, builtin_types=(Decimal, datetime, date))


def from_event(payload: dict, kind: type[Struct]) -> Struct:
    token = REPLAYING.set(True)
    try:
        return msgspec.convert(payload, kind, strict=False)
    finally:
        REPLAYING.reset(token)
