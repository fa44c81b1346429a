"""`fraction-ledger listen`: the home OIS pushes plans and records with dcmtk's real `storescu`
to the ledger's Storage SCP, which imports them exactly as `import plan` / `import records` do."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from adapters.readmodel_receipts import RECEIPT_TOPIC
from adapters.dicom.listen import StorageSCP, parse_allow
from tests.conftest import ROOT, free_port, require_tool, wait_for
from tools.dicom_samples import sample_plan, write_plan
from tools.partner_samples import scratch_records

HOME, OIS_AET = "AZ-HOME", "HOME-OIS"
ZONE = ZoneInfo("Europe/Brussels")
FIRST_DAY = datetime(2027, 3, 1, 9, 0, tzinfo=ZONE)  # before the tests' clock (2027-03-28)


def home_ois(folder: Path, sessions: int) -> tuple[Path, list[Path]]:
    """A plan and the home OIS's records of its first `sessions` fractions."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = write_plan(sample_plan("HOME-77", "DUPONT^MARIE", "Pelvis 70/35", groups=[(35, ["180.5", "175.2"])],
                                  machine="HOME-LINAC-1"), folder / "plan.dcm")
    days = [FIRST_DAY + timedelta(days=k) for k in range(sessions)]
    records = sorted(scratch_records(folder / "ois", plan, HOME, "HOME-LINAC-1", days))
    return plan, records


def events(ledger) -> int:
    """Events of the ledger's state; receipts (what a source sent, when) are counted apart."""
    notifications = ledger.app.recorder.select_notifications(0, 1_000_000)
    return sum(1 for n in notifications if n.topic != RECEIPT_TOPIC)


def receipts(ledger) -> list:
    return [ledger.app.mapper.to_domain_event(n) for n in ledger.app.recorder.select_notifications(0, 1_000_000)
            if n.topic == RECEIPT_TOPIC]


def storescu(port: int, *files: Path, aet: str = OIS_AET, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    tool = require_tool("storescu")
    return subprocess.run([tool, "-aet", aet, "-aec", "LEDGER", "-to", "20", "-ta", "20", "-td", "20", *options,
                           "127.0.0.1", str(port), *map(str, files)],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def scp(ledger):
    require_tool("storescu")
    listener = StorageSCP(ledger, {OIS_AET: HOME}, aet="LEDGER", host="127.0.0.1", port=free_port(), timeout=20)
    listener.start()
    yield listener
    listener.stop()


def course_of(ledger, plan: Path):
    uid = str(dcmread(plan).SOPInstanceUID)
    rows = ledger.fresh().db.execute("SELECT id, plans FROM courses").fetchall()
    ids = [cid for cid, plans in rows if any(p["uid"] == uid for p in json.loads(plans))]
    assert len(ids) == 1, ids
    return ledger.app.get_course(ids[0])


@pytest.mark.slow
def test_plan_and_records_pushed_become_the_course_and_a_second_push_changes_nothing(ledger, scp, tmp_path):
    plan, records = home_ois(tmp_path / "home", 3)
    before = events(ledger)
    proc = storescu(scp.port, plan, *records)
    assert proc.returncode == 0, proc.stderr
    assert [a["status"] for a in scp.answers] == ["registered", "imported", "imported", "imported"]
    assert {a["dimse_status"] for a in scp.answers} == {"0x0000"}
    course = course_of(ledger, plan)
    assert course.home_centre == HOME
    assert sorted(r.number for r in course.active_records()) == [1, 2, 3]
    assert {r.centre for r in course.records} == {HOME}
    assert {r.source for r in course.records} == {"baseline"}
    assert {r.source_uid for r in course.records} == {str(dcmread(p).SOPInstanceUID) for p in records}
    written = events(ledger)
    assert written > before
    # The same objects again: Success, and nothing written.
    again = storescu(scp.port, plan, *records)
    assert again.returncode == 0, again.stderr
    assert [a["status"] for a in scp.answers[4:]] == ["unchanged"] * 4
    assert {a["dimse_status"] for a in scp.answers[4:]} == {"0x0000"}
    assert events(ledger) == written
    assert course_of(ledger, plan).fractions_delivered() == 3


def broken_records(records: list[Path], folder: Path) -> tuple[Path, Path]:
    """Fraction 4 with 10 times its plan's MU, and a record of a plan no one imported."""
    folder.mkdir()
    far = dcmread(records[0])
    far.SOPInstanceUID = far.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    for beam in far.TreatmentSessionBeamSequence:
        beam.CurrentFractionNumber = 4
        beam.DeliveredPrimaryMeterset = "1805.0"
        beam.ControlPointDeliverySequence[-1].DeliveredMeterset = "1805.0"
    far.save_as(folder / "far.dcm", enforce_file_format=True)
    orphan = dcmread(records[1])
    orphan.SOPInstanceUID = orphan.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    orphan.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID = generate_uid()
    orphan.save_as(folder / "orphan.dcm", enforce_file_format=True)
    return folder / "far.dcm", folder / "orphan.dcm"


def ct_image(path: Path) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.PatientName = "CT", "HOME-77", "DUPONT^MARIE"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.slow
def test_refused_objects_get_a_failure_status_with_the_reason_and_write_nothing(ledger, scp, tmp_path):
    plan, records = home_ois(tmp_path / "home", 2)
    assert storescu(scp.port, plan, *records).returncode == 0
    written = events(ledger)
    far, orphan = broken_records(records, tmp_path / "broken")
    proc = storescu(scp.port, far, orphan, options=("--no-halt", "-d"))  # else it stops at the first refusal
    refused = scp.answers[3:]
    assert [a["status"] for a in refused] == ["error", "error"]
    assert [a["dimse_status"] for a in refused] == ["0xC000", "0xC000"]
    assert "Fraction 4" in refused[0]["error"] and "MU" in refused[0]["error"], refused[0]["error"]
    assert "is not known to the ledger" in refused[1]["error"]
    # storescu shows the peer's status and comment (ErrorComment, at most 64 characters).
    shown = proc.stdout + proc.stderr
    assert shown.count("DIMSE Status                  : 0xc000: Error: Cannot understand") == 2, shown
    assert "LO [Fraction 4 of course Pelvis 70/35 (patient HOME-77)" in shown and "#  64, 1 ErrorComment" in shown
    assert events(ledger) == written
    assert sorted(r.number for r in course_of(ledger, plan).records) == [1, 2]
    # A CT is not negotiated at all: only RT Plan and RT record storage are offered.
    ct = storescu(scp.port, ct_image(tmp_path / "ct.dcm"))
    assert ct.returncode != 0
    assert "no presentation context" in ct.stderr.lower() or "no acceptable presentation" in ct.stderr.lower(), ct.stderr
    assert len(scp.answers) == 5 and events(ledger) == written


@pytest.mark.slow
def test_an_unknown_calling_ae_title_is_rejected_at_association(ledger, scp, tmp_path):
    plan, records = home_ois(tmp_path / "home", 1)
    before = events(ledger)
    proc = storescu(scp.port, plan, *records, aet="STRANGER")
    assert proc.returncode != 0
    assert "Association Rejected" in proc.stderr and "Calling AE Title Not Recognized" in proc.stderr, proc.stderr
    assert scp.answers == [] and events(ledger) == before


@pytest.mark.slow
def test_two_pushes_at_once_record_every_fraction_once(ledger, scp, tmp_path):
    plan, records = home_ois(tmp_path / "home", 6)
    assert storescu(scp.port, plan).returncode == 0
    tool = require_tool("storescu")
    procs = [subprocess.Popen([tool, "-aet", OIS_AET, "-aec", "LEDGER", "-to", "20", "-ta", "20", "-td", "20",
                               "127.0.0.1", str(scp.port), *map(str, half)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for half in (records[0::2], records[1::2])]
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert sorted(a["status"] for a in scp.answers[1:]) == ["imported"] * 6
    course = course_of(ledger, plan)
    assert sorted(r.number for r in course.records) == [1, 2, 3, 4, 5, 6]
    # Both again at once: nothing twice.
    written = events(ledger)
    assert storescu(scp.port, *records).returncode == 0
    assert events(ledger) == written


def test_allow_must_name_a_centre():
    assert parse_allow(["HOME-OIS=AZ-HOME", "TB2=PARTNER-RT"]) == {"HOME-OIS": HOME, "TB2": "PARTNER-RT"}
    for bad in (["HOME-OIS"], ["=AZ-HOME"], ["A-TITLE-LONGER-THAN-16=X"], []):
        with pytest.raises(ValueError):
            parse_allow(bad)


def wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    def open_() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_for(open_, f"fraction-ledger listen opening port {port}", seconds=seconds, every=0.1)


@pytest.mark.slow
def test_cli_listens_until_sigterm_and_says_what_it_took(tmp_path):
    plan, records = home_ois(tmp_path / "home", 1)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FRACTION_LEDGER_READ_DB": str(tmp_path / "read.sqlite3")}
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "--db", str(tmp_path / "l.sqlite3"), "listen",
                             "--port", str(port), "--aet", "LEDGER", "--allow", f"{OIS_AET}={HOME}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
    try:
        wait_for_port(port, proc)
        pushed = storescu(port, plan, *records)
        assert pushed.returncode == 0, pushed.stderr
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    assert [line.split()[:3] for line in lines] == [["registered", "0x0000", OIS_AET], ["imported", "0x0000", OIS_AET]]
    assert f"listening as LEDGER on 127.0.0.1:{port}" in err and "stopped: 1 imported, 1 registered" in err
