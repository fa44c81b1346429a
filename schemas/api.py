"""Bodies and answers of the HTTP API: what clients send and get back.

The centre and the operator of a fraction are never in a body: they come from the
account that sends it. Unknown fields are refused so that a client that believes it can
set them learns at once that it cannot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

from schemas.prescription import Amendment
from schemas.schedule import Schedule
from schemas.course import (
    AwareDatetime,
    FractionRecord,
    BeamInput,
    DeliveryType,
    Plan,
    PositiveInt,
    Reason as OptionalReason,
    Uid,
)
from schemas.text import Machine, Note, long_text

Reason = long_text(2000, min_length=1)


class FractionIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    number: PositiveInt
    machine: Machine
    delivered_at: AwareDatetime
    beams: list[BeamInput] | None = None
    type: DeliveryType = "TREATMENT"
    note: Note = ""
    group: PositiveInt | None = None
    plan_uid: Uid | None = None
    # Metersets beyond tolerance are refused (409 meterset_beyond_tolerance) unless confirmed with a reason.
    deviation_reason: Reason | None = None


class VerifyIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    group: PositiveInt | None = None


class VoidIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason
    group: PositiveInt | None = None


class AssignIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    centre: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]
    remove: bool = False


class TriageIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    triage: Annotated[int, Meta(ge=1, le=5)]


class ReasonIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: OptionalReason = ""


class PlanApprovalIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    plan_uid: Uid


class AccountIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")]
    role: Literal["rtt", "physicist", "finance", "admin", "privacy", "oncologist"]
    centre: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")]


# ---- answers ---------------------------------------------------------------------------


class FieldError(Struct, frozen=True):
    field: str
    reason: str


class ErrorOut(Struct, frozen=True, kw_only=True):
    """Every error answer: a stable code, a message for people, and what is in the way."""

    error: str
    message: str
    fields: list[FieldError] | None = None
    conflict: dict[str, Any] | None = None


class FractionOut(FractionRecord, frozen=True, kw_only=True):
    """One session at a linac, as stored, with the course it belongs to."""

    course_id: str | None = None


class CourseOut(Struct, frozen=True, kw_only=True):
    id: str
    patient_id: str
    patient_name: str
    home_centre: str
    plan_uid: str
    plan_label: str
    status: str
    assigned_centres: list[str]
    fractions_planned: int
    fractions_delivered: int
    awaiting_verification: int
    fractions_with_warnings: int
    version: int
    plans: list[Plan] = []
    birth_date: str | None = None
    sex: str | None = None
    triage: int | None = None
    status_reason: str | None = None
    last_fraction_at: datetime | None = None
    last_fraction_centre: str | None = None
    registered_at: datetime | None = None


class ReceivedOut(Struct, frozen=True, kw_only=True):
    """When the ledger last received an object for a course (or from a source), and from where."""

    last_received_at: datetime
    source: str
    channel: str


class SourceOut(Struct, frozen=True, kw_only=True):
    """A system that sends the ledger plans and records: its last object, and whether it is silent
    (longer than the configured limit of working time without sending anything)."""

    name: str
    channel: str
    last_received_at: datetime
    last_kind: str
    last_status: str
    objects: int
    refused: int
    silent_minutes: int | None = None


class CourseDetailOut(CourseOut, frozen=True, kw_only=True):
    fractions: list[FractionOut] = []
    last_received: ReceivedOut | None = None
    # issue 17: the intended schedule as given (None: the default), the treatment site, the gap
    # category a physician set, and every prescription amendment (proposed and countersigned)
    schedule: Schedule | None = None
    site: str | None = None
    gap_category: int | None = None
    amendments: list[Amendment] = []
    # prescribed (as amended) and delivered dose in Gy, where the plan gives every group a dose per fraction
    dose_prescribed_gy: str | None = None
    dose_delivered_gy: str | None = None


class CourseChangeOut(Struct, frozen=True, kw_only=True):
    id: str
    status: str | None = None
    centre: str | None = None
    triage: int | None = None
    plan_uid: str | None = None
    changed: bool | None = None
    awaiting_approval: bool | None = None  # a fallback plan that waits for the home centre's physicist
    gap_category: int | None = None


class EventOut(Struct, frozen=True, kw_only=True):
    position: int
    stream: str
    version: int
    type: str
    timestamp: datetime
    user: str | None = None
    centre: str | None = None
    data: dict[str, Any] = {}


class AccountOut(Struct, frozen=True, kw_only=True):
    name: str
    role: str
    centre: str
    active: bool
    created_by: str = ""
    created_at: str = ""
    revoked_by: str | None = None
    revoked_at: str | None = None


class NewAccountOut(AccountOut, frozen=True, kw_only=True):
    token: str


class Me(Struct, frozen=True):
    user: str
    role: str
    centre: str


class Health(Struct, frozen=True):
    status: str
    detail: str = ""
    sources: list[SourceOut] = []
