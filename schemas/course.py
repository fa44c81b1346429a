"""The vocabulary of a course: plans, beams, fractions, as msgspec Structs.

These are values: commands validate into them, events carry them as plain builtins
(`to_event`), and views are rebuilt from them (`from_event`). Field constraints live
here so that a bad value is refused with the field's name before anything is written.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

NonEmpty = Annotated[str, Meta(min_length=1, max_length=200)]
Centre = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
# A DICOM UID: digit groups separated by dots, at most 64 characters (PS3.5 9.1).
Uid = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")]
MU = Decimal  # checked by check_mu: msgspec cannot bound a Decimal
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Triage = Annotated[int, Meta(ge=1, le=5)]
PositiveInt = Annotated[int, Meta(ge=1, le=10000)]

Termination = Literal["NORMAL", "OPERATOR", "MACHINE", "UNKNOWN"]
DeliveryType = Literal["TREATMENT", "CONTINUATION"]
Sex = Literal["M", "F", "O"]
BeamKind = Literal["STATIC", "DYNAMIC"]
# A plan beam's Treatment Delivery Type (300A,00CE), as RT Plans use it.
PlanDeliveryType = Literal["TREATMENT", "OPEN_PORTFILM", "TRMT_PORTFILM", "SETUP"]

TERMINATIONS: tuple[str, ...] = ("NORMAL", "OPERATOR", "MACHINE", "UNKNOWN")


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


class Plan(Struct, frozen=True, kw_only=True):
    """An RT Plan as the ledger needs it. `source` keeps what an adapter read from the
    original file (study, series, manufacturer...) so that records can be rebuilt."""

    uid: Uid
    label: NonEmpty
    fraction_groups: Annotated[list[FractionGroup], Meta(min_length=1)]
    machine: str = ""
    centre: str = ""
    source: dict[str, str] = {}


class Patient(Struct, frozen=True, kw_only=True):
    id: Annotated[str, Meta(min_length=1, max_length=64)]
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    birth_date: date | None = None
    sex: Sex | None = None


class BeamDelivery(Struct, frozen=True, kw_only=True):
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


class MetersetDeviation(Struct, frozen=True, kw_only=True):
    """A beam that received more (`over`) or, although it ended NORMAL, less (`under`) than it
    should have: `expected` is what the fraction still lacked on that beam."""

    beam: int
    kind: Literal["over", "under"]
    expected: MU
    delivered: MU
    tolerance: MU


class FractionRecord(Struct, frozen=True, kw_only=True):
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
    warnings: list[str] = []
    # Beams whose delivered MU differ from the plan beyond tolerance, confirmed with a reason.
    deviations: list[MetersetDeviation] = []
    deviation_reason: str | None = None
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
    plan: Plan
    triage: Triage | None = None
    assigned_centres: list[Centre] = []


class LogFraction(Struct, frozen=True, kw_only=True):
    number: PositiveInt
    centre: Centre
    machine: NonEmpty
    operator: NonEmpty
    delivered_at: AwareDatetime
    group: PositiveInt | None = None
    plan_uid: Uid | None = None
    beams: list[BeamInput] | None = None
    delivery_type: DeliveryType = "TREATMENT"
    note: Annotated[str, Meta(max_length=2000)] = ""
    # Where the record comes from: "ledger" (logged live), "baseline" (imported from the
    # OIS's session records of before the outage), "summary" (a fraction the OIS lists only in a
    # treatment summary: no MU, no machine; its session record replaces it, `ledger.summaries`),
    # "bundle" (another centre's ledger).
    source: Literal["ledger", "baseline", "summary", "bundle"] = "ledger"
    source_uid: Annotated[str, Meta(max_length=128)] | None = None
    # A person's reason for metersets beyond tolerance: with it they are accepted as a
    # dose deviation (and an incident is registered); without it they are refused.
    deviation_reason: Annotated[str, Meta(min_length=1, max_length=2000)] | None = None


class CentreArg(Struct, frozen=True):
    centre: Centre


class TriageArg(Struct, frozen=True):
    triage: Triage


def to_event(value: Struct) -> dict:
    """Builtins for an event payload; Decimal, datetime and date stay typed (the event
    store's transcoder keeps them exact)."""
    return msgspec.to_builtins(value, builtin_types=(Decimal, datetime, date))


def from_event(payload: dict, kind: type[Struct]) -> Struct:
    return msgspec.convert(payload, kind, strict=False)
