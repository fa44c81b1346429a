"""Prescription amendments and the gap category, as commands and stored values.

A prescriber amends a fraction group's number of fractions, or adds a compensation day; it
takes effect only once a second prescriber or a physicist countersigns (ledger/amendments.py).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from msgspec import Meta, Struct

from schemas.course import PositiveInt, Reason, Site
from schemas.schedule import Schedule

# fractions:       the group's number of fractions becomes `fractions`
# extra_fractions: `fractions` more fractions in the group (a compensation)
# twice_daily:     two fractions on `day` (at least 6 hours apart)
# treatment_day:   one fraction on `day`, a day the schedule does not treat (a weekend)
AmendmentKind = Literal["fractions", "extra_fractions", "twice_daily", "treatment_day"]
KINDS: tuple[str, ...] = ("fractions", "extra_fractions", "twice_daily", "treatment_day")
GapCategory = Annotated[int, Meta(ge=1, le=3)]


class AmendPrescription(Struct, frozen=True, kw_only=True):
    kind: AmendmentKind
    reason: Reason
    group: PositiveInt | None = None
    fractions: PositiveInt | None = None
    day: date | None = None


class Amendment(Struct, frozen=True, kw_only=True):
    """A proposed amendment as the course keeps it; `countersigned_by` None: it changes nothing."""

    id: str
    kind: AmendmentKind
    reason: str
    by: str
    centre: str
    at: str
    group: int | None = None
    fractions: int | None = None
    day: date | None = None
    # the group's fractions planned before and after (count amendments), when proposed
    before: int | None = None
    after: int | None = None
    countersigned_by: str | None = None
    countersigned_centre: str | None = None
    countersigned_at: str | None = None


class CountersignArg(Struct, frozen=True):
    amendment: Annotated[str, Meta(min_length=1, max_length=64)]


class GapCategoryArg(Struct, frozen=True):
    category: GapCategory


class ScheduleArg(Struct, frozen=True, kw_only=True):
    """A course's intended schedule (None: the default) and treatment site."""

    schedule: Schedule | None = None
    site: Site | None = None


class GapOut(Struct, frozen=True, kw_only=True):
    """One line of the gaps worklist (adapters/gaps_view.py)."""

    id: str
    patient_id: str
    patient_name: str
    plan_label: str
    home_centre: str
    assigned_centres: list[str]
    triage: int | None = None
    site: str | None = None
    category: int | None = None
    category_from: str | None = None
    delivered: int
    planned: int
    days_since_last: int | None = None
    missed: int
    planned_end: date | None = None
    projected_end: date | None = None
    prolongation: int
    next_day: date | None = None
    next_fraction: dict | None = None
    alarm: bool
    pending_amendments: int = 0
    dose_prescribed_gy: str | None = None
    dose_delivered_gy: str | None = None


class AmendmentOut(Struct, frozen=True, kw_only=True):
    id: str  # the course
    amendment: Amendment
    fractions_planned: int
