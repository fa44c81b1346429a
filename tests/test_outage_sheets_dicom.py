"""`export sheets --out DIR --dicom`: a DICOM Encapsulated PDF per patient that dciodvfy passes and a
real Orthanc stores (the cloud PACS), and whose PDF shows the course (text extracted with pypdf)."""

from __future__ import annotations

import io
import json

import pytest
from pydicom import dcmread
from pypdf import PdfReader

from tests.conftest import cli, require_tool
from tests.dicom_support import Orthanc, dciodvfy_errors

pytestmark = pytest.mark.slow  # dciodvfy and a real Orthanc

HOME = "AZ-HOME"


def register(db, env, n: int, plan_uid: str, patient: str = "P-1") -> str:
    return json.loads(cli("course", "register", "--patient-id", patient, "--patient-name", "DUPONT^MARIE",
                          "--plan-uid", plan_uid, "--plan-label", f"Breast {n}", "--fractions", "15",
                          "--home-centre", HOME, "--beam", "1=110.5", "--beam", "2=98", "--triage", "2", "--json",
                          db=db, env=env, check=True).stdout)["id"]


def test_sheets_as_encapsulated_pdf_pass_dciodvfy_and_are_stored_by_orthanc(tmp_path):
    dciodvfy = require_tool("dciodvfy")
    db = tmp_path / "ledger.sqlite3"
    env = {"FRACTION_LEDGER_READ_DB": str(tmp_path / "read.sqlite3")}
    first = register(db, env, 1, "1.2.826.0.1.3680043.10.1")
    register(db, env, 2, "1.2.826.0.1.3680043.10.2")  # the same patient's second course: one document, two pages
    register(db, env, 3, "1.2.826.0.1.3680043.10.3", patient="P-2")
    cli("fraction", "log", first, "--number", "1", "--centre", HOME, "--machine", "L1", "--operator", "rtt.anna",
        "--at", "2027-03-26T09:00+01:00", db=db, env=env, check=True)
    cli("contact", "set", first, "--phone", "+32 470 11 22 33", db=db, env=env, check=True)
    out = tmp_path / "sheets"
    made = json.loads(cli("export", "sheets", "--out", str(out), "--dicom", "--json", db=db, env=env, check=True).stdout)
    assert len(made["pdf"]) == 3 and len(made["dicom"]) == 2
    again = tmp_path / "again"
    cli("export", "sheets", "--out", str(again), "--dicom", db=db, env=env, check=True)
    for path in made["dicom"]:
        assert dciodvfy_errors(path, dciodvfy) == [], path
        assert (again / "dicom" / path.rsplit("/", 1)[1]).read_bytes() == open(path, "rb").read()  # deterministic
    ds = dcmread(next(p for p in made["dicom"] if p.endswith("_P-1.dcm")))
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.1" and ds.PatientID == "P-1"
    pdf = PdfReader(io.BytesIO(bytes(ds.EncapsulatedDocument)[:ds.EncapsulatedDocumentLength]))
    assert len(pdf.pages) == 2
    text = pdf.pages[0].extract_text() + pdf.pages[1].extract_text()
    for shown in ("Radiotherapy emergency sheet P-1", "DUPONT MARIE", "Breast 1", "Breast 2", "1 of 15 fractions delivered",
                  "fraction 2 (group 1) at AZ-HOME", "+32 470 11 22 33"):
        assert shown in text, shown

    orthanc = Orthanc(tmp_path / "orthanc")
    try:
        sent = cli("send", "sheets", str(out), "--host", "127.0.0.1", "--port", str(orthanc.dicom_port),
                   "--called-aet", "OIS", db=db, env=env)
        assert sent.returncode == 0, sent.stderr
        assert "stored 2 of 2 sheets" in sent.stdout
        assert orthanc.sop_instance_uids() == {dcmread(p).SOPInstanceUID for p in made["dicom"]}
    finally:
        orthanc.stop()
