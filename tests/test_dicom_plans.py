"""`import plan`: courses from RT Plans, per-file answers, fallback plans of partners."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

from adapters.dicom.plans import import_plan_file
from tests.dicom_support import HOME, PARTNER, PHYSICIST, plan_files
from tests.conftest import cli
from ledger import errors
from ledger.service import Actor
from tools.dicom_samples import sample_plan, write_plan

RTPLAN = get_testdata_file("rtplan.dcm")


def test_sample_plan_registers_a_course_once(tmp_path):
    db = tmp_path / "l.sqlite3"
    first = cli("import", "plan", RTPLAN, "--centre", HOME, "--triage", "2", "--json", db=db, check=True)
    [answer] = json.loads(first.stdout)
    assert answer["status"] == "registered" and answer["error"] is None
    again = json.loads(cli("import", "plan", RTPLAN, "--centre", HOME, "--json", db=db, check=True).stdout)
    assert again == [answer | {"status": "unchanged"}]
    course = json.loads(cli("course", "show", answer["course_id"], "--json", db=db, check=True).stdout)
    assert course["patient_id"] == "id00001" and course["fractions_planned"] == 30 and course["triage"] == 2
    [group] = course["plans"][0]["fraction_groups"]
    assert group["beams"][0]["meterset"] == "116.003669700000"  # exactly as in the file, not via float
    assert group["beams"][0]["machine"] == "unit001"
    events = json.loads(cli("events", "--json", db=db, check=True).stdout)
    # besides the access log's entries for the reads (course show, events)
    assert [e["type"] for e in events if e["type"] != "AccessLogEntry.Recorded"] == ["Course.Registered",
                                                                                      "PlanCourse.Registered"]


def test_vmat_several_groups_and_no_file_meta(ledger, tmp_path):
    files = plan_files(tmp_path)
    assert "TransferSyntaxUID" not in dcmread(files["breast"], force=True).file_meta
    answers = [import_plan_file(ledger.app, files[k], PHYSICIST, HOME) for k in ("vmat", "breast")]
    assert [a["status"] for a in answers] == ["registered", "registered"]
    vmat = ledger.app.get_course(answers[0]["course_id"])
    assert [(g.number, g.fractions_planned) for g in vmat.plan.fraction_groups] == [(1, 20), (2, 5)]
    assert [(b.number, b.meterset, b.beam_type, b.control_points) for b in vmat.plan.fraction_groups[0].beams] == [
        (1, Decimal("250.5"), "DYNAMIC", 91), (2, Decimal("248.1"), "DYNAMIC", 91)]
    assert vmat.plan.fraction_groups[1].beams[0].meterset == Decimal("300")
    breast = ledger.app.get_course(answers[1]["course_id"])
    assert breast.patient["name"] == "JANSSENS^MARC" and breast.fractions_planned() == 25


def test_bad_files_are_named_with_the_reason_and_do_not_stop_the_others(tmp_path):
    db = tmp_path / "l.sqlite3"
    good = write_plan(sample_plan("PAT-9", label="Good"), tmp_path / "good.dcm")
    vmat = write_plan(sample_plan("PAT-8", label="Arc", arc=True, control_points=120), tmp_path / "vmat.dcm")
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(vmat.read_bytes()[: len(vmat.read_bytes()) // 2])
    inconsistent_ds = sample_plan("PAT-7", label="Odd")
    inconsistent_ds.FractionGroupSequence[0].NumberOfBeams = 3
    inconsistent = write_plan(inconsistent_ds, tmp_path / "inconsistent.dcm")
    no_mu = sample_plan("PAT-6", label="NoMU")
    del no_mu.FractionGroupSequence[0].ReferencedBeamSequence[0].BeamMeterset
    no_mu = write_plan(no_mu, tmp_path / "nomu.dcm")
    text = tmp_path / "notes.txt"
    text.write_text("not dicom at all")
    dose = get_testdata_file("rtdose.dcm")
    proc = cli("import", "plan", str(truncated), str(inconsistent), str(good), str(no_mu), str(text), dose,
               "--centre", HOME, "--json", db=db)
    assert proc.returncode == 1
    answers = {a["file"].rsplit("/", 1)[-1]: a for a in json.loads(proc.stdout)}
    assert answers["good.dcm"]["status"] == "registered"
    assert "truncated" in answers["truncated.dcm"]["error"]
    assert "NumberOfBeams" in answers["inconsistent.dcm"]["error"]
    assert "BeamMeterset" in answers["nomu.dcm"]["error"]
    assert "SOPClassUID" in answers["notes.txt"]["error"]
    assert "not an RT Plan" in answers["rtdose.dcm"]["error"] and "RT Dose" in answers["rtdose.dcm"]["error"]
    for name in ("truncated.dcm", "inconsistent.dcm", "nomu.dcm", "notes.txt", "rtdose.dcm"):
        assert answers[name]["status"] == "error" and answers[name]["course_id"] is None
    courses = json.loads(cli("course", "list", "--json", db=db, check=True).stdout)
    assert [c["patient_id"] for c in courses] == ["PAT-9"]


def test_two_fraction_groups_with_one_number_are_refused_with_the_reason(ledger, tmp_path):
    """Issue 12: groups 1 and 1 of 35 fractions each were registered as 0/70, of which only 35 could
    be logged. The file is refused, by name and why; so is a group listing one beam twice."""
    twins = sample_plan("PAT-35", label="Twins", groups=[(35, ["120"]), (35, ["80"])])
    twins.FractionGroupSequence[1].FractionGroupNumber = 1
    twice = sample_plan("PAT-36", label="Twice", groups=[(20, ["120", "118"])])
    twice.FractionGroupSequence[0].ReferencedBeamSequence[1].ReferencedBeamNumber = 1
    good = write_plan(sample_plan("PAT-37", label="Good"), tmp_path / "good.dcm")
    answers = [import_plan_file(ledger.app, write_plan(ds, tmp_path / f"{name}.dcm"), PHYSICIST, HOME)
               for name, ds in (("twins", twins), ("twice", twice))]
    assert [(a["status"], a["course_id"]) for a in answers] == [("error", None), ("error", None)]
    assert "fraction group 1 appears twice in the plan" in answers[0]["error"]
    assert "beam 1 appears twice in fraction group 1" in answers[1]["error"]
    before = ledger.app.recorder.max_notification_id()
    for answer in answers:  # again: still refused, nothing written
        assert import_plan_file(ledger.app, tmp_path / answer["file"].rsplit("/", 1)[-1], PHYSICIST, HOME) == answer
    assert ledger.app.recorder.max_notification_id() == before
    assert import_plan_file(ledger.app, good, PHYSICIST, HOME)["status"] == "registered"  # the others go on


def test_whole_folder_shows_progress(tmp_path):
    folder = tmp_path / "backup"
    folder.mkdir()
    for k in range(5):
        write_plan(sample_plan(f"PAT-{k}", label=f"P{k}"), folder / f"p{k}.dcm")
    proc = cli("import", "plan", str(folder), "--centre", HOME, db=tmp_path / "l.sqlite3", check=True)
    assert proc.stdout.count("registered") == 5
    assert "5/5" in proc.stderr  # the progress bar's last state


def test_fallback_plan_of_the_same_patient_is_attached(ledger, tmp_path):
    files = plan_files(tmp_path)
    course = import_plan_file(ledger.app, files["vmat"], PHYSICIST, HOME)["course_id"]
    partner = Actor("physicist.p", PARTNER)
    first = import_plan_file(ledger.app, files["fallback"], partner, PARTNER, fallback_for=course)
    assert first == {"file": str(files["fallback"]), "course_id": course, "status": "registered", "error": None}
    again = import_plan_file(ledger.app, files["fallback"], partner, PARTNER, fallback_for=course)
    assert again["status"] == "unchanged"
    plans = ledger.app.get_course(course).plans
    assert [(p.label, p.centre, p.machine) for p in plans] == [
        ("Prostate VMAT", HOME, "LINAC-1"), ("VMAT TB2", PARTNER, "PARTNER-TB2")]


def test_fallback_plan_of_another_patient_is_refused(ledger, tmp_path):
    files = plan_files(tmp_path)
    course = import_plan_file(ledger.app, files["vmat"], PHYSICIST, HOME)["course_id"]
    before = ledger.app.get_course(course).version
    answer = import_plan_file(ledger.app, files["other"], Actor("p", PARTNER), PARTNER, fallback_for=course)
    assert answer["status"] == "error"
    assert "PAT-3" in answer["error"] and "PAT-1" in answer["error"] and "same patient" in answer["error"]
    assert ledger.app.get_course(course).version == before


def test_the_rule_is_the_domains(ledger, tmp_path):
    """The refusal comes from the course, whoever calls it."""
    files = plan_files(tmp_path)
    course = import_plan_file(ledger.app, files["vmat"], PHYSICIST, HOME)["course_id"]
    plan = ledger.app.get_course(course).plan
    with pytest.raises(errors.PatientMismatch):
        ledger.app.add_fallback_plan(course, {"uid": "1.2.3.4", "label": "x", "fraction_groups": [
            {"number": 1, "fractions_planned": 20}]}, PHYSICIST, patient_id="SOMEONE-ELSE")
    assert ledger.app.get_course(course).plans == [plan]
