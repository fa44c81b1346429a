"""`export dicom`: RT Beams Treatment Records, Treatment Summary Records, fallback plans;
checked with dciodvfy, deterministic, and read back as a fresh ledger's baseline."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydicom import dcmread

from adapters.dicom.baseline import Baseline
from adapters.dicom.export import export_all
from adapters.dicom.plans import import_plan_file
from adapters.runtime import Ledger
from tests.conftest import Clock, cli, require_tool
from tests.dicom_support import HOME, PARTNER, PHYSICIST, START, build_history, dciodvfy_errors
from ledger.service import Actor


def exported(ledger, out: Path, **kw) -> dict[str, list]:
    found: dict[str, list] = {"record": [], "summary": [], "plan": []}
    for item in export_all(ledger.app, ledger.fresh(), out, **kw):
        found[item.kind].append(item)
    return found


@pytest.fixture
def history(ledger, tmp_path):
    return build_history(ledger.app, tmp_path / "plans")


@pytest.mark.slow
def test_every_exported_kind_passes_dciodvfy(ledger, history, tmp_path):
    dciodvfy = require_tool("dciodvfy")
    # A course with nothing delivered yet has a summary too.
    import_plan_file(ledger.app, history["files"]["other"], PHYSICIST, HOME)
    files = exported(ledger, tmp_path / "out")
    assert {k: len(v) for k, v in files.items()} == {"record": 7, "summary": 3, "plan": 1}
    for items in files.values():
        for item in items:
            assert dciodvfy_errors(item.path, dciodvfy) == [], item.path


def test_beams_treatment_records_say_what_was_delivered(ledger, history, tmp_path):
    files = exported(ledger, tmp_path / "out", course_id=history["vmat"])
    records = sorted((dcmread(i.path) for i in files["record"]), key=lambda d: (d.ReferencedFractionGroupNumber,
                                                                                d.TreatmentSessionBeamSequence[0].CurrentFractionNumber, d.TreatmentTime))
    course = ledger.app.get_course(history["vmat"])
    prescription, fallback = course.plans
    # Fraction 3 was voided: it is not exported as delivered.
    assert [(d.ReferencedFractionGroupNumber, d.TreatmentSessionBeamSequence[0].CurrentFractionNumber) for d in records] == [
        (1, 1), (1, 2), (1, 2), (2, 1)]
    first, interrupted, continuation, boost = records
    for d in records:
        assert d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.4" and d.Modality == "RTRECORD"
        assert d.PatientID == "PAT-1" and str(d.PatientName) == "PEETERS^AN"
        assert d.StudyInstanceUID == prescription.source["study_uid"]
        assert d.TreatmentRecordContentOrigin == "USER" and d.PrimaryDosimeterUnit == "MU"
    assert first.TreatmentDate == "20261102" and first.TreatmentTime == "083000" and first.TimezoneOffsetFromUTC == "+0100"
    assert first.TreatmentMachineSequence[0].TreatmentMachineName == "LINAC-1"
    assert first.TreatmentMachineSequence[0].InstitutionName == HOME
    assert first.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == prescription.uid
    assert [str(n) for n in first.OperatorsName] == ["rtt.home.a", "rtt.home.b"]
    beam = first.TreatmentSessionBeamSequence[0]
    assert (beam.TreatmentVerificationStatus, beam.TreatmentTerminationStatus, beam.TreatmentDeliveryType) == (
        "VERIFIED", "NORMAL", "TREATMENT")
    assert (beam.SpecifiedPrimaryMeterset, beam.DeliveredPrimaryMeterset) == (Decimal("250.5"), Decimal("250.5"))
    assert beam.BeamType == "DYNAMIC" and beam.NumberOfControlPoints == 2
    cps = beam.ControlPointDeliverySequence
    assert [(c.ReferencedControlPointIndex, c.DeliveredMeterset) for c in cps] == [(0, 0), (90, Decimal("250.5"))]
    assert [(d.RTBeamLimitingDeviceType, d.NumberOfLeafJawPairs) for d in beam.BeamLimitingDeviceLeafPairsSequence] == [
        ("ASYMX", 1), ("ASYMY", 1), ("MLCX", 60)]
    # The partner treated on its own machine with its fallback plan; the beam stopped (machine fault).
    assert interrupted.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == fallback.uid
    assert interrupted.TreatmentMachineSequence[0].TreatmentMachineName == "PARTNER-TB2"
    assert interrupted.TreatmentMachineSequence[0].InstitutionName == PARTNER
    [stopped] = interrupted.TreatmentSessionBeamSequence
    assert (stopped.TreatmentTerminationStatus, stopped.DeliveredPrimaryMeterset, stopped.SpecifiedPrimaryMeterset) == (
        "MACHINE", Decimal("120.25"), Decimal("251.5"))
    assert stopped.ControlPointDeliverySequence[-1].ReferencedControlPointIndex == 28  # 60 * 120.25 / 251.5
    assert [b.TreatmentDeliveryType for b in continuation.TreatmentSessionBeamSequence] == ["CONTINUATION"] * 2
    assert [b.TreatmentVerificationStatus for b in continuation.TreatmentSessionBeamSequence] == ["VERIFIED"] * 2
    assert boost.TreatmentSessionBeamSequence[0].TreatmentVerificationStatus == "NOT_VERIFIED"
    assert str(boost.OperatorsName) == "rtt.home.a"


def test_summary_record_per_course(ledger, history, tmp_path):
    files = exported(ledger, tmp_path / "out", course_id=history["vmat"])
    [summary] = [dcmread(i.path) for i in files["summary"]]
    assert summary.SOPClassUID == "1.2.840.10008.5.1.4.1.1.481.7"
    assert summary.CurrentTreatmentStatus == "ON_TREATMENT"
    assert (summary.FirstTreatmentDate, summary.MostRecentTreatmentDate) == ("20261102", "20261105")
    groups = summary.FractionGroupSummarySequence
    assert [(g.ReferencedFractionGroupNumber, g.NumberOfFractionsPlanned, g.NumberOfFractionsDelivered) for g in groups] == [
        (1, 20, 2), (2, 5, 1)]
    assert [(s.ReferencedFractionNumber, s.TreatmentDate, s.TreatmentTime, s.TreatmentTerminationStatus)
            for s in groups[0].FractionStatusSummarySequence] == [(1, "20261102", "083000", "NORMAL"),
                                                                  (2, "20261103", "093000", "NORMAL")]
    ledger.app.complete_course(history["vmat"], "stopped early", PHYSICIST)
    again = exported(ledger, tmp_path / "out2", course_id=history["vmat"])
    completed = dcmread(again["summary"][0].path)
    assert completed.CurrentTreatmentStatus == "COMPLETED"
    assert completed.SOPInstanceUID != summary.SOPInstanceUID  # new content, new instance


def test_fallback_plan_is_returned_whole(ledger, history, tmp_path):
    [plan] = exported(ledger, tmp_path / "out")["plan"]
    original = dcmread(history["files"]["fallback"])
    returned = dcmread(plan.path)
    assert returned.SOPInstanceUID == original.SOPInstanceUID and returned.RTPlanLabel == "VMAT TB2"
    assert len(returned.BeamSequence[0].ControlPointSequence) == 61
    assert returned.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID


def test_same_log_same_bytes(ledger, history, tmp_path):
    a = {i.path.relative_to(tmp_path / "a"): i.path.read_bytes() for i in export_all(ledger.app, ledger.fresh(), tmp_path / "a")}
    ledger.read.rebuild(ledger.app)
    ledger.clock.now += timedelta(days=30)  # the wall clock moves on: nothing in the files may follow it
    b = {i.path.relative_to(tmp_path / "b"): i.path.read_bytes() for i in export_all(ledger.app, ledger.fresh(), tmp_path / "b")}
    assert a == b and len(a) == 10


def test_since_selects_by_recorded_time(ledger, history, tmp_path):
    cut = ledger.clock.now + timedelta(milliseconds=1)  # after everything recorded so far
    ledger.app.log_fraction(history["breast"], {"number": 4, "centre": HOME, "machine": "LINAC-1", "operator": "rtt.x",
                                                "delivered_at": START + timedelta(days=4)}, PHYSICIST)
    files = exported(ledger, tmp_path / "out", since=cut)
    assert [dcmread(i.path).TreatmentSessionBeamSequence[0].CurrentFractionNumber for i in files["record"]] == [4]
    assert [i.course_id for i in files["summary"]] == [history["breast"]]
    assert files["plan"] == []


def test_cli_export(ledger, tmp_path):
    db = tmp_path / "cli.sqlite3"
    with Ledger(str(db)) as other:
        build_history(other.app, tmp_path / "plans")
    out = tmp_path / "out"
    result = json.loads(cli("export", "dicom", "--out", str(out), "--json", db=db, check=True).stdout)
    assert result == {"out": str(out), "records": 7, "summaries": 2, "plans": 1}
    assert len(list(out.rglob("*.dcm"))) == 10


def history_of(ledger, course_id: str) -> list[tuple]:
    course = ledger.app.get_course(course_id)
    return sorted((r.group, r.number, r.centre, r.machine, r.plan_uid, r.delivered_at, r.delivery_type, r.operator,
             r.verified_by, [(b.number, b.specified_mu, b.delivered_mu, b.termination) for b in r.beams])
            for r in course.active_records())


def test_round_trip_through_a_fresh_ledger(ledger, history, tmp_path, monkeypatch):
    out = tmp_path / "out"
    files = exported(ledger, out)
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "fresh-read.sqlite3"))
    with Ledger(str(tmp_path / "fresh.sqlite3"), clock=Clock()) as fresh:
        # The home physicist registers the original plans, then the returned fallback plan.
        vmat = import_plan_file(fresh.app, history["files"]["vmat"], PHYSICIST, HOME)["course_id"]
        breast = import_plan_file(fresh.app, history["files"]["breast"], PHYSICIST, HOME)["course_id"]
        assert (vmat, breast) == (history["vmat"], history["breast"])
        [returned] = files["plan"]
        assert import_plan_file(fresh.app, returned.path, Actor("p", PARTNER), PARTNER, fallback_for=vmat)["error"] is None
        answers = list(Baseline(fresh, PHYSICIST, START.tzinfo).import_files([out]))
        assert [a["error"] for a in answers if a["status"] == "error"] == ["not an RT treatment record: it is a RT Plan"]
        for course_id in (vmat, breast):
            assert history_of(fresh, course_id) == history_of(ledger, course_id)
        assert {r.source for r in fresh.app.get_course(vmat).records} == {"baseline"}
        # Importing the same records again changes nothing.
        version = fresh.app.get_course(vmat).version
        again = list(Baseline(fresh, PHYSICIST, START.tzinfo).import_files([out]))
        assert {a["status"] for a in again} == {"unchanged", "error"}
        assert fresh.app.get_course(vmat).version == version
