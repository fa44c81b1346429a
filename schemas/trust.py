"""The vocabulary of trust between centres: a centre's public key, and a bundle's content.

A bundle carries what one centre recorded while it was apart from the others: the
fractions it delivered (with their verifications and voids), its fallback plans and its approvals of
partners' fallback plans, the prescription amendments and countersignatures and the schedules it
recorded (so that the receiving ledger counts against the amended prescription), plus
the registration of every course they belong to so that the receiving ledger can check
(or create) the course. Every event names where it came from (`key`: its stream and
version in the exporting ledger), which is what makes a second import change nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from schemas.course import AwareDatetime, Centre, FractionRecord, NewPlan, Reason, RegisterCourse, Site
from schemas.prescription import Amendment
from schemas.schedule import Schedule
from schemas.text import PersonName, check_person_name

# An Ed25519 public key: 32 raw bytes in base64.
PublicKey = Annotated[str, Meta(pattern=r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")]
Hash = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
BUNDLE_FORMAT = "fraction-ledger-bundle/1"


class AddCentre(Struct, frozen=True, kw_only=True):
    name: Centre
    public_key: PublicKey | None = None


class BundleCourse(Struct, frozen=True, kw_only=True):
    id: str
    registration: RegisterCourse


class BundleEvent(Struct, frozen=True, kw_only=True, tag_field="type"):
    key: Annotated[str, Meta(min_length=1, max_length=128)]
    course: str
    user: str
    centre: Centre
    recorded_at: AwareDatetime
    hash: Hash


class Delivered(BundleEvent, frozen=True, kw_only=True, tag="FractionDelivered"):
    record: FractionRecord


class Verified(BundleEvent, frozen=True, kw_only=True, tag="FractionVerified"):
    record_ids: list[str]
    by: PersonName

    def __post_init__(self) -> None:
        check_person_name(self.by, "by")


class Voided(BundleEvent, frozen=True, kw_only=True, tag="FractionVoided"):
    record_ids: list[str]
    reason: Reason
    by: PersonName

    def __post_init__(self) -> None:
        check_person_name(self.by, "by")


class FallbackAdded(BundleEvent, frozen=True, kw_only=True, tag="FallbackPlanAdded"):
    plan: NewPlan
    # per fraction group (as text: a JSON key), the course's fraction that is the re-plan's fraction 1
    starts_at: dict[str, int] | None = None


class FallbackApproved(BundleEvent, frozen=True, kw_only=True, tag="FallbackPlanApproved"):
    """The home centre's approval of a re-plan, for the partner's ledger."""

    plan_uid: str


class Amended(BundleEvent, frozen=True, kw_only=True, tag="PrescriptionAmended"):
    """A prescription amendment as proposed (who, why): it changes nothing until countersigned."""

    amendment: Amendment


class Countersigned(BundleEvent, frozen=True, kw_only=True, tag="AmendmentCountersigned"):
    """The countersignature that made an amendment take effect, with the group's count it gave."""

    amendment_id: Annotated[str, Meta(min_length=1, max_length=64)]
    before: int | None = None
    after: Annotated[int, Meta(ge=1, le=10000)] | None = None


class ScheduleGiven(BundleEvent, frozen=True, kw_only=True, tag="ScheduleSet"):
    """A course's intended schedule and treatment site."""

    schedule: Schedule | None = None
    site: Site | None = None


AnyBundleEvent = Delivered | Verified | Voided | FallbackAdded | FallbackApproved | Amended | Countersigned | ScheduleGiven


class Bundle(Struct, frozen=True, kw_only=True):
    format: Literal["fraction-ledger-bundle/1"]
    centre: Centre
    exported_at: AwareDatetime
    since: AwareDatetime | None = None
    source_head: Hash  # the exporting ledger's chain head when the bundle was written
    courses: list[BundleCourse]
    events: list[AnyBundleEvent]
    head: Hash  # the last event's hash in the bundle's own chain (zeros when empty)
