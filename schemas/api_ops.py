"""Bodies and answers of the HTTP API for incidents, billing, exports and sends.

As in `schemas.api`: the centre and the person are never in a body (they come from the
account), unknown fields are refused, and money is an exact decimal string, never a float.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from schemas.billing import Resolution, Rule, Text, TreatmentCategory
from schemas.course import AwareDatetime, Centre, PositiveInt
from schemas.results import IncidentChange

Category = Literal[
    "extra-or-missed-fraction", "wrong-patient-or-plan", "positioning", "dose-deviation", "equipment",
    "data-loss-or-restore", "communication", "other",
]
Money = Annotated[str, Meta(description="EUR as an exact decimal string, e.g. \"1234.50\"")]
DestinationName = Annotated[str, Meta(min_length=1, max_length=64)]
TriageCode = Annotated[int, Meta(ge=1, le=5)]
StartsAt = Annotated[int, Meta(ge=1, le=10000)]
UtcOffset = Annotated[str, Meta(max_length=10)]
DeviationReason = Annotated[str, Meta(min_length=1, max_length=2000)]


# ---- DICOM imports: the query parameters of the upload routes, and the page forms' same fields ------


class PlanImportIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    triage: TriageCode | None = None


class RecordImportIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    utc_offset: UtcOffset | None = None
    deviation_reason: DeviationReason | None = None


# ---- incidents ----------------------------------------------------------------------------


class IncidentIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An incident at the caller's centre, registered by the caller."""

    category: Category
    severity: Literal["low", "medium", "high"]
    description: Text
    course_id: str | None = None
    fraction: PositiveInt | None = None
    occurred_at: AwareDatetime | None = None


class FollowUpIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    text: Text


class CloseIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    resolution: Resolution = ""


class FollowUpOut(Struct, frozen=True, kw_only=True):
    text: str
    by: str
    at: str
    centre: str | None = None


class IncidentOut(Struct, frozen=True, kw_only=True):
    id: str
    centre: str
    category: str
    severity: str
    description: str
    status: str
    registered_by: str
    registered_at: str
    home_centre: str | None = None
    course_id: str | None = None
    fraction: int | None = None
    occurred_at: str | None = None
    follow_ups: list[FollowUpOut] = []
    resolution: str | None = None
    closed_by: str | None = None
    closed_at: str | None = None
    attempt: dict[str, Any] | None = None  # a near-miss: the refused command and the rule that refused it


class IncidentChangeOut(IncidentChange, frozen=True, kw_only=True, omit_defaults=False):
    """The command's answer as the API gives it (every field, null where the command gives none)."""


# ---- billing -------------------------------------------------------------------------------


class AgreementIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A version of the agreement between a billing centre and a partner (the caller's centre is one of them)."""

    billing_centre: Centre
    partner: Centre
    rule: Rule
    valid_from: date
    valid_to: date | None = None
    course_amount: Decimal | None = None
    fee_per_fraction: Decimal | None = None
    tariffs: dict[TreatmentCategory, Decimal] = {}


class AgreementOut(Struct, frozen=True, kw_only=True):
    billing_centre: str
    partner: str
    version: int
    rule: str
    valid_from: str
    valid_to: str | None = None
    course_amount: Money | None = None
    fee_per_fraction: Money | None = None
    tariffs: dict[str, Money] = {}
    recorded_at: str | None = None
    recorded_by: str | None = None


class AgreementChangeOut(Struct, frozen=True, kw_only=True):
    id: str
    changed: bool
    terms: dict[str, Any]


class CategoryIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    category: TreatmentCategory


class CategoryOut(Struct, frozen=True, kw_only=True):
    id: str
    category: str
    changed: bool


class ShareOut(Struct, frozen=True, kw_only=True):
    centre: str
    fractions: int
    amount: Money | None = None


class SplitOut(Struct, frozen=True, kw_only=True):
    """One split of a course; `current` marks the one in force (earlier ones are superseded)."""

    course_id: str
    sequence: int
    current: bool
    status: str
    home_centre: str
    completed_on: str
    shares: list[ShareOut]
    billing_centre: str | None = None
    course_amount: Money | None = None
    category: str | None = None
    first_fraction_on: str | None = None
    agreements: list[dict[str, Any]] = []
    reason: str | None = None  # why it is unsettled, in English
    reason_said: dict[str, Any] | None = None  # the same as a message code and its values, to say it in any language
    cause: str | None = None
    recorded_at: str | None = None
    recorded_by: str | None = None


class SettleOut(Struct, frozen=True, kw_only=True):
    id: str
    changed: bool
    split: dict[str, Any]


class StatementLine(Struct, frozen=True, kw_only=True):
    course_id: str
    completed_on: str
    billing_centre: str
    centre: str
    fractions: int
    amount: Money
    patient_id: str | None = None
    agreement: str | None = None


class Balance(Struct, frozen=True, kw_only=True):
    debtor: str
    creditor: str
    amount: Money


class CentreTotal(Struct, frozen=True, kw_only=True):
    centre: str
    fractions: int
    share: Money
    net: Money


class Totals(Struct, frozen=True, kw_only=True):
    courses: int
    fractions: int
    amount: Money
    centres: list[CentreTotal] = []


class Unsettled(Struct, frozen=True, kw_only=True):
    course_id: str
    completed_on: str
    reason: str
    reason_said: dict[str, Any] | None = None
    fractions: dict[str, int]
    patient_id: str | None = None


class StatementOut(Struct, frozen=True, kw_only=True):
    """Courses completed in the period: lines per course and centre, who owes whom (netted), totals."""

    period: dict[str, str]
    lines: list[StatementLine]
    balances: list[Balance]
    totals: Totals
    unsettled: list[Unsettled] = []
    pair: list[str] | None = None


# ---- exports and sends --------------------------------------------------------------------


class SendIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Send what each destination has not accepted yet; every configured destination unless named."""

    destinations: Annotated[list[DestinationName], Meta(max_length=20)] = []
    course_id: str | None = None
    since: AwareDatetime | None = None


class RefusedOut(Struct, frozen=True, kw_only=True):
    control_id: str
    code: str
    text: str
    at: str | None = None
    kind: str | None = None
    course: str | None = None


class SendOut(Struct, frozen=True, kw_only=True):
    """One destination's part of a send: `failure` says why it stopped (its answers so far are kept)."""

    destination: str
    address: str
    sent: int = 0
    accepted: int = 0
    skipped: int = 0
    refused: list[RefusedOut] = []
    failure: str | None = None


class DeliveryOut(Struct, frozen=True, kw_only=True):
    """What a destination accepted, refused (with its reason) or was given in a file.
    For DICOM, `control_id` of a refusal is the SOP Instance UID and `code` the DIMSE status."""

    destination: str
    kind: Literal["hl7", "dicom"] = "hl7"
    accepted: int
    exported: int
    refused: list[RefusedOut]
    address: str | None = None
    last_accepted_at: str | None = None



class ImportAnswer(Struct, frozen=True, kw_only=True):
    """One uploaded file (or one line of a triage list): what it did, or why it was refused."""

    file: str
    status: str  # registered | unchanged | imported | changed | error
    course_id: str | None = None
    error: str | None = None  # why it was refused, in English (what programs read)
    # the same reason as a message code and its values (ledger.messages), to say it in the reader's language
    error_said: dict[str, Any] | None = None
    warning: str | None = None  # accepted, but someone must act (e.g. a re-plan awaiting approval)
    kind: str | None = None  # records: session | summary
    fractions: int | None = None
    covered: int | None = None
    line: int | None = None
    patient_id: str | None = None
