"""The vocabulary of incidents and cross-centre billing, as msgspec Structs.

Money is `Decimal` everywhere; the rules that bound amounts (whole cents, not negative)
live in `ledger.billing` so that the refusal names the field.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from schemas.course import AwareDatetime, Centre, PositiveInt
from schemas.text import PersonName, check_person_name, long_text

# Incident categories (the list, plus the near-miss a refused command records).
EXTRA_OR_MISSED_FRACTION = "extra-or-missed-fraction"
WRONG_PATIENT_OR_PLAN = "wrong-patient-or-plan"
POSITIONING = "positioning"
DOSE_DEVIATION = "dose-deviation"
EQUIPMENT = "equipment"
DATA_LOSS_OR_RESTORE = "data-loss-or-restore"
COMMUNICATION = "communication"
OTHER = "other"
NEAR_MISS = "near-miss"
CATEGORIES: tuple[str, ...] = (
    EXTRA_OR_MISSED_FRACTION, WRONG_PATIENT_OR_PLAN, POSITIONING, DOSE_DEVIATION, EQUIPMENT,
    DATA_LOSS_OR_RESTORE, COMMUNICATION, OTHER, NEAR_MISS,
)
LOW, MEDIUM, HIGH = "low", "medium", "high"
SEVERITIES: tuple[str, ...] = (LOW, MEDIUM, HIGH)

Text = long_text(4000, min_length=1)  # incident text: the summary PDF, the incident export; LF allowed
Resolution = long_text(4000)
User = PersonName  # who registered or followed up, named like an operator (DICOM PN)
# A treatment category as finance names it (e.g. "complex", "palliative"): a tariff key.
TreatmentCategory = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/-]*$")]
Rule = Literal["pro-rata", "per-fraction"]
PRO_RATA, PER_FRACTION = "pro-rata", "per-fraction"


class RegisterIncident(Struct, frozen=True, kw_only=True):
    centre: Centre
    category: Literal[
        "extra-or-missed-fraction", "wrong-patient-or-plan", "positioning", "dose-deviation", "equipment",
        "data-loss-or-restore", "communication", "other",
    ]
    severity: Literal["low", "medium", "high"]
    description: Text
    course_id: str | None = None
    fraction: PositiveInt | None = None
    by: User | None = None
    occurred_at: AwareDatetime | None = None

    def __post_init__(self) -> None:
        check_person_name(self.by, "by")


class FollowUpArg(Struct, frozen=True):
    text: Resolution  # an empty one is refused by the incident, with its own words
    by: User | None = None

    def __post_init__(self) -> None:
        check_person_name(self.by, "by")


class CloseArg(Struct, frozen=True):
    resolution: Resolution
    by: User | None = None

    def __post_init__(self) -> None:
        check_person_name(self.by, "by")


class CourseCategoryArg(Struct, frozen=True):
    category: TreatmentCategory


class AgreementTerms(Struct, frozen=True, kw_only=True):
    """One version of what two centres agreed: who bills, and how the partner is paid."""

    billing_centre: Centre
    partner: Centre
    rule: Rule
    valid_from: date
    valid_to: date | None = None
    course_amount: Decimal | None = None
    fee_per_fraction: Decimal | None = None
    tariffs: dict[TreatmentCategory, Decimal] = {}
    version: int = 0  # set when recorded: 1, 2, ... per centre pair


class Share(Struct, frozen=True, kw_only=True):
    centre: str
    fractions: int
    amount: Decimal | None = None


class Split(Struct, frozen=True, kw_only=True):
    """Who bills a course and what each centre gets. `status`: `settled` (amounts known),
    `unsettled` (an agreement is missing or unclear: `reason` says which), or `home-only`
    (every fraction at the home centre: nothing to settle between centres)."""

    course_id: str
    home_centre: str
    status: Literal["settled", "unsettled", "home-only"]
    shares: list[Share]
    completed_on: date
    billing_centre: str | None = None
    course_amount: Decimal | None = None
    category: str | None = None
    first_fraction_on: date | None = None
    agreements: list[dict] = []  # {"billing_centre", "partner", "version", "rule"} of each version used
    reason: str | dict[str, Any] = ""  # why it is unsettled: a message (ledger.messages), or a text written before codes
