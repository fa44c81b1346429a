"""DICOM over HTTP: RT Plan upload with a result per file, baseline records and the triage
list (another centre's courses refused line by line), the DICOM export as a zip, and a
C-STORE send to a real storescp with its answers in the delivery status."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from litestar.testing import TestClient
from pydicom import dcmread
from pydicom.data import get_testdata_file

from adapters.http import create_app
from adapters.runtime import Ledger
from ledger.accounts import add_account, hash_token
from ledger.service import Actor
from tests.conftest import Clock
from tests.dicom_support import HOME, PARTNER, build_history
from tests.http_support import auth

PHYS_H, PHYS_P = "physicist.home", "physicist.partner"


def accounts(app) -> None:
    for name, centre in ((PHYS_H, HOME), (PHYS_P, PARTNER)):
        add_account(app, {"name": name, "role": "physicist", "centre": centre}, hash_token(f"test-token-{name}"),
                    Actor("setup", "-"))


def open_ledger(folder: Path, monkeypatch) -> Ledger:
    """A ledger with its own read model (two ledgers live in one test)."""
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(folder / "read.sqlite3"))
    ledger = Ledger(str(folder / "ledger.sqlite3"), clock=Clock())
    accounts(ledger.app)
    return ledger


def files_of(paths: list[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (p.name, p.read_bytes(), "application/dicom")) for p in paths]


def test_plan_upload_answers_per_file_and_registers_at_the_callers_centre(tmp_path, monkeypatch):
    ledger = open_ledger(tmp_path / "a", monkeypatch)
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(Path(get_testdata_file("rtplan.dcm")).read_bytes()[:700])
    try:
        with TestClient(create_app(ledger)) as api:
            plan = Path(get_testdata_file("rtplan.dcm"))
            r = api.post("/api/imports/plans?triage=2", headers=auth(PHYS_H), files=files_of([plan, broken]))
            assert r.status_code == 200, r.text
            first, second = r.json()
            assert (first["file"], first["status"]) == ("rtplan.dcm", "registered")
            assert second["file"] == "broken.dcm" and second["status"] == "error" and second["error"]
            course = api.get(f"/api/courses/{first['course_id']}", headers=auth(PHYS_H)).json()
            assert (course["patient_id"], course["home_centre"], course["triage"], course["fractions_planned"]) == (
                "id00001", HOME, 2, 30)
            again = api.post("/api/imports/plans", headers=auth(PHYS_H), files=files_of([plan])).json()
            assert again[0]["status"] == "unchanged" and again[0]["course_id"] == first["course_id"]
            r = api.post("/api/imports/plans", headers=auth(PHYS_H), files={"other": ("x.txt", b"x", "text/plain")})
            assert r.status_code == 400 and r.json()["fields"][0]["field"] == "files"
    finally:
        ledger.close()


def test_export_zip_then_records_and_triage_into_another_ledger(tmp_path, monkeypatch):
    source = open_ledger(tmp_path / "ois", monkeypatch)
    try:
        history = build_history(source.app, tmp_path / "plans")
        with TestClient(create_app(source)) as api:
            r = api.get("/api/exports/dicom", headers=auth(PHYS_H))
            assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
            archive = zipfile.ZipFile(io.BytesIO(r.content))
            names = sorted(archive.namelist())
            assert api.get("/api/exports/dicom", headers=auth(PHYS_H)).content == r.content  # deterministic
            empty = api.get("/api/exports/dicom", headers=auth(PHYS_P))
            assert zipfile.ZipFile(io.BytesIO(empty.content)).namelist() == []
    finally:
        source.close()
    records = tmp_path / "records"
    archive.extractall(records)
    sessions = [p for p in sorted(records.rglob("record_*.dcm")) if p.parent.name == history["breast"]]
    kinds = {str(dcmread(p).SOPClassUID) for p in records.rglob("*.dcm")}
    assert len(names) > 5 and "1.2.840.10008.5.1.4.1.1.481.4" in kinds and "1.2.840.10008.5.1.4.1.1.481.7" in kinds

    home = open_ledger(tmp_path / "home", monkeypatch)
    try:
        with TestClient(create_app(home)) as api:
            plans = api.post("/api/imports/plans", headers=auth(PHYS_H),
                             files=files_of([history["files"]["breast"]])).json()
            breast = plans[0]["course_id"]
            assert breast == history["breast"]  # the same backed-up plan gives the same course
            # the partner's physicist may not write another centre's baseline: refused per file, nothing written;
            # a course not assigned to it is as unknown to it as a patient nobody registered (need to know)
            refused = api.post("/api/imports/records", headers=auth(PHYS_P), files=files_of(sessions[:1])).json()
            assert refused[0]["status"] == "error" and "is not known to the ledger" in refused[0]["error"]
            assert refused[0]["course_id"] is None and breast not in str(refused)
            assert api.get(f"/api/courses/{breast}", headers=auth(PHYS_H)).json()["fractions_delivered"] == 0
            r = api.post("/api/imports/records?utc_offset=%2B01:00", headers=auth(PHYS_H), files=files_of(sessions))
            assert [(a["file"], a["status"]) for a in r.json()] == [(p.name, "imported") for p in sessions]
            assert api.get(f"/api/courses/{breast}", headers=auth(PHYS_H)).json()["fractions_delivered"] == 3
            csv_text = ("patient_id,plan,triage,centre\n"
                        f"PAT-2,Breast,1,{PARTNER}\nNOBODY,Breast,2,\nPAT-2,Breast,9,\n")
            triage = [("files", ("triage.csv", csv_text.encode(), "text/csv"))]
            denied = api.post("/api/imports/triage", headers=auth(PHYS_P), files=triage).json()
            assert denied[0]["status"] == "error" and "is not known to the ledger" in denied[0]["error"]
            assert breast not in str(denied)
            lines = api.post("/api/imports/triage", headers=auth(PHYS_H), files=triage).json()
            assert [(a["line"], a["status"]) for a in lines] == [(2, "changed"), (3, "error"), (4, "error")]
            assert "NOBODY" in lines[1]["error"] and "triage" in lines[2]["error"]
            course = api.get(f"/api/courses/{breast}", headers=auth(PHYS_H)).json()
            assert (course["triage"], course["assigned_centres"]) == (1, [PARTNER])
    finally:
        home.close()


def test_send_dicom_to_storescp_and_read_the_status(tmp_path, monkeypatch):
    from tests.test_dicom_send import LoopbackStorescp

    ledger = open_ledger(tmp_path / "a", monkeypatch)
    server = LoopbackStorescp(tmp_path / "received")
    config = tmp_path / "dicom.toml"
    config.write_text(f'[destinations.ois]\nhost = "127.0.0.1"\nport = {server.port}\ncalled_aet = "OIS"\ntimeout = 5\n')
    try:
        build_history(ledger.app, tmp_path / "plans")
        with TestClient(create_app(ledger, dicom_config=config)) as api:
            r = api.post("/api/sends/dicom", headers=auth(PHYS_H), json={})
            assert r.status_code == 200, r.text
            [row] = r.json()
            assert (row["destination"], row["sent"], row["accepted"], row["refused"], row["failure"]) == (
                "ois", 10, 10, [], None)
            assert len(server.received()) == 10
            again = api.post("/api/sends/dicom", headers=auth(PHYS_H), json={"destinations": ["ois"]}).json()[0]
            assert (again["sent"], again["skipped"]) == (0, 10)
            status = [d for d in api.get("/api/deliveries", headers=auth(PHYS_P)).json() if d["kind"] == "dicom"]
            assert [(d["destination"], d["address"], d["accepted"]) for d in status] == [
                ("ois", f"dicom://OIS@127.0.0.1:{server.port}", 10)]
            r = api.post("/api/sends/dicom", headers=auth(PHYS_H), json={"destinations": ["pacs"]})
            assert r.status_code == 400 and r.json()["fields"][0]["field"] == "destinations"
    finally:
        server.close()
        ledger.close()


def test_without_a_destination_nothing_is_sent(tmp_path, monkeypatch):
    ledger = open_ledger(tmp_path / "a", monkeypatch)
    try:
        with TestClient(create_app(ledger)) as api:
            r = api.post("/api/sends/dicom", headers=auth(PHYS_H), json={})
            assert r.status_code == 409 and "--dicom-config" in r.json()["message"]
    finally:
        ledger.close()
