"""Issue 13 point 9, "order and shape of imports": what a partner's OIS returns is read and
counted alike whatever order its files are imported in and however they are encoded.

a. a fraction known only from a treatment summary is replaced by its session record when that
   comes later (summaries first, sessions first, mixed, all at once: the same ledger);
b. files in any standard transfer syntax (deflated included) and with undefined-length
   sequences (dcmtk's `dcmconv`) are read, while files really cut short are still refused;
c. reconcile puts the missing session of an interrupted fraction (or its continuation) into
   the import set;
d. electron applicators and setup beams (0 MU) are carried from the RT Plan into the records.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pydicom
import pytest

from adapters.dicom.baseline import Baseline, session_facts, summary_facts
from adapters.dicom.export import encode, export_all, write
from adapters.dicom.plans import import_plan_file, read_dataset, read_plan
from adapters.dicom.records import CourseView, beams_record
from adapters.recovery import export_import_set, ledger_side, ois_side, run
from adapters.runtime import Ledger
from ledger import errors
from ledger.reconcile import is_clean, reconcile
from ledger.service import Actor
from ledger.summaries import LEGACY_SUMMARY_OPERATOR, is_summary_only
from tests.conftest import Clock, require_tool
from tests.dicom_support import HOME, PARTNER, PHYSICIST, START, dciodvfy_errors
from tools.dicom_samples import sample_plan, write_plan

TZ = START.tzinfo
PARTNER_RTT = Actor("rtt.partner.a", PARTNER)
ORDERS = ["summaries_first", "sessions_first", "mixed", "together"]
ELECTRON = {"meterset": "210.5", "radiation": "ELECTRON", "energy": "9", "applicator": ("A10", "ELECTRON_SQUARE")}
SETUP = {"meterset": None, "setup": True}  # a setup beam without BeamMeterset, as TPSs write them


def at(day: int, minutes: int = 0) -> datetime:
    return START + timedelta(days=day, minutes=minutes)


def log(app, course: str, number: int, day: int, minutes: int = 0, **extra) -> dict:
    return app.log_fraction(course, {"number": number, "centre": PARTNER, "machine": "PARTNER-TB2",
                                     "operator": "rtt.partner.a", "delivered_at": at(day, minutes), **extra},
                            PARTNER_RTT)


def register(app, plan: Path) -> str:
    course = import_plan_file(app, plan, PHYSICIST, HOME)["course_id"]
    app.assign_centre(course, PARTNER, PHYSICIST)
    return course


def dcmconv(source: Path, target: Path, *options: str) -> Path:
    """The file as dcmtk re-encodes it (`target` may be `source`)."""
    tool = require_tool("dcmconv")
    temporary = target.with_name(target.name + ".dcmconv")
    subprocess.run([tool, *options, str(source), str(temporary)], check=True, capture_output=True, timeout=60)
    temporary.replace(target)
    return target


def as_partner_writes_it(path: Path) -> None:
    """The partner's OIS writes no TimezoneOffsetFromUTC: the local zone of the date applies."""
    ds = pydicom.dcmread(path)
    del ds.TimezoneOffsetFromUTC
    ds.save_as(path, enforce_file_format=True)


def partner_ois(tmp: Path, monkeypatch, plan_groups: list | None = None) -> dict:
    """The partner's OIS after treating patient PAT-R: fraction 1 (double-checked), fraction 2
    interrupted by the machine on beam 1 and completed by a continuation, fraction 3; its RT
    Beams Treatment Records (one per session) and its RT Treatment Summary Record."""
    plan = write_plan(sample_plan("PAT-R", "ROOS^ELS", "Chest wall", groups=plan_groups or [(10, ["120.5", "80"])]),
                      tmp / "plan.dcm")
    with monkeypatch.context() as m:
        m.setenv("FRACTION_LEDGER_READ_DB", str(tmp / "ois-read.sqlite3"))
        ois = Ledger(str(tmp / "ois.sqlite3"), clock=Clock())
        try:
            app = ois.app
            course = register(app, plan)
            planned = app.get_course(course).plan.fraction_groups[0].beams
            log(app, course, 1, 0)
            app.verify_fraction(course, 1, "rtt.partner.b", PARTNER_RTT)
            log(app, course, 2, 1, beams=[{"number": 1, "delivered_mu": "60.25", "termination": "MACHINE"}])
            rest = [{"number": b.number, "delivered_mu": "60.25" if b.number == 1 else str(b.meterset)} for b in planned]
            log(app, course, 2, 1, minutes=40, delivery_type="CONTINUATION", beams=rest)
            log(app, course, 3, 2)
            out = tmp / "partner-ois"
            list(export_all(app, ois.fresh(), out, kinds=("record", "summary")))
            records = {r.record_id: r for r in app.get_course(course).records}
        finally:
            ois.close()
    folder = out / course
    files = {"summary": folder / "summary.dcm"}
    for path in sorted(folder.glob("record_*.dcm")):
        as_partner_writes_it(path)
        ds = pydicom.dcmread(path)
        number = int(ds.TreatmentSessionBeamSequence[0].CurrentFractionNumber)
        kind = str(ds.TreatmentSessionBeamSequence[0].TreatmentDeliveryType)
        files[f"f{number}" + ("c" if kind == "CONTINUATION" else "")] = path
    return {"plan": plan, "files": files, "records": records, "folder": folder}


def runs_for(order: str, files: dict) -> list[list[Path]]:
    sessions = [p for k, p in files.items() if k != "summary"]
    if order == "summaries_first":
        return [[files["summary"]], sessions]
    if order == "sessions_first":
        return [sessions, [files["summary"]]]
    if order == "mixed":  # the summary with one session record, the rest of the sessions later
        return [[files["summary"], files["f3"]], [files["f1"], files["f2"], files["f2c"]]]
    return [list(files.values())]


def import_runs(ledger, runs: list[list[Path]]) -> list[dict]:
    answers = []
    for paths in runs:
        answers += list(Baseline(ledger, PHYSICIST, TZ).import_files(paths))
    return answers


def delivered(course) -> list[tuple]:
    return [(r.number, r.centre, r.machine, r.delivery_type, r.delivered_at, r.source,
             [(b.number, b.delivered_mu, b.termination) for b in r.beams])
            for r in sorted(course.active_records(), key=lambda r: (r.number, r.delivered_at))]


def as_the_ois_has_them(records: dict) -> list[tuple]:
    return [(r.number, r.centre, r.machine, r.delivery_type, r.delivered_at, "baseline",
             [(b.number, b.delivered_mu, b.termination) for b in r.beams])
            for r in sorted(records.values(), key=lambda r: (r.number, r.delivered_at)) if not r.voided]


# ---- a. the richer source wins, whatever the order --------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_session_records_replace_what_a_summary_said_in_every_order(ledger, tmp_path, monkeypatch, order):
    ois = partner_ois(tmp_path, monkeypatch)
    course_id = register(ledger.app, ois["plan"])
    answers = import_runs(ledger, runs_for(order, ois["files"]))
    assert [a for a in answers if a["status"] == "error"] == []
    course = ledger.app.get_course(course_id)
    # Every session with its MU, machine and centre, as the partner's OIS recorded it; nothing
    # is left that only the summary said, and no fraction counts twice.
    assert delivered(course) == as_the_ois_has_them(ois["records"])
    assert course.fractions_delivered() == 3
    assert not any(is_summary_only(r) for r in course.active_records())
    assert next(r for r in course.active_records() if r.number == 1).verified_by == "rtt.partner.b"
    replaced = [r for r in course.records if r.voided]
    sop = {k: str(pydicom.dcmread(p).SOPInstanceUID) for k, p in ois["files"].items()}
    summary_first = {"summaries_first": {1, 2, 3}, "mixed": {1, 2}}.get(order, set())
    assert {r.number for r in replaced} == summary_first
    for r in replaced:
        assert r.source == "summary" and r.void_reason == f"replaced by its session record {sop[f'f{r.number}']}"
    # The restored OIS holding these same files: nothing missing, nothing in conflict.
    assert is_clean(run(ledger, [ois["folder"]], TZ))
    # Importing everything again changes nothing.
    again = import_runs(ledger, [list(ois["files"].values())])
    assert {a["status"] for a in again} == {"unchanged"} and delivered(ledger.app.get_course(course_id)) == delivered(course)


def test_a_summary_entry_stored_before_source_summary_existed_is_still_replaced(ledger, tmp_path, monkeypatch):
    """Old events: source "baseline" with the summary's operator name mean "known only from a summary"."""
    ois = partner_ois(tmp_path, monkeypatch)
    course_id = register(ledger.app, ois["plan"])
    plan_uid = ledger.app.get_course(course_id).plan.uid
    for number, day in ((1, 0), (3, 2)):
        ledger.app.log_fraction(course_id, {"number": number, "centre": HOME, "machine": "LINAC-1",
                                            "operator": LEGACY_SUMMARY_OPERATOR, "delivered_at": at(day),
                                            "plan_uid": plan_uid, "source": "baseline", "source_uid": f"old/1/{number}"},
                                PHYSICIST)
    _, sessions = ledger_side(ledger)
    assert [s.detailed for s in sessions] == [False, False]  # reconcile reads them as summary-only too
    assert ledger.app.get_course(course_id).known_only_from_summary(1, 1)
    answers = import_runs(ledger, [[ois["files"]["f1"], ois["files"]["f3"]]])
    assert [a["status"] for a in answers] == ["imported", "imported"]
    course = ledger.app.get_course(course_id)
    assert [(r.number, r.source, r.centre) for r in course.active_records()] == [(1, "baseline", PARTNER),
                                                                                 (3, "baseline", PARTNER)]


def test_a_live_log_of_a_fraction_a_summary_lists_is_still_a_second_delivery(ledger, tmp_path, monkeypatch):
    ois = partner_ois(tmp_path, monkeypatch)
    course_id = register(ledger.app, ois["plan"])
    import_runs(ledger, [[ois["files"]["summary"]]])
    with pytest.raises(errors.FractionAlreadyDelivered):
        ledger.app.log_fraction(course_id, {"number": 1, "centre": PARTNER, "machine": "PARTNER-TB2",
                                            "operator": "rtt.partner.a", "delivered_at": at(5)}, PARTNER_RTT)
    assert all(is_summary_only(r) for r in ledger.app.get_course(course_id).active_records())


# ---- b. every transfer syntax and sequence encoding ------------------------------------------

ENCODINGS = {
    "undefined-length sequences": ["-e"],
    "deflated": ["+td"],
    "deflated, undefined lengths": ["+td", "-e"],
    "big endian, undefined lengths": ["+tb", "-e"],
    "implicit VR, undefined lengths": ["+ti", "-e"],
    "data set only, implicit VR, undefined lengths": ["-F", "+ti", "-e"],
}


@pytest.mark.slow
def test_records_and_plans_in_every_encoding_read_as_written(tmp_path, monkeypatch):
    ois = partner_ois(tmp_path, monkeypatch, plan_groups=[(10, ["120.5", ELECTRON, SETUP])])
    originals = {**ois["files"], "plan": ois["plan"]}
    for name, options in ENCODINGS.items():
        for key, source in originals.items():
            converted = dcmconv(source, tmp_path / f"{key}-{'_'.join(options)}.dcm", *options)
            ds, whole = read_dataset(converted), read_dataset(source)
            if key == "plan":
                assert read_plan(ds) == read_plan(whole), (name, key)
            elif key == "summary":
                assert summary_facts(ds, TZ) == summary_facts(whole, TZ), (name, key)
            else:
                assert session_facts(ds, TZ) == session_facts(whole, TZ), (name, key)
    deflated = pydicom.dcmread(tmp_path / "summary-+td.dcm")
    assert deflated.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian


@pytest.mark.parametrize("options", [["-e"], ["+td"], ["+td", "-e"], ["+ti", "-e"]], ids="".join)
@pytest.mark.slow
def test_a_converted_record_cut_short_is_refused(tmp_path, monkeypatch, options):
    """The summary ends in an undefined-length sequence once `dcmconv -e` has written it: a cut
    anywhere inside it is refused; a deflated file cut anywhere is refused."""
    ois = partner_ois(tmp_path, monkeypatch)
    for key in ("summary", "f2c"):
        source = dcmconv(ois["files"][key], tmp_path / f"{key}.dcm", *options)
        content = source.read_bytes()
        whole = read_dataset(source)
        read, refused = [], 0
        for cut in range(len(content) - 400, len(content)):
            piece = tmp_path / "cut.dcm"
            piece.write_bytes(content[:cut])
            try:
                ds = read_dataset(piece)
            except ValueError as exc:
                assert "truncated" in str(exc) or "not a readable DICOM file" in str(exc)
                refused += 1
                continue
            # Cut exactly between two top-level elements: it reads as the whole file minus them.
            assert "+td" not in options and all(ds[t] == whole[t] for t in ds.keys()), cut
            read.append(cut)
        assert refused >= 390, (key, read, refused)
        if key == "summary" and "-e" in options and "+td" not in options:
            # Its last element is the undefined-length ReferencedRTPlanSequence: item, two UIDs,
            # item and sequence delimiters (140 bytes and more). No cut inside it is read.
            assert list(whole.keys())[-1] == pydicom.tag.Tag("ReferencedRTPlanSequence")
            assert max(read) < len(content) - 140


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.slow
def test_a_partner_folder_converted_by_dcmconv_imports_in_every_order(ledger, tmp_path, monkeypatch, order):
    ois = partner_ois(tmp_path, monkeypatch)
    shaped = {}
    for key, path in ois["files"].items():
        options = ["+td"] if key == "summary" else ["-e"] if key in ("f1", "f2c") else ["+ti", "-e"]
        shaped[key] = dcmconv(path, path, *options)
    course_id = register(ledger.app, ois["plan"])
    answers = import_runs(ledger, runs_for(order, shaped))
    assert [a["error"] for a in answers if a["status"] == "error"] == []
    assert delivered(ledger.app.get_course(course_id)) == as_the_ois_has_them(ois["records"])


# ---- c. reconcile: the missing session of a two-session fraction -----------------------------


@pytest.mark.parametrize("lacking", ["f2c", "f2"], ids=["continuation", "interrupted session"])
def test_reconcile_puts_the_missing_session_of_an_interrupted_fraction_in_the_import_set(ledger, tmp_path, lacking):
    plan = write_plan(sample_plan("PAT-R", "ROOS^ELS", "Chest wall", groups=[(10, ["120.5", "80"])]), tmp_path / "p.dcm")
    course_id = register(ledger.app, plan)
    log(ledger.app, course_id, 1, 0)
    log(ledger.app, course_id, 2, 1, beams=[{"number": 1, "delivered_mu": "60.25", "termination": "MACHINE"}])
    cont = log(ledger.app, course_id, 2, 1, minutes=40, delivery_type="CONTINUATION",
               beams=[{"number": 1, "delivered_mu": "60.25"}, {"number": 2, "delivered_mu": "80"}])
    log(ledger.app, course_id, 3, 2)
    ois = tmp_path / "ois"
    list(export_all(ledger.app, ledger.fresh(), ois, kinds=("record", "summary")))
    by_kind = {}
    for path in (ois / course_id).glob("record_g1_f002_*.dcm"):
        by_kind["f2c" if pydicom.dcmread(path).TreatmentSessionBeamSequence[0].TreatmentDeliveryType == "CONTINUATION"
                else "f2"] = path
    by_kind[lacking].unlink()
    missing_id = cont["record_id"] if lacking == "f2c" else next(
        r.record_id for r in ledger.app.get_course(course_id).records if r.number == 2 and r.delivery_type == "TREATMENT")

    result = run(ledger, [ois], TZ, restore_point=at(1, 20))
    assert result["conflicts"] == [] and result["unknown_to_ledger"] == []
    [item] = result["missing_in_ois"]
    assert (item["fraction_number"], item["refs"]) == (2, [missing_id])
    assert item["missing_sessions"] == (["CONTINUATION"] if lacking == "f2c" else ["TREATMENT"])
    assert item["after_restore_point"] is (lacking == "f2c")
    manifest = export_import_set(ledger, result, tmp_path / "set")
    assert [i["record_ids"] for i in manifest["items"]] == [[missing_id]]
    # The OIS imports the set: the fraction is whole again and the two sides agree.
    [record_file] = [f for f in manifest["files"] if "record_" in f]
    shutil.copy(tmp_path / "set" / record_file, ois / course_id / "imported.dcm")
    assert is_clean(run(ledger, [ois], TZ))


def test_an_ois_continuation_the_ledger_lacks_is_unknown_to_the_ledger(ledger, tmp_path):
    """The other way round: the OIS holds both sessions of fraction 1, the ledger only the first
    (the continuation was given on an emergency system and never logged)."""
    plan = write_plan(sample_plan("PAT-R", "ROOS^ELS", "Chest wall", groups=[(10, ["120.5", "80"])]), tmp_path / "p.dcm")
    course_id = register(ledger.app, plan)
    log(ledger.app, course_id, 1, 0, beams=[{"number": 1, "delivered_mu": "60.25", "termination": "MACHINE"}])
    cont = log(ledger.app, course_id, 1, 0, minutes=40, delivery_type="CONTINUATION",
               beams=[{"number": 1, "delivered_mu": "60.25"}, {"number": 2, "delivered_mu": "80"}])
    ois = tmp_path / "ois"
    list(export_all(ledger.app, ledger.fresh(), ois, kinds=("record",)))
    theirs, problems, _ = ois_side([ois], TZ)
    assert problems == [] and sorted(s.delivery_type for s in theirs) == ["CONTINUATION", "TREATMENT"]
    courses, ours = ledger_side(ledger)
    result = reconcile(courses, [s for s in ours if s.ref != cont["record_id"]], theirs)
    [item] = result["unknown_to_ledger"]
    assert item["unknown_sessions"] == ["CONTINUATION"] and item["mu"] == {"1": "60.25", "2": "80"}
    assert result["conflicts"] == [] and result["missing_in_ois"] == []


# ---- d. electron applicators and setup beams ------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.slow
def test_applicators_and_setup_beams_reach_the_records_and_import_in_every_order(ledger, tmp_path, monkeypatch, order):
    dciodvfy = require_tool("dciodvfy")
    ois = partner_ois(tmp_path, monkeypatch, plan_groups=[(10, ["120.5", ELECTRON, SETUP])])
    # The plan's beams as the ledger holds them: the setup beam at 0 MU, the electron beam's cone kept.
    _, plan = read_plan(read_dataset(ois["plan"]))
    beams = plan.fraction_groups[0].beams
    assert [(b.radiation_type, b.meterset, b.delivery_type) for b in beams] == [
        ("PHOTON", Decimal("120.5"), "TREATMENT"), ("ELECTRON", Decimal("210.5"), "TREATMENT"),
        ("PHOTON", Decimal(0), "SETUP")]
    for key, path in ois["files"].items():
        assert dciodvfy_errors(path, dciodvfy) == [], key
        if key == "summary":
            continue
        ds = pydicom.dcmread(path)
        items = {int(b.ReferencedBeamNumber): b for b in ds.TreatmentSessionBeamSequence}
        if 2 in items:
            [cone] = items[2].ApplicatorSequence
            assert (cone.ApplicatorID, cone.ApplicatorType) == ("A10", "ELECTRON_SQUARE")
        if 3 in items:
            setup = items[3]
            assert (setup.TreatmentDeliveryType, str(setup.DeliveredPrimaryMeterset),
                    setup.TreatmentTerminationStatus) == ("SETUP", "0", "NORMAL")
        assert "ApplicatorSequence" not in items.get(1, pydicom.Dataset())
    full = pydicom.dcmread(ois["files"]["f1"])
    assert sorted(int(b.ReferencedBeamNumber) for b in full.TreatmentSessionBeamSequence) == [1, 2, 3]
    # Brought back into a ledger (the home centre's), in every order: the setup beam counts at 0 MU.
    course_id = register(ledger.app, ois["plan"])
    answers = import_runs(ledger, runs_for(order, ois["files"]))
    assert [a["error"] for a in answers if a["status"] == "error"] == []
    course = ledger.app.get_course(course_id)
    assert delivered(course) == as_the_ois_has_them(ois["records"])
    assert all(course.is_complete_fraction(1, n) for n in (1, 2, 3))
    first = next(r for r in course.active_records() if r.number == 1)
    assert [(b.number, b.delivered_mu, b.termination) for b in first.beams][2] == (3, Decimal(0), "NORMAL")
    # Exported again from this ledger, the records still name the cone and the setup beam.
    again = beams_record(CourseView.of(course), first)
    write(tmp_path / "again.dcm", encode(again))
    assert dciodvfy_errors(tmp_path / "again.dcm", dciodvfy) == []
    assert again.TreatmentSessionBeamSequence[1].ApplicatorSequence[0].ApplicatorID == "A10"
    assert again.TreatmentSessionBeamSequence[2].TreatmentDeliveryType == "SETUP"


def test_a_setup_beam_item_without_metersets_reads_as_0_mu(tmp_path, monkeypatch):
    """Some systems leave a setup beam's delivered meterset empty (Type 2)."""
    ois = partner_ois(tmp_path, monkeypatch, plan_groups=[(10, ["120.5", SETUP])])
    ds = pydicom.dcmread(ois["files"]["f3"])
    setup = ds.TreatmentSessionBeamSequence[1]
    del setup.DeliveredPrimaryMeterset
    for point in setup.ControlPointDeliverySequence:
        point.DeliveredMeterset = None
    facts = session_facts(ds, TZ)
    assert facts["beams"][1] == {"number": 2, "delivered_mu": Decimal(0), "termination": "NORMAL",
                                 "specified_mu": Decimal(0)}
