"""`import records` (the pre-outage baseline from the OIS) and `import triage`."""

from __future__ import annotations

import json
from pathlib import Path

from pydicom import dcmread

from adapters.dicom.baseline import Baseline
from adapters.dicom.export import encode, export_all
from adapters.dicom.plans import import_plan_file
from adapters.runtime import Ledger
from tests.conftest import Clock, cli
from tests.dicom_support import HOME, PHYSICIST, START, build_history, plan_files


def home_ois_export(tmp_path: Path) -> tuple[dict, Path]:
    """What the home OIS exported before the outage: session records and summaries."""
    source = Ledger(str(tmp_path / "ois.sqlite3"), clock=Clock())
    try:
        history = build_history(source.app, tmp_path / "plans")
        out = tmp_path / "ois-export"
        list(export_all(source.app, source.fresh(), out, kinds=("record", "summary")))
    finally:
        source.close()
    return history, out


def test_session_and_summary_do_not_count_a_fraction_twice(ledger, tmp_path):
    history, out = home_ois_export(tmp_path)
    files = history["files"]
    breast = import_plan_file(ledger.app, files["breast"], PHYSICIST, HOME)["course_id"]
    # Session records only for fractions 1 and 2; the summary lists 1, 2 and 3.
    folder = out / breast
    (folder / sorted(p.name for p in folder.glob("record_*f003*"))[0]).unlink()
    answers = list(Baseline(ledger, PHYSICIST, START.tzinfo).import_files([folder]))
    by_kind = {a["kind"]: a for a in answers if a.get("kind") == "summary"}
    assert [a["status"] for a in answers] == ["imported", "imported", "imported"]
    assert (by_kind["summary"]["fractions"], by_kind["summary"]["covered"]) == (1, 2)
    course = ledger.app.get_course(breast)
    assert sorted(r.number for r in course.active_records()) == [1, 2, 3]
    assert course.fractions_delivered() == 3
    third = next(r for r in course.records if r.number == 3)
    assert third.source == "summary" and third.source_uid.endswith("/1/3")
    assert third.delivered_at == START.replace(day=4)
    # The sessions brought date, machine and MU.
    first = next(r for r in course.records if r.number == 1)
    assert (first.machine, str(first.beams[0].delivered_mu), first.source) == ("LINAC-1", "112.4", "baseline")
    assert first.source_uid == str(dcmread(next(folder.glob("record_g1_f001_*"))).SOPInstanceUID)


def test_records_of_unknown_patient_or_plan_are_refused(ledger, tmp_path):
    history, out = home_ois_export(tmp_path)
    # The ledger knows the VMAT course but not the partner's fallback plan, nor patient PAT-2.
    import_plan_file(ledger.app, history["files"]["vmat"], PHYSICIST, HOME)
    answers = list(Baseline(ledger, PHYSICIST, START.tzinfo).import_files([out]))
    errors = {a["error"] for a in answers if a["status"] == "error"}
    assert any("patient PAT-2 is not known" in e for e in errors)
    assert any("plan" in e and "is not known" in e and "PAT-1" in e for e in errors)
    assert all("nothing was written" in e for e in errors)
    ledger.fresh()
    assert [r.source_uid for r in ledger.app.get_course(history["vmat"]).records
            if r.source_uid and r.delivery_type == "CONTINUATION"] == []


def test_cli_records_then_course_shows_them(tmp_path):
    history, out = home_ois_export(tmp_path)
    db = tmp_path / "l.sqlite3"
    cli("import", "plan", str(history["files"]["breast"]), "--centre", HOME, db=db, check=True)
    proc = cli("import", "records", str(out / history["breast"]), "--utc-offset", "+01:00", "--json", db=db)
    assert proc.returncode == 0, proc.stderr
    assert "4/4" in proc.stderr  # progress
    course = json.loads(cli("course", "show", history["breast"], "--json", db=db, check=True).stdout)
    assert course["fractions_delivered"] == 3
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 10)
    proc = cli("import", "records", str(bad), "--json", db=db)
    assert proc.returncode == 1 and json.loads(proc.stdout)[0]["status"] == "error"


def test_triage_list(tmp_path):
    db = tmp_path / "l.sqlite3"
    files = plan_files(tmp_path / "plans")
    cli("import", "plan", str(files["vmat"]), str(files["breast"]), "--centre", HOME, db=db, check=True)
    vmat_uid = str(dcmread(files["vmat"]).SOPInstanceUID)
    csv = tmp_path / "triage.csv"
    csv.write_text(
        "patient_id,plan,triage,centre\n"
        f"PAT-1,{vmat_uid},1,PARTNER-RT\n"
        "PAT-2,Breast,4,\n"
        "PAT-404,Breast,2,\n"
        "PAT-2,Breast,7,\n"
        "PAT-2,Nope,2,\n"
    )
    proc = cli("import", "triage", str(csv), "--json", db=db)
    assert proc.returncode == 1
    answers = json.loads(proc.stdout)
    assert [(a["line"], a["status"]) for a in answers] == [
        (2, "changed"), (3, "changed"), (4, "error"), (5, "error"), (6, "error")]
    assert "PAT-404" in answers[2]["error"] and answers[2]["error"].startswith("patient_id")
    assert answers[3]["error"].startswith("triage") and "'7'" in answers[3]["error"]
    assert answers[4]["error"].startswith("plan")
    courses = {c["patient_id"]: c for c in json.loads(cli("course", "list", "--json", db=db, check=True).stdout)}
    assert (courses["PAT-1"]["triage"], courses["PAT-1"]["assigned_centres"]) == (1, ["PARTNER-RT"])
    assert courses["PAT-2"]["triage"] == 4
    again = json.loads(cli("import", "triage", str(csv), "--json", db=db).stdout)
    assert [a["status"] for a in again[:2]] == ["unchanged", "unchanged"]


def test_encode_is_part10(tmp_path):
    ds = dcmread(plan_files(tmp_path)["breast"], force=True)
    data = encode(ds)
    assert data[128:132] == b"DICM"
