"""Recovery scenarios: the restored OIS's records (real DICOM files) against the ledger.

The OIS is simulated the way it behaves: what it holds at its restore point is what the
ledger exported at that moment; everything logged afterwards is what the restore lost.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pydicom
import pytest

from adapters.dicom.export import export_all
from adapters.recovery import MANIFEST, export_import_set, render_report, run
from ledger.reconcile import is_clean
from ledger.service import Actor
from tests.conftest import cli

TZ = timezone(timedelta(hours=1))
DAY1 = datetime(2026, 11, 2, 8, 0, tzinfo=TZ)
HOME, PARTNER = "HOME", "PARTNER"
PATIENTS = ["P-A", "P-B", "P-C", "P-D"]


def register(ledger, pid: str) -> str:
    return ledger.app.register_course(
        {"patient": {"id": pid, "name": f"PATIENT^{pid}"}, "home_centre": HOME,
         "plan": {"uid": f"1.2.826.0.1.3680043.10.{PATIENTS.index(pid) + 1}", "label": f"plan {pid}",
                  "machine": "L1", "fraction_groups": [{"number": 1, "fractions_planned": 10, "beams": [
                      {"number": 1, "meterset": "120.5"}, {"number": 2, "meterset": "80.0"}]}]},
         "assigned_centres": [PARTNER]},
        Actor("physicist", HOME))["id"]


def deliver(ledger, course: str, number: int, day: int, centre: str = HOME) -> dict:
    return ledger.app.log_fraction(
        course, {"number": number, "centre": centre, "machine": f"{centre}-L1", "operator": f"rtt.{centre}",
                 "delivered_at": DAY1 + timedelta(days=day, minutes=10 * number)}, Actor(f"rtt.{centre}", centre))


def snapshot(ledger, folder: Path) -> Path:
    """The OIS as it stands: the records the ledger would have handed it so far."""
    list(export_all(ledger.app, ledger.fresh(), folder, kinds=("record", "summary")))
    return folder


@pytest.fixture
def world(ledger, tmp_path):
    courses = {pid: register(ledger, pid) for pid in PATIENTS}
    for pid, course in courses.items():
        for day in (0, 1):
            deliver(ledger, course, day + 1, day)
    return ledger, courses, tmp_path


def test_rex3_restore_to_the_previous_day_finds_every_lost_record_then_is_clean(world):
    ledger, courses, tmp = world
    # One fraction of day 2 is logged late: after the OIS's last good state was taken.
    ois = snapshot(ledger, tmp / "ois")
    late = deliver(ledger, courses["P-C"], 3, 1, PARTNER)
    restore_point = DAY1 + timedelta(days=1, hours=12)
    day3 = [deliver(ledger, courses[pid], 4 if pid == "P-C" else 3, 2) for pid in PATIENTS]

    result = run(ledger, [ois], TZ, restore_point=restore_point)
    missing = {(m["patient_id"], m["fraction_number"]): m for m in result["missing_in_ois"]}
    assert set(missing) == {("P-A", 3), ("P-B", 3), ("P-C", 3), ("P-C", 4), ("P-D", 3)}
    assert missing[("P-C", 3)]["after_restore_point"] is False, "delivered before the restore, logged late"
    assert missing[("P-C", 3)]["centre"] == PARTNER
    assert all(missing[k]["after_restore_point"] for k in missing if k != ("P-C", 3))
    assert not result["unknown_to_ledger"] and not result["conflicts"]
    assert result["totals"]["ledger_fractions"] == 13 and result["totals"]["ois_fractions"] == 8

    manifest = export_import_set(ledger, result, tmp / "set")
    records = sorted(p for p in (tmp / "set").rglob("record_*.dcm"))
    assert len(records) == 5 and manifest["records"] == 5 and manifest["summaries"] == 4
    exported = {str(pydicom.dcmread(p).SOPInstanceUID) for p in records}
    assert exported == {i["sop_instance_uid"] for i in manifest["items"]}
    ids = {r for i in manifest["items"] for r in i["record_ids"]}
    assert ids == {late["record_id"], *(d["record_id"] for d in day3)}

    # The OIS imports the set (its files land beside the restored ones, summaries refreshed).
    shutil.copytree(tmp / "set", ois, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MANIFEST))
    after = run(ledger, [ois], TZ, restore_point=restore_point)
    assert is_clean(after), after["totals"]

    ack = ledger.app.ois.acknowledge_import(manifest["set_id"], manifest["items"], "physicist.home", Actor("physicist.home", HOME))
    assert ack["status"] == "acknowledged" and ack["fractions"] == 5
    again = ledger.app.ois.acknowledge_import(manifest["set_id"], manifest["items"], "someone", Actor("x", HOME))
    assert again["status"] == "unchanged" and again["by"] == "physicist.home"
    page = ledger.fresh().course(courses["P-C"])
    in_ois = {f["number"]: f["ois_set_id"] for f in page["fractions"]}
    assert in_ois == {1: None, 2: None, 3: manifest["set_id"], 4: manifest["set_id"]}


def test_acknowledged_set_that_the_ois_lost_again_is_called_out(world):
    ledger, courses, tmp = world
    ois = snapshot(ledger, tmp / "ois")
    deliver(ledger, courses["P-A"], 3, 2)
    result = run(ledger, [ois], TZ)
    manifest = export_import_set(ledger, result, tmp / "set")
    ledger.app.ois.acknowledge_import(manifest["set_id"], manifest["items"], "physicist", Actor("physicist", HOME))
    still = run(ledger, [ois], TZ)  # the import never reached the OIS
    assert still["missing_in_ois"][0]["acknowledged"]["set_id"] == manifest["set_id"]
    assert "acknowledged as imported" in render_report(still, "ois", DAY1)


def test_st_luc_sessions_lost_for_some_patients_only(world):
    ledger, courses, tmp = world
    ois = snapshot(ledger, tmp / "ois")
    shutil.rmtree(ois / courses["P-B"])  # every session and the summary of one patient
    for record in (ois / courses["P-D"]).glob("record_*f002*"):
        record.unlink()  # one session of another; its summary still lists the fraction
    result = run(ledger, [ois], TZ)
    missing = {(m["patient_id"], m["fraction_number"]): m["ois_has_summary_only"] for m in result["missing_in_ois"]}
    assert missing == {("P-B", 1): False, ("P-B", 2): False, ("P-D", 2): True}
    assert [c["course_id"] for c in result["courses_only_in_ledger"]] == [courses["P-B"]]
    assert not result["conflicts"], "a summary without MU is no conflict"
    manifest = export_import_set(ledger, result, tmp / "set")
    assert sorted((i["course_id"], i["number"]) for i in manifest["items"]) == sorted(
        [(courses["P-B"], 1), (courses["P-B"], 2), (courses["P-D"], 2)])


def test_fraction_on_an_emergency_system_is_unknown_to_the_ledger(world):
    ledger, courses, tmp = world
    ois = snapshot(ledger, tmp / "ois")
    source = next((ois / courses["P-A"]).glob("record_*f002*"))
    ds = pydicom.dcmread(source)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.10.999.1"
    ds.TreatmentMachineSequence[0].TreatmentMachineName = "EMERGENCY-1"
    for beam in ds.TreatmentSessionBeamSequence:
        beam.CurrentFractionNumber = 3
    ds.TreatmentDate = "20261104"
    ds.save_as(ois / courses["P-A"] / "emergency.dcm")
    result = run(ledger, [ois], TZ)
    assert [(u["patient_id"], u["fraction_number"], u["machine"]) for u in result["unknown_to_ledger"]] == [
        ("P-A", 3, "EMERGENCY-1")]
    assert "emergency.dcm" in result["unknown_to_ledger"][0]["refs"][0]


def test_conflicting_mu_beyond_tolerance_is_reported(world):
    ledger, courses, tmp = world
    ois = snapshot(ledger, tmp / "ois")
    source = next((ois / courses["P-D"]).glob("record_*f001*"))
    ds = pydicom.dcmread(source)
    ds.TreatmentSessionBeamSequence[0].DeliveredPrimaryMeterset = "135.5"
    ds.save_as(source)
    result = run(ledger, [ois], TZ)
    assert [(c["patient_id"], c["fraction_number"]) for c in result["conflicts"]] == [("P-D", 1)]
    assert result["conflicts"][0]["differences"] == ["beam 1 MU: ledger 120.5, OIS 135.5 (tolerance 0.5)"]
    assert not run(ledger, [ois], TZ, tolerance=__import__("decimal").Decimal("20"))["conflicts"]


def test_voided_in_the_ledger_but_in_the_ois_is_a_conflict(world):
    ledger, courses, tmp = world
    ois = snapshot(ledger, tmp / "ois")
    ledger.app.void_fraction(courses["P-A"], 2, "wrong patient", "physicist", Actor("physicist", HOME))
    result = run(ledger, [ois], TZ)
    assert [c["fraction_number"] for c in result["conflicts"]] == [2]
    assert "voided" in result["conflicts"][0]["differences"][0]


def test_unknown_and_malformed_files_are_reported_and_do_not_stop_it(world):
    ledger, courses, tmp = world
    ois = snapshot(ledger, tmp / "ois")
    (ois / "notes.txt").write_text("the OIS export log, not DICOM")
    good = next((ois / courses["P-A"]).glob("record_*f001*"))
    (ois / "truncated.dcm").write_bytes(good.read_bytes()[:300])
    shutil.copy(good.with_name("summary.dcm"), ois / "summary-copy.dcm")
    result = run(ledger, [ois], TZ)
    bad = {Path(p["file"]).name: p["error"] for p in result["unreadable_files"]}
    assert set(bad) == {"notes.txt", "truncated.dcm"}
    assert result["totals"]["missing_in_ois"] == 0 and result["totals"]["ois_fractions"] == 8


def test_reconcile_from_the_command_line(tmp_path):
    db = tmp_path / "ledger.sqlite3"
    cli("demo", db=db, check=True)
    ois = tmp_path / "ois"
    cli("export", "dicom", "--out", str(ois), db=db, check=True)
    courses = json.loads(cli("course", "list", "--json", db=db, check=True).stdout)
    rectum = next(c for c in courses if c["patient_id"] == "DEMO-003")
    cli("fraction", "log", rectum["id"], "--number", "3", "--centre", "AZ-HOME", "--machine", "HOME-LINAC-1",
        "--operator", "rtt.x", "--at", "2026-11-05T08:30+01:00", db=db, check=True)
    (ois / "junk.bin").write_bytes(b"\x00garbage")
    out = cli("reconcile", "--ois", str(ois), "--json", "--report", str(tmp_path / "r.html"),
              "--export", str(tmp_path / "set"), db=db, check=True)
    result = json.loads(out.stdout)
    assert [(m["patient_id"], m["fraction_number"]) for m in result["missing_in_ois"]] == [("DEMO-003", 3)]
    assert result["unreadable_files"][0]["file"].endswith("junk.bin")
    html = (tmp_path / "r.html").read_text()
    assert "DEMO-003" in html and "missing in OIS" in html and result["log_head"] in html
    ack = cli("reconcile", "acknowledge", str(tmp_path / "set"), "--by", "physicist.home", "--json", db=db, check=True)
    assert json.loads(ack.stdout)["status"] == "acknowledged"
    shown = json.loads(cli("course", "show", rectum["id"], "--json", db=db, check=True).stdout)
    assert [f["ois_set_id"] is not None for f in shown["fractions"]] == [False, False, True]
    refused = cli("reconcile", "acknowledge", str(tmp_path / "r.html"), "--by", "x", db=db)
    assert refused.returncode == 1 and "not an import set manifest" in refused.stderr


def test_a_record_cut_short_is_unreadable_never_half_read(world):
    """pydicom alone accepts a file cut inside its last element (a plan UID cut in half). A cut
    file is refused by name, or (cut exactly between elements, with nothing the reading needs
    lost) reads exactly as the whole file does."""
    import msgspec

    from adapters.recovery import ois_side

    ledger, courses, tmp = world
    ois = snapshot(ledger, tmp / "ois")
    whole_file = next((ois / courses["P-A"]).glob("record_*f001*"))
    (tmp / "whole").mkdir()
    shutil.copy(whole_file, tmp / "whole" / "whole.dcm")
    whole = msgspec.structs.replace(ois_side([tmp / "whole"], TZ)[0][0], ref="")
    content = whole_file.read_bytes()
    cuts = tmp / "cuts"
    cuts.mkdir()
    for cut in range(len(content) - 400, len(content)):
        (cuts / f"cut{cut:05d}.dcm").write_bytes(content[:cut])
    sessions, problems, files = ois_side([cuts], TZ)
    assert files == 400 and len(problems) + len(sessions) == 400
    assert len(problems) >= 395
    assert all(msgspec.structs.replace(s, ref="") == whole for s in sessions)
