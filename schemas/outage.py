"""The vocabulary of outage operations: the centre registry, partners' capacity, patients' contacts.

Values that commands validate into (a bad value is refused naming the field, nothing written) and
that events carry as plain builtins (`schemas.course.to_event`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from msgspec import Meta, Struct

from schemas.course import Centre
from schemas.text import LongString, Machine, ONE_LINE, PatientId, PersonName, check_person_name

# What a linac can deliver. A course's technique comes from its plan (`ledger.registry.technique_of`).
TECHNIQUES: tuple[str, ...] = ("static", "IMRT", "VMAT", "SRS", "electrons")
Technique = Literal["static", "IMRT", "VMAT", "SRS", "electrons"]
CentreName = Annotated[str, Meta(min_length=1, max_length=64, pattern=ONE_LINE)]
Model = Annotated[str, Meta(min_length=1, max_length=64, pattern=ONE_LINE)]
# A wall-clock time of day in the centre's zone, HH:MM.
TimeOfDay = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Phone = Annotated[str, Meta(min_length=3, max_length=32, pattern=r"^\+?[0-9][0-9 ./()-]*$")]


class MachineSpec(Struct, frozen=True, kw_only=True):
    """One treatment machine of a centre: its name (as its records say it, a DICOM SH), model and
    the techniques it delivers."""

    name: Machine
    model: Model
    techniques: Annotated[list[Technique], Meta(min_length=1)]


class RegisterCentre(Struct, frozen=True, kw_only=True):
    code: Centre
    name: CentreName
    zone: Annotated[str, Meta(min_length=1, max_length=64)] = "Europe/Brussels"
    machines: list[MachineSpec] = []


class DeclareCapacity(Struct, frozen=True, kw_only=True):
    """What a partner offers: `per_day` patients (each one fraction a day) or treatment slots a day,
    in a time window of its day, from a day until a day, on some of its machines."""

    centre: Centre
    unit: Literal["patients", "slots"] = "patients"
    per_day: Annotated[int, Meta(ge=1, le=1000)]
    window_start: TimeOfDay = "07:00"
    window_end: TimeOfDay = "19:00"
    valid_from: date
    valid_until: date | None = None
    machines: Annotated[list[Machine], Meta(min_length=1)]


class ContactDetails(Struct, frozen=True, kw_only=True):
    """How to reach a patient: phone numbers and a contact person (with their phone)."""

    phones: Annotated[list[Phone], Meta(min_length=1, max_length=4)]
    contact_person: PersonName | None = None
    contact_phone: Phone | None = None
    note: LongString = ""

    def __post_init__(self) -> None:
        if self.contact_person is not None:
            check_person_name(self.contact_person, "contact_person")


class RegisterContact(Struct, frozen=True, kw_only=True):
    home_centre: Centre
    patient_id: PatientId
    details: ContactDetails


CallOutcome = Literal["called", "not_reached"]


class RecordCall(Struct, frozen=True, kw_only=True):
    course_id: Annotated[str, Meta(min_length=1, max_length=64)]
    day: date
    outcome: CallOutcome
    note: LongString = ""
