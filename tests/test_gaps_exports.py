"""What leaves the ledger reflects the prescription in force: the RT Treatment Summary Record,
the HL7 summary PDF, and the bundles partners exchange (so that a partner counts against the
amended prescription too)."""

from __future__ import annotations

from datetime import timedelta
from io import BytesIO

import pytest
from pydicom import dcmread
from pypdf import PdfReader

from adapters.bundle import export_bundle, read_bundle
from adapters.dicom.export import export_all
from adapters.hl7.pdf import treatment_summary
from adapters.keys import generate_centre_key
from adapters.runtime import Ledger
from ledger import errors
from ledger.service import Actor
from tests.conftest import Clock, require_tool
from tests.dicom_support import dciodvfy_errors
from tests.test_core_rules import DAY1, HOME, PARTNER, PHYSICIST, log, plan

ONC_A, ONC_B = Actor("onc.a", HOME), Actor("onc.b", HOME)
PATIENT = {"id": "P-AMEND", "name": "DUPONT^MARIE", "birth_date": "1958-04-01", "sex": "F"}


def register(ledger) -> str:
    return ledger.app.register_course(
        {"patient": PATIENT, "home_centre": HOME, "plan": plan(fractions=5), "assigned_centres": [PARTNER],
         "schedule": {"start": DAY1.date().isoformat()}, "site": "cervix"}, PHYSICIST)["id"]


def amended(ledger, course: str, by: Actor = ONC_A, signer: Actor = ONC_B) -> str:
    a = ledger.app.gaps.amend_prescription(course, {"kind": "extra_fractions", "fractions": 1,
                                               "reason": "fraction lost in the outage"}, by)["amendment"]["id"]
    ledger.app.gaps.countersign_amendment(course, a, signer)
    return a


def summaries(ledger, out) -> list:
    return [dcmread(i.path) for i in export_all(ledger.app, ledger.fresh(), out, kinds=("summary",))]


def test_the_treatment_summary_record_counts_the_amended_prescription(ledger, tmp_path):
    course = register(ledger)
    for n in range(1, 4):
        log(ledger, course, n, HOME)
    [before] = summaries(ledger, tmp_path / "a")
    assert before.FractionGroupSummarySequence[0].NumberOfFractionsPlanned == 5
    ledger.app.gaps.amend_prescription(course, {"kind": "extra_fractions", "fractions": 1, "reason": "x"}, ONC_A)
    [pending] = summaries(ledger, tmp_path / "b")
    assert pending.SOPInstanceUID == before.SOPInstanceUID, "an amendment not countersigned changes nothing"
    ledger.app.gaps.countersign_amendment(course, ledger.app.get_course(course).amendments[0].id, ONC_B)
    [after] = summaries(ledger, tmp_path / "c")
    assert after.FractionGroupSummarySequence[0].NumberOfFractionsPlanned == 6
    assert after.SOPInstanceUID != before.SOPInstanceUID  # new content, new instance
    [again] = summaries(ledger, tmp_path / "d")
    assert again.SOPInstanceUID == after.SOPInstanceUID, "deterministic"


@pytest.mark.slow
def test_an_amended_summary_record_passes_dciodvfy(ledger, tmp_path):
    dciodvfy = require_tool("dciodvfy")
    course = register(ledger)
    log(ledger, course, 1, HOME)
    amended(ledger, course)
    for item in export_all(ledger.app, ledger.fresh(), tmp_path / "out"):
        assert dciodvfy_errors(item.path, dciodvfy) == [], item.path


def test_the_hl7_summary_pdf_shows_the_original_and_every_amendment(ledger):
    course = register(ledger)
    log(ledger, course, 1, HOME)
    amended(ledger, course)
    ledger.app.gaps.amend_prescription(course, {"kind": "twice_daily", "day": (DAY1 + timedelta(days=7)).date().isoformat(),
                                           "reason": "compensation day"}, ONC_A)
    text = "\n".join(p.extract_text() for p in PdfReader(BytesIO(
        treatment_summary(ledger.fresh().course(course), DAY1 + timedelta(days=30)))).pages)
    assert "6 fractions planned (amended; originally 5)" in text
    assert "Prescription amendments" in text and "group 1: 5 -> 6 fractions" in text
    assert "fraction lost in the outage" in text and "onc.a" in text and "onc.b" in text
    assert "not countersigned: not in force" in text


@pytest.fixture
def partner(tmp_path, monkeypatch):
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "partner-read.sqlite3"))
    opened = Ledger(str(tmp_path / "partner.sqlite3"), clock=Clock(DAY1 + timedelta(days=60)))
    opened.clock = opened.app.clock
    yield opened
    opened.close()


def test_a_bundle_carries_the_amendment_so_the_partner_counts_against_the_amended_prescription(ledger, partner, tmp_path):
    public, _ = generate_centre_key(tmp_path / "home.ed25519")
    ledger.app.trust.add_centre(HOME, public, Actor("admin", HOME))
    partner.app.trust.add_centre(HOME, public, Actor("admin", PARTNER))
    course = register(ledger)
    for n in range(1, 6):
        log(ledger, course, n, HOME)
    amendment = amended(ledger, course, signer=PHYSICIST)
    data = export_bundle(ledger.app, HOME, tmp_path / "home.ed25519")[0]
    bundle = read_bundle(partner.app, data)
    assert {e.__class__.__name__ for e in bundle.events} >= {"Amended", "Countersigned", "ScheduleGiven"}
    summary = partner.app.trust.import_bundle(bundle, Actor("physicist.partner", PARTNER))
    assert summary["courses_registered"] == 1
    there = partner.app.get_course(course)
    assert there.fractions_planned() == 6 and there.amendments[0].id == amendment
    assert (there.amendments[0].by, there.amendments[0].countersigned_by) == ("onc.a", PHYSICIST.user)
    assert there.site == "cervix" and there.schedule_in("Europe/Brussels").start == DAY1.date()
    assert log(partner, course, 6, PARTNER)["number"] == 6
    with pytest.raises(errors.FractionOutOfRange):
        log(partner, course, 7, PARTNER)
    again = partner.app.trust.import_bundle(read_bundle(partner.app, data), Actor("physicist.partner", PARTNER))
    assert again["applied"] == 0, "importing twice changes nothing"
    assert partner.fresh().course(course)["fractions_planned"] == 6


# ---- from the RT Plan: dose per fraction and the fraction pattern ---------------------------------


def test_an_rt_plan_gives_the_dose_per_fraction_and_its_fraction_pattern_the_schedule(ledger, tmp_path):
    from decimal import Decimal

    from pydicom import dcmread as read
    from pydicom.data import get_testdata_file

    from adapters.dicom.plans import import_plan_file

    ds = read(get_testdata_file("rtplan.dcm"))
    ds.FractionGroupSequence[0].FractionPattern = "1010100"  # Monday, Wednesday, Friday
    ds.FractionGroupSequence[0].NumberOfFractionPatternDigitsPerDay = 1
    ds.FractionGroupSequence[0].RepeatFractionCycleLength = 1
    ds.save_as(tmp_path / "plan.dcm")
    answer = import_plan_file(ledger.app, tmp_path / "plan.dcm", PHYSICIST, HOME)
    assert answer["status"] == "registered", answer
    course = ledger.app.get_course(answer["course_id"])
    # TargetPrescriptionDose 30.826203 Gy over 30 fractions (the beam dose says 1.0275401 too)
    assert course.plan.fraction_groups[0].dose_gy == Decimal("1.027540")
    assert course.schedule_in("Europe/Brussels").weekdays == [1, 3, 5]
    prescribed, delivered = course.dose()
    assert (prescribed, delivered) == (Decimal("30.826200"), Decimal(0))


def test_without_a_target_prescription_the_beam_doses_give_the_dose_per_fraction(tmp_path):
    from decimal import Decimal

    from pydicom import dcmread as read
    from pydicom.data import get_testdata_file

    from adapters.dicom.plans import dose_per_fraction, read_plan

    ds = read(get_testdata_file("rtplan.dcm"))
    del ds.DoseReferenceSequence
    assert read_plan(ds)[1].fraction_groups[0].dose_gy == Decimal("1.027540")
    del ds.FractionGroupSequence[0].ReferencedBeamSequence[0].BeamDose
    assert dose_per_fraction(ds, ds.FractionGroupSequence[0], 30, 1) is None
