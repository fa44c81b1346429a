"""What each command answers: one Struct per kind of answer (`schemas/result.py` says how they
are read). Fields a command does not give are None and left out of the JSON, so an answer's
JSON has the fields that command gives, as before these were typed.

A command with a request id stores its answer with the request (as builtins) and gives the same
answer again, of the same type, when the request is repeated (`UnitOfWork.run`'s `returns`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from schemas.billing import Split
from schemas.result import Result


class Answer(Result, frozen=True, kw_only=True, omit_defaults=True):
    """An answer whose absent fields are left out of its JSON."""


class CourseChange(Answer, frozen=True, kw_only=True, omit_defaults=True):
    """A course command's answer: the course, what it now is, whether anything changed."""

    id: str
    status: str | None = None
    centre: str | None = None
    triage: int | None = None
    plan_uid: str | None = None
    patient_id: str | None = None
    changed: bool | None = None
    awaiting_approval: bool | None = None
    starts_at: dict[int, int] | None = None
    category: str | None = None  # the course's treatment category (billing)
    gap_category: int | None = None


class Amended(Answer, frozen=True, kw_only=True, omit_defaults=True):
    """A prescription amendment as it now stands, and the fractions planned in force per group."""

    id: str
    amendment: dict[str, Any]
    fractions_planned: int


class IncidentChange(Answer, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    status: str
    category: str | None = None
    follow_ups: int | None = None


class AgreementChange(Answer, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    changed: bool
    terms: dict[str, Any]


class Settled(Answer, frozen=True, kw_only=True, omit_defaults=True):
    id: str
    changed: bool
    split: Split


class CentreChange(Answer, frozen=True, kw_only=True, omit_defaults=True):
    """A change of a centre: in the registry, its machines, its capacity, its key, aliases, zone."""

    centre: str
    status: str
    machine: str | None = None
    version: int | None = None
    public_key: str | None = None
    kind: str | None = None
    value: str | None = None
    zone: str | None = None


class Accepted(Answer, frozen=True, kw_only=True, omit_defaults=True):
    """The (course, centre) pairs of an assignment plan a person accepted and the ledger recorded."""

    accepted: list[dict[str, str]]


class ContactChange(Answer, frozen=True, kw_only=True, omit_defaults=True):
    patient_id: str
    status: str


class CallRecorded(Answer, frozen=True, kw_only=True, omit_defaults=True):
    course: str
    day: date
    outcome: str


class ImportAcknowledged(Answer, frozen=True, kw_only=True, omit_defaults=True):
    set_id: str
    status: str
    by: str
    acknowledged_at: datetime
    fractions: int


class BundleImported(Answer, frozen=True, kw_only=True):
    """What importing a partner's bundle did: events applied, already imported, courses registered,
    and the fractions that collided with this ledger's (each flagged, with its near-miss incident)."""

    centre: str
    events: int
    applied: int
    already_imported: int
    courses_registered: int
    collisions: list[dict[str, Any]]
