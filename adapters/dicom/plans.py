"""RT Plans read into `schemas.course.Plan` and `Patient`.

Real plans come with or without Part 10 file meta, with static and dynamic (VMAT) beams
and several fraction groups. A file is checked for the consistency the ledger relies on
(beams referenced by a fraction group exist, counts match their sequences, every beam has
a meterset), because a truncated file often still parses. What the RT records need later
(study, machine details, beam-limiting devices, applicators) is kept in `Plan.source`; a
SETUP beam (`Beam.delivery_type`) may leave out its meterset (0 MU). Every text read is
checked against what the ledger will write it back as (`text_of`), so a file holding a
value the home systems cannot take back is refused by name with the attribute, not stored.
"""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec
import pydicom
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.filereader import read_dataset as read_elements, read_partial, read_preamble
from pydicom.multival import MultiValue
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, RTPlanStorage

from adapters.dicom import BadFile, said_of
from adapters.dicom.complete import check_body, check_structure, inflate, meta_info, not_an_object, read_file
from schemas.course import Beam, FractionGroup, Patient, Plan
from schemas.text import Label, LongString, PersonName, ShortString, check_person_name
from ledger.messages import english, said
from ledger.validation import describe

SOP_NAMES = {
    "1.2.840.10008.5.1.4.1.1.481.5": "RT Plan",
    "1.2.840.10008.5.1.4.1.1.481.4": "RT Beams Treatment Record",
    "1.2.840.10008.5.1.4.1.1.481.7": "RT Treatment Summary Record",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set",
    "1.2.840.10008.5.1.4.1.1.2": "CT Image",
}


def read_dataset(path: Path) -> Dataset:
    """The whole dataset, every element decoded once, so that a truncated or corrupt file fails
    here and not halfway through registering it. Bounded (the limits of `adapters.files`): the
    file's size is checked before it is read; a deflated data set is inflated here in bounded
    steps (never by pydicom, which would inflate all of it); the structure is walked before
    pydicom parses it (`check_body`: an element longer than what remains, a sequence not closed,
    too many elements); and the decoded values are checked without being kept, so a large VMAT
    plan costs about its size in memory, not ~100 times it."""
    data = read_file(path)
    try:
        start, syntax = meta_info(data)
        if syntax is not None and UID(syntax) == DeflatedExplicitVRLittleEndian:
            body = inflate(data[start:])
            check_body(body, implicit=False, little=True)
            ds = inflated_dataset(path, data, start, body)
        else:
            # pydicom's view of the encoding (from the file meta, or guessed without one), from a
            # read that stops at the first element: the walk comes before pydicom parses anything.
            head = read_partial(io.BytesIO(data), stop_when=lambda *_: True, force=True)
            implicit, little = head.original_encoding
            check_structure(data, data[start:], bool(implicit), bool(little))
            ds = pydicom.dcmread(io.BytesIO(data), force=True)  # raw elements: about the file's size
        not_an_object(ds)
        decode_every_element(ds)
    except BadFile:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever pydicom trips on, the file is unusable: say so, by name
        raise BadFile("bad_file.unreadable", detail=str(exc)) from None
    return ds


def inflated_dataset(path: Path, data: bytes, start: int, body: bytes) -> FileDataset:
    """The dataset of a Deflated Explicit VR Little Endian file from its inflated `body`, as
    pydicom would have read it (file meta, preamble, encoding)."""
    fp = io.BytesIO(data)
    preamble = read_preamble(fp, force=True)
    meta = FileMetaDataset(read_elements(io.BytesIO(data[fp.tell():start]), False, True))
    dataset = read_elements(io.BytesIO(body), False, True)
    ds = FileDataset(str(path), dataset, preamble, meta, False, True)
    ds.set_original_encoding(False, True, dataset._character_set)
    return ds


def decode_every_element(ds: Dataset) -> None:
    """Convert every raw element (nested ones included) as reading it would, without keeping
    the result: pydicom caches what it converts, and a plan's thousands of control points kept
    as Python values take ~100 times the file's size. What the readers need is converted again."""
    encoding = ds.original_character_set or ds._character_set
    for tag in list(ds.keys()):
        elem = ds.get_item(tag)
        if isinstance(elem, RawDataElement):
            elem = convert_raw_data_element(elem, encoding=encoding if tag != 0x00080005 else None, ds=ds)
        if elem.VR == "SQ":
            for item in elem.value or []:
                decode_every_element(item)


def kind_of(ds: Dataset) -> str:
    uid = str(ds.get("SOPClassUID", ""))
    return SOP_NAMES.get(uid, f"SOP Class {uid or '?'}")


def attribute(keyword: str) -> str:
    tag = pydicom.datadict.tag_for_keyword(keyword)
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def need(ds: Dataset, keyword: str, where: str | dict = "") -> Any:
    """The value of `keyword`, else BadFile. `where`: "" or a `bad_file.where_*` message."""
    value = ds.get(keyword)
    if value is None or value == "":
        raise BadFile("bad_file.missing", attribute=attribute(keyword), where=where)
    return value


def text_of(ds: Dataset, keyword: str, kind: Any, where: str | dict = "", required: bool = False) -> str:
    """An attribute's text as the ledger will write it back (`kind`: a type of schemas.text):
    one value (a backslash in the file made it several), within the VR's limits; else BadFile
    naming the attribute. Missing or empty gives "" (or BadFile when `required`)."""
    value = need(ds, keyword, where) if required else ds.get(keyword)
    if value is None or value == "":
        return ""
    if isinstance(value, MultiValue):
        raise BadFile("bad_file.several_values", attribute=attribute(keyword), where=where, count=len(value))
    text = str(value)
    try:
        msgspec.convert(text, kind)
        if kind is PersonName:
            check_person_name(text, keyword)
    except ValueError as exc:  # msgspec.ValidationError is one too
        reason = describe(str(exc))[1]
        raise BadFile("bad_file.not_writable_back", attribute=attribute(keyword), where=where, value=repr(text),
                      reason=reason) from None
    return text


def decimal(value: Any, what: str | dict) -> Decimal:
    """A DS value exactly as written in the file (not via float)."""
    text = getattr(value, "original_string", None) or str(value)
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise BadFile("bad_file.not_a_number", what=what, value=repr(text)) from None
    if not number.is_finite():
        raise BadFile("bad_file.not_finite", what=what, value=repr(text))
    return number


def dicom_date(value: Any) -> date | None:
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def read_patient(ds: Dataset) -> Patient:
    sex = str(ds.get("PatientSex", "") or "")
    return Patient(
        id=text_of(ds, "PatientID", LongString, required=True).strip(),
        name=text_of(ds, "PatientName", PersonName, required=True),
        birth_date=dicom_date(ds.get("PatientBirthDate")),
        sex=sex if sex in ("M", "F", "O") else None,
    )


def read_beam(beam: Dataset, meterset: Decimal, source: dict[str, str]) -> Beam:
    number = int(need(beam, "BeamNumber"))
    where = said("bad_file.where_beam", beam=number)
    points = beam.get("ControlPointSequence") or []
    declared = int(need(beam, "NumberOfControlPoints", where))
    if declared != len(points) or declared < 2:
        raise BadFile("bad_file.control_points", beam=number, declared=declared, held=len(points))
    energy = points[0].get("NominalBeamEnergy")
    machine = text_of(beam, "TreatmentMachineName", ShortString, where)
    devices = " ".join(
        f"{d.RTBeamLimitingDeviceType}:{int(d.NumberOfLeafJawPairs)}" for d in beam.get("BeamLimitingDeviceSequence") or []
    )
    source[f"beam/{number}/devices"] = devices
    source[f"beam/{number}/accessories"] = " ".join(
        str(int(beam.get(k) or 0)) for k in ("NumberOfWedges", "NumberOfCompensators", "NumberOfBoli", "NumberOfBlocks")
    )
    applicators = [
        {"id": str(a.get("ApplicatorID") or ""), "type": str(a.get("ApplicatorType") or ""),
         "accessory_code": str(a.get("AccessoryCode") or ""), "description": str(a.get("ApplicatorDescription") or "")}
        for a in beam.get("ApplicatorSequence") or []
    ]
    if applicators:  # electron cones and photon applicators: the record must name them (PS3.3 C.8.8.21)
        source[f"beam/{number}/applicators"] = json.dumps(applicators, sort_keys=True)
    if points[0].get("DoseRateSet") is not None:
        source[f"beam/{number}/dose_rate"] = str(decimal(points[0].DoseRateSet, said("bad_file.attribute_of_beam", attribute="DoseRateSet", beam=number)))
    if machine:
        for key, keyword in (("manufacturer", "Manufacturer"), ("institution", "InstitutionName"),
                             ("model", "ManufacturerModelName"), ("serial", "DeviceSerialNumber")):
            if beam.get(keyword):
                source[f"machine/{machine}/{key}"] = text_of(beam, keyword, LongString, where)
    kind = str(beam.get("BeamType", "STATIC"))
    return Beam(
        number=number,
        meterset=meterset,
        name=text_of(beam, "BeamName", LongString, where),
        machine=machine,
        radiation_type=text_of(beam, "RadiationType", ShortString, where) or "PHOTON",
        energy=decimal(energy, said("bad_file.attribute_of_beam", attribute="NominalBeamEnergy", beam=number)) if energy is not None else None,
        beam_type="DYNAMIC" if kind == "DYNAMIC" else "STATIC",
        control_points=declared,
        delivery_type=delivery_type_of(beam),
    )


def delivery_type_of(beam: Dataset) -> str:
    value = str(beam.get("TreatmentDeliveryType") or "TREATMENT")
    return value if value in ("TREATMENT", "OPEN_PORTFILM", "TRMT_PORTFILM", "SETUP") else "TREATMENT"


def dose_per_fraction(ds: Dataset, group: Dataset, planned: int, groups: int) -> Decimal | None:
    """The prescribed dose per fraction (Gy) of a fraction group, where the plan gives it: the
    Target Prescription Dose of the TARGET dose reference the group references (or of the plan's
    only one, when it has one fraction group) over its fractions; else the sum of the group's
    Beam Doses. None when neither is there or a value is not a number."""
    targets = {int(r.get("DoseReferenceNumber") or 0): r for r in ds.get("DoseReferenceSequence") or []
               if str(r.get("DoseReferenceType", "")) == "TARGET" and r.get("TargetPrescriptionDose") not in (None, "")}
    referenced = [int(r.get("ReferencedDoseReferenceNumber") or 0)
                  for r in group.get("ReferencedDoseReferenceSequence") or []]
    chosen = [targets[n] for n in referenced if n in targets] or (list(targets.values()) if groups == 1 and len(targets) == 1 else [])
    try:
        if len(chosen) == 1 and planned:
            return (Decimal(str(chosen[0].TargetPrescriptionDose)) / planned).quantize(Decimal("0.000001"))
        doses = [r.get("BeamDose") for r in group.get("ReferencedBeamSequence") or []]
        if doses and all(d not in (None, "") for d in doses):
            return sum((Decimal(str(d)) for d in doses), Decimal(0)).quantize(Decimal("0.000001"))
    except (ArithmeticError, ValueError):
        return None
    return None


def schedule_weekdays(ds: Dataset) -> list[int] | None:
    """The weekdays (ISO, 1 Monday) a plan's Fraction Pattern (300A,007B) treats, read as one week
    from Monday with one digit a day; None when the plan gives no such pattern (the default
    schedule applies) or a pattern of another shape (several weeks, several digits a day)."""
    for g in ds.get("FractionGroupSequence") or []:
        pattern = str(g.get("FractionPattern") or "")
        per_day = int(g.get("NumberOfFractionPatternDigitsPerDay") or 1)
        weeks = int(g.get("RepeatFractionCycleLength") or 1)
        if len(pattern) == 7 and per_day == 1 and weeks == 1 and set(pattern) <= {"0", "1"} and "1" in pattern:
            return [i + 1 for i, digit in enumerate(pattern) if digit == "1"]
    return None


def read_plan(ds: Dataset, centre: str = "") -> tuple[Patient, Plan]:
    """The patient and the plan of an RT Plan dataset; BadFile names what is wrong."""
    if str(ds.get("SOPClassUID", "")) != RTPlanStorage:
        raise BadFile("bad_file.not_an_rt_plan", kind=kind_of(ds), modality=str(ds.get('Modality', '?')))
    patient = read_patient(ds)
    uid = str(need(ds, "SOPInstanceUID"))
    beams_by_number = {int(need(b, "BeamNumber")): b for b in ds.get("BeamSequence") or []}
    declared_groups = ds.get("FractionGroupSequence") or []
    if not declared_groups:
        raise BadFile("bad_file.no_fraction_group")
    if int(ds.get("NumberOfBrachyApplicationSetups") or 0):
        raise BadFile("bad_file.brachytherapy")
    source: dict[str, str] = {
        "sop_class_uid": str(RTPlanStorage),
        "study_uid": str(need(ds, "StudyInstanceUID")),
        "study_id": text_of(ds, "StudyID", ShortString),
        "study_date": str(ds.get("StudyDate", "") or ""),
        "study_time": str(ds.get("StudyTime", "") or ""),
        "accession": text_of(ds, "AccessionNumber", ShortString),
        "referring_physician": text_of(ds, "ReferringPhysicianName", PersonName),
        "plan_name": text_of(ds, "RTPlanName", LongString),
    }
    groups = []
    for g in declared_groups:
        number = int(need(g, "FractionGroupNumber"))
        where = said("bad_file.where_group", group=number)
        referenced = g.get("ReferencedBeamSequence") or []
        if int(g.get("NumberOfBrachyApplicationSetups") or 0):
            raise BadFile("bad_file.group_brachytherapy", group=number)
        declared = int(need(g, "NumberOfBeams", where))
        if declared != len(referenced):
            raise BadFile("bad_file.number_of_beams", group=number, declared=declared, held=len(referenced))
        beams = []
        for ref in referenced:
            beam_number = int(need(ref, "ReferencedBeamNumber", where))
            if beam_number not in beams_by_number:
                raise BadFile("bad_file.beam_not_in_plan", group=number, beam=beam_number)
            if ref.get("BeamMeterset") in (None, "") and delivery_type_of(beams_by_number[beam_number]) == "SETUP":
                meterset = Decimal(0)  # a setup beam gives no dose; its meterset is often left out
            else:
                meterset = decimal(need(ref, "BeamMeterset",
                                        said("bad_file.where_beam_in_group", beam=beam_number, group=number)),
                                   said("bad_file.attribute_of_beam", attribute="BeamMeterset", beam=beam_number))
            beams.append(read_beam(beams_by_number[beam_number], meterset, source))
        planned = int(need(g, "NumberOfFractionsPlanned", where))
        groups.append(FractionGroup(number=number, fractions_planned=planned, beams=beams,
                                    dose_gy=dose_per_fraction(ds, g, planned, len(declared_groups))))
    machines = [b.machine for g in groups for b in g.beams if b.machine]
    plan = Plan(
        uid=uid,
        # The label is never written back (records name the plan by UID): what the ledger needs
        # is a name it can show and match on, so a label up to 64 characters (LO) is taken.
        label=(text_of(ds, "RTPlanLabel", Label).strip() or source["plan_name"].strip()
               or str(need(ds, "RTPlanLabel"))),
        fraction_groups=groups,
        machine=machines[0] if machines else "",
        centre=centre,
        source=source,
    )
    return patient, plan


def read_plan_file(path: Path, centre: str = "") -> tuple[Patient, Plan, Dataset]:
    ds = read_dataset(path)
    patient, plan = read_plan(ds, centre)
    return patient, plan, ds


def import_plan_file(app: Any, path: Path, actor: Any, centre: str, triage: int | None = None,
                     fallback_for: str | None = None, starts_at: int | None = None) -> dict:
    """Register the course of one plan file (or attach it to `fallback_for` as a partner's
    re-plan). Returns {file, course_id, status, error}; never raises for a bad file or a
    refusal, so that one bad file does not stop the others."""
    from adapters.dicom.archive import store_plan_document
    from ledger.errors import LedgerError
    from schemas.course import to_event

    answer: dict[str, Any] = {"file": str(path), "course_id": None, "status": "error", "error": None}
    try:
        patient, plan, ds = read_plan_file(path, centre)
        if fallback_for:
            result = app.add_fallback_plan(fallback_for, to_event(plan), actor, patient_id=patient.id,
                                           starts_at=starts_at)
            # The partner's plan is returned to the home centre later ("return completed plans").
            stored = store_plan_document(app, ds, actor)
            answer.update(course_id=result["id"], status="registered" if result["changed"] or stored else "unchanged")
            if result.get("awaiting_approval"):
                answer["warning_said"] = said("import.plan_awaits_approval")
                answer["warning"] = english(answer["warning_said"])
        else:
            weekdays = schedule_weekdays(ds)
            result = app.register_course(
                {"patient": to_event(patient), "home_centre": centre, "plan": to_event(plan), "triage": triage,
                 **({"schedule": {"weekdays": weekdays}} if weekdays else {})}, actor
            )
            answer.update(course_id=result["id"], status=result["status"])
    except LedgerError as exc:
        answer["error"], answer["error_said"] = exc.message, exc.said
    except ValueError as exc:  # BadFile, or a value the schema refuses (e.g. a negative meterset)
        answer["error"], answer["error_said"] = str(exc), said_of(exc)
    return answer
