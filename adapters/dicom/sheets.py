"""The nightly bundle of emergency sheets: a PDF per active course, and a DICOM Encapsulated PDF
per patient for the cloud PACS (the way the backup script stores a patient's data there).

Encapsulated PDF Storage (PS3.3 A.45.1): Patient, General Study, Encapsulated Document Series,
General Equipment, SC Equipment, Encapsulated Document, SOP Common. A patient with several
active courses gets one document (the sheets one after another). UIDs come from the course ids and
the log position of their last event, and the dates from those events: the same log gives the
same bytes, and a changed course a new instance in the same series.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

from adapters.dicom.records import MANUFACTURER, uid_for
from adapters.i18n import Words
from adapters.outage import emergency_sheet_pdf, last_event_time, sheet_pages

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


def sheets_of_patient(app: Any, courses: list[Any], w: Words) -> bytes:
    """One PDF for a patient: a page per active course."""
    return sheet_pages(app, courses, w)


def encapsulated_pdf(app: Any, courses: list[Any], pdf: bytes) -> Dataset:
    first = courses[0]
    patient = first.patient
    when = max(last_event_time(c, app) for c in courses)
    key = [f"{c.id}:{c.version}" for c in sorted(courses, key=lambda c: str(c.id))]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    meta.MediaStorageSOPInstanceUID = uid_for("sheet", *key)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = ENCAPSULATED_PDF
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = patient["name"]
    ds.PatientID = patient["id"]
    ds.PatientBirthDate = str(patient.get("birth_date") or "").replace("-", "")
    ds.PatientSex = patient.get("sex") or ""
    ds.StudyInstanceUID = uid_for("sheet-study", first.home_centre, patient["id"])
    ds.StudyDate = when.strftime("%Y%m%d")
    ds.StudyTime = when.strftime("%H%M%S")
    ds.ReferringPhysicianName = ""
    ds.StudyID = "SHEET"
    ds.AccessionNumber = ""
    ds.StudyDescription = "Radiotherapy emergency sheet"
    ds.Modality = "DOC"
    ds.SeriesInstanceUID = uid_for("sheet-series", first.home_centre, patient["id"])
    ds.SeriesNumber = 1
    ds.Manufacturer = MANUFACTURER
    ds.ConversionType = "WSD"  # workstation: a document made by software
    ds.InstanceNumber = 1
    ds.ContentDate = ds.StudyDate
    ds.ContentTime = ds.StudyTime
    ds.AcquisitionDateTime = when.strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the PDF names the patient
    ds.DocumentTitle = f"Emergency sheet {patient['id']}"
    ds.ConceptNameCodeSequence = []
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    ds.EncapsulatedDocumentLength = len(pdf)
    return ds


def write_sheets(app: Any, course_ids: list[str], out: Path, w: Words, dicom: bool) -> dict:
    """`out/sheets/PATIENT_COURSE.pdf` per course, and with `dicom` `out/dicom/PATIENT.dcm` per patient."""
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[str]] = {"pdf": [], "dicom": []}
    by_patient: dict[tuple[str, str], list[Any]] = {}
    for course_id in course_ids:
        course = app.get_course(course_id)
        by_patient.setdefault((course.home_centre, course.patient["id"]), []).append(course)
        path = out / "sheets" / f"{safe(course.patient['id'])}_{course.id}.pdf"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(emergency_sheet_pdf(app, course, w))
        written["pdf"].append(str(path))
    if dicom:
        (out / "dicom").mkdir(exist_ok=True)
        for (home, patient_id), courses in sorted(by_patient.items()):
            courses.sort(key=lambda c: str(c.id))
            ds = encapsulated_pdf(app, courses, sheets_of_patient(app, courses, w))
            path = out / "dicom" / f"{safe(home)}_{safe(patient_id)}.dcm"
            ds.save_as(path, enforce_file_format=True)
            written["dicom"].append(str(path))
    return written


def safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)



def store_sheets(paths: list[Path], host: str, port: int, called_aet: str, calling_aet: str = "LEDGER",
                 timeout: float = 30) -> list[dict]:
    """C-STORE each Encapsulated PDF to a PACS on one association; its answer per file."""
    from pydicom import dcmread
    from pynetdicom import AE

    ae = AE(ae_title=calling_aet)
    ae.add_requested_context(ENCAPSULATED_PDF, ExplicitVRLittleEndian)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    assoc = ae.associate(host, port, ae_title=called_aet)
    if not assoc.is_established:
        raise ConnectionError(f"no association with {called_aet} at {host}:{port} (refused, rejected or unreachable)")
    answers = []
    try:
        for path in paths:
            status = assoc.send_c_store(dcmread(path))
            code = int(status.Status) if "Status" in status else -1
            answers.append({"file": str(path), "status": code, "stored": code == 0})
    finally:
        assoc.release()
    return answers
