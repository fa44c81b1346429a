"""`send dicom`: C-STORE to a real dcmtk storescp and to a real Orthanc, with the answers
remembered per destination (resume, refusals with their DIMSE status)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom import dcmread

from adapters.runtime import Ledger
from tools import storescp
from tests.conftest import cli, free_port, require_tool
from tests.dicom_support import Orthanc, build_history, dataset_bytes


def LoopbackStorescp(out: Path, **kw) -> storescp.LoopbackStorescp:  # noqa: N802 - a class's stand-in
    """dcmtk's storescp on loopback (`tools/storescp.py`); under CI a missing storescp fails."""
    return storescp.LoopbackStorescp(out, exe=require_tool("storescp"), **kw)


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "ledger.sqlite3"
    with Ledger(str(path)) as ledger:
        build_history(ledger.app, tmp_path / "plans")
    return path


def send(db, port, *extra):
    proc = cli("send", "dicom", "--host", "127.0.0.1", "--port", str(port), "--called-aet", "OIS", "--timeout", "5", "--json",
               *extra, db=db)
    return proc.returncode, json.loads(proc.stdout)


@pytest.mark.slow
def test_storescp_receives_the_exported_files_and_a_second_send_sends_nothing(db, tmp_path):
    server = LoopbackStorescp(tmp_path / "received")
    try:
        out = tmp_path / "sent"
        code, report = send(db, server.port, "--out", str(out))
        assert code == 0, report
        assert (report["sent"], report["accepted"], report["refused"], report["error"]) == (10, 10, [], None)
        exported = {str(dcmread(p).SOPInstanceUID): p for p in out.rglob("*.dcm")}
        received = server.received()
        assert set(received) == set(exported) and len(exported) == 10
        for uid, path in exported.items():
            assert dataset_bytes(received[uid]) == dataset_bytes(path), path.name
        code, again = send(db, server.port)
        assert code == 0 and (again["sent"], again["already_accepted"]) == (0, 10)
        status = json.loads(cli("send", "status", "--json", db=db, check=True).stdout)
        assert (status["accepted"], status["refused"]) == (10, [])
    finally:
        server.close()


@pytest.mark.slow
def test_a_destination_is_known_by_its_name_not_its_address(db, tmp_path):
    first = LoopbackStorescp(tmp_path / "first")
    try:
        code, report = send(db, first.port)
        assert code == 0 and report["sent"] == 10 and report["destination"] == "ois"
        assert report["address"] == f"dicom://OIS@127.0.0.1:{first.port}"
    finally:
        first.close()
    moved = LoopbackStorescp(tmp_path / "moved")  # the OIS comes back on another host/port: nothing is sent twice
    try:
        code, again = send(db, moved.port)
        assert code == 0 and (again["sent"], again["already_accepted"]) == (0, 10)
        code, other = send(db, moved.port, "--destination", "pacs")  # another destination gets everything
        assert code == 0 and (other["sent"], other["accepted"]) == (10, 10)
        assert len(moved.received()) == 10
    finally:
        moved.close()
    status = json.loads(cli("send", "status", "--destination", "pacs", "--json", db=db, check=True).stdout)
    assert status["accepted"] == 10


def test_what_a_ledger_recorded_under_an_address_still_counts_for_the_named_destination(tmp_path):
    from adapters.dicom.send import accepted_by, destination_name
    from ledger.service import Actor

    with Ledger(str(tmp_path / "l.sqlite3")) as ledger:
        old = destination_name("ois.local", 104, "ARIA")  # how a ledger before name keys kept the answers
        ledger.app.destinations.record_answers(old, ["1.2.3", "1.2.4"], [], Actor("physicist", "HOME"))
        assert set(accepted_by(ledger.app, "ois", old)) == {"1.2.3", "1.2.4"}
        assert accepted_by(ledger.app, "ois") == {}


@pytest.mark.slow
def test_interrupted_send_resumes(db, tmp_path):
    received = tmp_path / "received"
    received.mkdir()
    # The OIS crashes right after answering the third instance and stays down.
    crash = f"test $(ls {received} | wc -l) -ge 3 && kill -9 $PPID"
    server = LoopbackStorescp(received, extra=("--exec-sync", "--exec-on-reception", crash), associations=1)
    try:
        code, first = send(db, server.port)
        assert code == 1 and first["error"], first
        assert (first["sent"], first["accepted"]) == (3, 3)
    finally:
        server.close()
    server = LoopbackStorescp(received, port=server.port)  # the same destination, back up
    try:
        code, second = send(db, server.port)
        assert code == 0, second
        assert (second["already_accepted"], second["sent"]) == (3, 7)
        assert len(server.received()) == 10
    finally:
        server.close()


@pytest.mark.slow
def test_unreachable_destination_then_limit_then_rest(db, tmp_path):
    port = free_port()
    code, report = send(db, port)
    assert code == 1 and "no association" in report["error"] and report["sent"] == 0
    server = LoopbackStorescp(tmp_path / "received", port=port)
    try:
        code, part = send(db, port, "--limit", "4")
        assert code == 0 and part["sent"] == 4
        code, rest = send(db, port)
        assert (rest["already_accepted"], rest["sent"]) == (4, 6)
        assert len(server.received()) == 10
    finally:
        server.close()


# ---- Orthanc --------------------------------------------------------------------------------


@pytest.mark.slow
def test_orthanc_accepts_refuses_with_status_and_the_refused_are_sent_again(db, tmp_path):
    # Room for one patient, and that one protected: Orthanc refuses the second patient's
    # instances with 0xA700 (out of resources), as a full OIS store would.
    orthanc = Orthanc(tmp_path / "orthanc", max_patients=1)
    try:
        courses = {c["patient_id"]: c["id"] for c in json.loads(cli("course", "list", "--json", db=db).stdout)}
        code, first = send(db, orthanc.dicom_port, "--course", courses["PAT-1"])
        assert code == 0 and first["accepted"] == 6  # 4 sessions, the summary, the fallback plan
        [patient] = orthanc.get("/patients")
        orthanc.put(f"/patients/{patient}/protected", b"1")
        code, second = send(db, orthanc.dicom_port)
        assert code == 1
        assert (second["already_accepted"], second["sent"], second["accepted"]) == (6, 4, 0)
        assert {(r["course_id"], r["status"]) for r in second["refused"]} == {(courses["PAT-2"], "0xA700")}
        assert all("Out of Resources" in r["reason"] for r in second["refused"])
        refused = {r["uid"] for r in second["refused"]}
        status = json.loads(cli("send", "status", "--json", db=db, check=True).stdout)
        assert {r["uid"]: r["status"] for r in status["refused"]} == {uid: "0xA700" for uid in refused}
        orthanc.stop()
        orthanc.start(max_patients=0)
        code, third = send(db, orthanc.dicom_port)
        assert code == 0 and (third["already_accepted"], third["sent"], third["accepted"]) == (6, 4, 4)
        stored = orthanc.sop_instance_uids()
        status = json.loads(cli("send", "status", "--json", db=db, check=True).stdout)
        assert (status["accepted"], status["refused"]) == (10, [])
        assert refused <= stored and len(stored) == 10
    finally:
        orthanc.stop()


def test_tools_are_on_the_ci_list():
    listed = (Path(__file__).resolve().parent.parent / ".ci" / "apt-packages").read_text().split()
    assert {"dcmtk", "dicom3tools", "orthanc"} <= set(listed)
