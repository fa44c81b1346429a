"""Where a record from another system comes from: which centre delivered it, and under which
patient ids a partner may name the course's patient.

Part of the `Course` aggregate (a mixin, like `ReceivedFractions`): a partner's systems never use
our centre codes or patient ids, so records are attributed by explicit, recorded mappings (the
re-plan's centre, the machines its plans name, declared aliases) and a partner's patient id is
accepted only once a physicist mapped it with the second identifiers checked.
"""

from __future__ import annotations

from typing import Any

from ledger import errors
from schemas.course import FractionRecord, Plan


# What an OIS record that names no machine or no operator is recorded with.
UNKNOWN_MACHINE = "UNKNOWN"
UNKNOWN_OPERATOR = "unknown (OIS record)"


def people_of_record(operators: list[str], verified: bool) -> tuple[str, str | None]:
    """Who delivered the session an OIS record states, and who double-checked it: the first
    OperatorsName; the second, when the record says it was verified (the ledger exports a
    verified fraction that way), else nobody yet."""
    operator = operators[0] if operators else UNKNOWN_OPERATOR
    return operator, (operators[1] if verified and len(operators) > 1 else None)


def normalized_name(value: str) -> str:
    """Free text as people and partners' systems write it: case and spacing do not count."""
    return " ".join(value.split()).casefold()


def normalized_person(name: str) -> tuple[str, str]:
    """A DICOM person name's family and given names, as a person compares them (case, spaces)."""
    parts = (name.split("=")[0].split("^") + ["", ""])[:2]
    return normalized_name(parts[0]), normalized_name(parts[1])


class RecordOrigin:
    """Needs the Course's `plans`, `plan`, `home_centre`, `assigned_centres`, `records`, `patient`,
    `patient_ids`, `find_plan`, `_identity_mapped`."""

    plans: list[Plan]
    records: list[FractionRecord]
    patient: dict
    patient_ids: dict[str, str]

    def machines_of(self) -> dict[str, set[str]]:
        """The treatment machines each centre's plans name (the prescription's are the home centre's)."""
        found: dict[str, set[str]] = {}
        for p in self.plans:
            centre = self.home_centre if p is self.plan else (p.centre or self.home_centre)
            names = {p.machine} | {b.machine for g in p.fraction_groups for b in g.beams}
            found.setdefault(centre, set()).update(normalized_name(n) for n in names if n)
        return found

    def centre_of_record(self, plan_uid: str, machine: str, names: list[str], declared: list[str]) -> str:
        """Where an OIS record was delivered, in this order: the centre of the re-plan it references;
        the centre whose plans name its machine; a centre of this course that the record names by
        code; a centre a physicist declared the record's institution, station or AE title to mean.
        When nothing matches, the record is refused: a fraction is never given to a centre by guess."""
        plan = self.find_plan(plan_uid)
        if plan is not None and plan is not self.plan and plan.centre:
            return plan.centre
        by_machine = [c for c, machines in self.machines_of().items() if normalized_name(machine) in machines]
        if len(by_machine) == 1:
            return by_machine[0]
        ours = {self.home_centre, *self.assigned_centres, *(r.centre for r in self.records),
                *(p.centre for p in self.plans if p.centre)}
        for name in names:
            if name in ours:
                return name
        if declared:
            return declared[0]
        shown = ", ".join(repr(n) for n in names if n) or "no institution or station"
        raise errors.UnknownOrigin(
            "unknown_origin.record_course_patient_machine", course=self.plan.label, patient_id=self.patient['id'], machine=machine or '?', shown=shown,
            conflict={"machine": machine, "names": [n for n in names if n]},
        )

    def has_imported(self, source_uid: str) -> bool:
        """Whether a record from another system (its SOP Instance UID, or a summary's line) is in
        the course already, voided or not: importing it again changes nothing."""
        return any(r.source_uid == source_uid for r in self.records)

    def knows_patient_id(self, patient_id: str) -> bool:
        """The home centre's id of the patient, or one a physicist mapped for another centre."""
        return patient_id == self.patient["id"] or patient_id in self.patient_ids.values()

    def map_patient_id(self, centre: str, patient_id: str, name: str, birth_date: Any, meta: dict) -> bool:
        """Record that `centre` knows this patient as `patient_id`, once the second identifiers
        (name and birth date) given by the physicist match the course's patient."""
        theirs = (normalized_person(name), str(birth_date))
        ours = (normalized_person(self.patient["name"]), str(self.patient.get("birth_date")))
        if self.patient.get("birth_date") is None or theirs != ours:
            raise errors.PatientMismatch(
                "patient_mismatch.born_not_patient_course", name=name, birth_date=birth_date, course=self.plan.label, patient_id=self.patient['id'], centre=centre, patient_id2=patient_id,
                conflict={"course_patient_id": self.patient["id"], "patient_id": patient_id},
            )
        for other_centre, known in self.patient_ids.items():
            if known == patient_id and other_centre != centre:
                raise errors.CourseConflict("course_conflict.patient_id_already_s", patient_id=patient_id, other_centre=other_centre)
        if patient_id == self.patient["id"] or self.patient_ids.get(centre) == patient_id:
            return False
        self._identity_mapped(centre=centre, patient_id=patient_id, meta=meta)
        return True
