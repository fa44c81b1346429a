"""Issue 12: the safety rules hold on every path. Each story is told at the service level and
runs on the embedded SQLite store (the `ledger` fixture); the entry points (API, CLI,
DICOM import, bundles) are checked to reach the same rule.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from litestar.testing import TestClient
from pydicom import dcmread
from pydicom.uid import generate_uid

from adapters.dicom.baseline import Baseline
from adapters.dicom.export import export_all
from adapters.http import create_app
from ledger import errors
from ledger.incident import NEAR_MISS_SEVERITY
from ledger.service import Actor
from tests.conftest import CLOCK_START, cli, require_tool
from tests.dicom_support import dciodvfy_errors
from tests.http_support import auth, seed_accounts
from tests.test_core_rules import DAY1, HOME, PARTNER, PHYSICIST, event_count, log, register
from schemas.course import BeamDelivery

ROOT = Path(__file__).resolve().parent.parent


def incidents(ledger, category=None) -> list[dict]:
    return ledger.fresh().incidents(category=category)


def beams(*pairs) -> list[dict]:
    """(number, MU) or (number, MU, termination) as a session's beams."""
    return [{"number": p[0], "delivered_mu": p[1], **({"termination": p[2]} if len(p) > 2 else {})} for p in pairs]


# ---- 1. a continuation gives only what the fraction still lacks ----------------------------------


def test_a_continuation_gives_only_what_the_interrupted_beam_still_lacks(ledger, tmp_path):
    """Beam 2 (115.5 MU) stops at 40.2 MU: a continuation may give the 75.3 MU it lacks, on that
    beam only; repeating beam 1 or giving beam 2 a full meterset again is refused, and once the
    fraction is whole nothing more continues it."""
    course = register(ledger, groups=[{"number": 1, "fractions_planned": 5, "beams": [
        {"number": 1, "meterset": "120.0", "control_points": 11}, {"number": 2, "meterset": "115.5", "control_points": 11}]}])
    log(ledger, course, 1, PARTNER, beams=beams((1, "120.0"), (2, "40.2", "OPERATOR")))
    before = event_count(ledger)

    with pytest.raises(errors.BeamAlreadyComplete) as again:
        log(ledger, course, 1, PARTNER, day=0, delivery_type="CONTINUATION", beams=beams((1, "100"), (2, "50")))
    assert again.value.conflict["beam"] == 1 and "Do not treat this beam again" in again.value.message
    with pytest.raises(errors.MetersetBeyondTolerance) as beyond:
        log(ledger, course, 1, PARTNER, day=0, delivery_type="CONTINUATION", beams=beams((2, "115.5")))
    [deviation] = beyond.value.conflict["deviations"]
    assert (deviation["beam"], deviation["kind"], deviation["expected"]) == (2, "over", Decimal("75.3"))
    # beam 1's refusal is a near-miss (a beam given twice); the MU to check is not: nothing else written
    assert event_count(ledger) == before + 1
    assert [i["attempt"]["refusal"] for i in incidents(ledger)] == ["beam_already_complete"]

    cont = log(ledger, course, 1, PARTNER, day=0, delivery_type="CONTINUATION", beams=beams((2, "75.3")))
    assert cont.beams == [BeamDelivery(number=2, specified_mu=Decimal("115.5"), delivered_mu=Decimal("75.3"),
                                        termination="NORMAL", start_mu=Decimal("40.2"))]
    for extra in (beams((2, "1")), beams((1, "100"), (2, "50"))):
        with pytest.raises(errors.FractionAlreadyDelivered):
            log(ledger, course, 1, PARTNER, day=0, delivery_type="CONTINUATION", beams=extra)
    fraction = ledger.app.get_course(course).active_records(1, 1)
    given = {n: sum(b.delivered_mu for s in fraction for b in s.beams if b.number == n) for n in (1, 2)}
    assert given == {1: Decimal("120.0"), 2: Decimal("115.5")}

    # The continuation's treatment record: the plan's meterset, started where the first session stopped.
    out = tmp_path / "records"
    exported = [e for e in export_all(ledger.app, ledger.fresh(), out, kinds=("record",))]
    [second] = [dcmread(e.path) for e in exported
                if dcmread(e.path).TreatmentSessionBeamSequence[0].TreatmentDeliveryType == "CONTINUATION"]
    beam = second.TreatmentSessionBeamSequence[0]
    assert (Decimal(str(beam.SpecifiedPrimaryMeterset)), Decimal(str(beam.DeliveredPrimaryMeterset))) == (
        Decimal("115.5"), Decimal("75.3"))
    points = beam.ControlPointDeliverySequence
    # 40.2 of 115.5 MU: the interruption came after control point 3 of 0..10; it ends at 10
    assert [int(p.ReferencedControlPointIndex) for p in points] == [3, 10]
    assert [Decimal(str(p.DeliveredMeterset)) for p in points] == [Decimal(0), Decimal("75.3")]


# ---- 2. MU far from the plan: refused unless a person confirms, then a dose deviation -----------


@pytest.mark.parametrize("delivered", ["1200", "99999", "123.0"])
def test_a_meterset_beyond_tolerance_is_refused_and_writes_nothing(ledger, delivered):
    """Beam 1 is 120 MU: 1200 (a typo), 99999 and 123 (2.5% over) are all beyond 2% / 1 MU."""
    course = register(ledger)
    before = event_count(ledger)
    with pytest.raises(errors.MetersetBeyondTolerance) as refused:
        log(ledger, course, 1, beams=beams((1, delivered), (2, "115.5")))
    assert "confirm it with a reason" in refused.value.message
    assert event_count(ledger) == before, "a meterset to confirm is not a near-miss: nothing written"


def test_within_tolerance_is_accepted_without_a_deviation(ledger):
    course = register(ledger)
    record = log(ledger, course, 1, beams=beams((1, "122.4"), (2, "114.5")))  # +2% and -1 MU
    assert record["deviations"] == [] and not incidents(ledger)


def test_a_confirmed_deviation_is_recorded_with_its_reason_and_an_incident(ledger):
    course = register(ledger)
    record = log(ledger, course, 1, beams=beams((1, "150"), (2, "115.5")),
                 deviation_reason="linac interlock reset, extra MU confirmed by physicist on the console")
    assert [(d["beam"], d["kind"], d["expected"], d["delivered"]) for d in record["deviations"]] == [
        (1, "over", Decimal("120.0"), Decimal("150"))]
    assert record["deviation_reason"].startswith("linac interlock")
    [incident] = incidents(ledger, category="dose-deviation")
    assert (incident["severity"], incident["fraction"], incident["centre"]) == ("high", 1, HOME)
    assert "150 MU delivered where 120.0 MU were due" in incident["description"]


def test_zero_mu_on_a_beam_that_ended_normally_is_refused_naming_the_beam(ledger):
    course = register(ledger)
    with pytest.raises(errors.InvalidCommand) as refused:
        log(ledger, course, 1, beams=beams((1, "120.0"), (2, "0")))
    assert refused.value.field == "beams[1].delivered_mu" and "ended NORMAL" in refused.value.reason
    with pytest.raises(errors.InvalidCommand):  # a reason does not make it true
        log(ledger, course, 1, beams=beams((1, "120.0"), (2, "0")), deviation_reason="sure")
    # an interrupted beam at 0 MU is a fact, and a normal end well short of the plan needs a reason
    log(ledger, course, 1, beams=beams((1, "120.0"), (2, "0", "MACHINE")))
    with pytest.raises(errors.MetersetBeyondTolerance):
        log(ledger, course, 2, beams=beams((1, "60"), (2, "115.5")))


def test_the_api_and_the_cli_reach_the_meterset_rule(ledger, tmp_path):
    seed_accounts(ledger.app)
    course = register(ledger, patient_id="P-API")
    ledger.app.assign_centre(course, "PARTNER", PHYSICIST)
    body = {"number": 1, "machine": "TB2", "delivered_at": DAY1.isoformat(),
            "beams": [{"number": 1, "delivered_mu": "1200"}, {"number": 2, "delivered_mu": "115.5"}]}
    with TestClient(create_app(ledger)) as api:
        r = api.post(f"/api/courses/{course}/fractions", json=body, headers=auth("rtt1.partner"))
        assert r.status_code == 409 and r.json()["error"] == "meterset_beyond_tolerance", r.text
        r = api.post(f"/api/courses/{course}/fractions", json={**body, "deviation_reason": "confirmed on console"},
                     headers=auth("rtt1.partner"))
        assert r.status_code == 201 and r.json()["deviations"][0]["beam"] == 1, r.text

    db = str(tmp_path / "cli.sqlite3")
    env = {"FRACTION_LEDGER_READ_DB": str(tmp_path / "cli-read.sqlite3")}
    cid = cli("course", "register", "--patient-id", "P-CLI", "--patient-name", "DOE^JO", "--plan-uid", "1.2.3.12",
              "--plan-label", "Lung", "--fractions", "3", "--home-centre", HOME, "--beam", "1=100", "--json",
              db=db, env=env, check=True).stdout
    cid = re.search(r'"id":"([^"]+)"', cid).group(1)
    args = ("fraction", "log", cid, "--number", "1", "--centre", HOME, "--machine", "L1", "--operator", "rtt",
            "--at", DAY1.isoformat(), "--beam", "1=250")
    refused = cli(*args, db=db, env=env)
    assert refused.returncode == 1 and "beam 1: 250 MU delivered where 100 MU were due" in refused.stderr
    assert cli(*args, "--deviation-reason", "confirmed", db=db, env=env).returncode == 0


def test_a_record_far_from_its_plan_is_refused_at_import_unless_confirmed(ledger, tmp_path):
    """A baseline record with 348 MU on a 120 MU beam: the file is refused by name; imported
    again with the physicist's reason, it is a recorded dose deviation."""
    from adapters.dicom.export import encode
    from adapters.dicom.records import CourseView, beams_record

    source_course = register(ledger, patient_id="P-IMPORT")
    # the OIS's record, as the ledger itself would write it, with the MU a tester changed
    log(ledger, source_course, 1, beams=beams((1, "120.0"), (2, "115.5")))
    ds = beams_record(CourseView.of(ledger.app.get_course(source_course)), ledger.app.get_course(source_course).records[0])
    ds.TreatmentSessionBeamSequence[0].DeliveredPrimaryMeterset = "348"
    ds.TreatmentSessionBeamSequence[0].ControlPointDeliverySequence[-1].DeliveredMeterset = "348"
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["test", "record-348"])
    for item in ds.TreatmentSessionBeamSequence:
        item.CurrentFractionNumber = 2
    path = tmp_path / "record.dcm"
    path.write_bytes(encode(ds))
    [answer] = list(Baseline(ledger, PHYSICIST, timezone.utc).import_files([path]))
    assert answer["status"] == "error" and "348 MU delivered where 120.0 MU were due" in answer["error"]
    assert not incidents(ledger)
    [answer] = list(Baseline(ledger, PHYSICIST, timezone.utc, deviation_reason="checked on the linac log")
                    .import_files([path]))
    assert answer["status"] == "imported"
    assert [i["category"] for i in incidents(ledger)] == ["dose-deviation"]


# ---- 3. no beams, no fractions ---------------------------------------------------------------


def test_a_session_without_beams_and_a_plan_without_beams_are_refused(ledger):
    course = register(ledger, fractions=3)
    for _ in range(3):
        with pytest.raises(errors.InvalidCommand) as refused:
            log(ledger, course, 1, beams=[])
        assert refused.value.field == "beams"
    assert ledger.app.get_course(course).fractions_delivered() == 0
    with pytest.raises(errors.InvalidCommand) as no_beams:
        register(ledger, patient_id="P-NOBEAMS", beams=())
    assert no_beams.value.field == "plan.fraction_groups[0].beams"
    with pytest.raises(errors.InvalidCommand):
        ledger.app.add_fallback_plan(course, {"uid": "1.2.826.0.1.3680043.10.77", "label": "re-plan", "centre": PARTNER,
                                              "fraction_groups": [{"number": 1, "fractions_planned": 3}]},
                                     Actor("physicist.partner", PARTNER))


def test_a_course_stored_without_beams_takes_no_fraction(ledger):
    """A course registered before beams were required (as in an older log) cannot take fractions."""
    from ledger.course import Course

    legacy = Course(patient={"id": "P-OLD", "name": "OLD^LOG"}, home_centre=HOME,
                    plan={"uid": "1.2.826.0.1.3680043.10.66", "label": "count only",
                          "fraction_groups": [{"number": 1, "fractions_planned": 3, "beams": []}]},
                    triage=None, assigned_centres=[], meta=ledger.app.uow.meta(PHYSICIST, None))
    ledger.app.save(legacy)
    with pytest.raises(errors.PlanHasNoBeams):
        log(ledger, str(legacy.id), 1)


# ---- 4. impossible dates ---------------------------------------------------------------------


@pytest.mark.parametrize("at", [
    datetime(9999, 12, 31, 23, 0, tzinfo=timezone.utc),
    datetime(2030, 1, 7, 9, 0, tzinfo=timezone.utc),
    CLOCK_START + timedelta(hours=1),  # the next hour is still the future
    datetime(1, 1, 1, 9, 0, tzinfo=timezone(timedelta(hours=1))),
    datetime(1900, 1, 1, 9, 0, tzinfo=timezone.utc),
    datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=23, minutes=59))),
    datetime(2026, 11, 2, 9, 0, tzinfo=timezone(-timedelta(hours=23, minutes=59))),
])
def test_a_fraction_at_an_impossible_time_is_refused_naming_the_field(ledger, at):
    course = register(ledger)
    before = event_count(ledger)
    with pytest.raises(errors.InvalidCommand) as refused:
        log(ledger, course, 1, delivered_at=at)
    assert refused.value.field == "delivered_at"
    assert event_count(ledger) == before


def test_a_fraction_a_few_minutes_ahead_of_the_ledgers_clock_is_accepted(ledger):
    """The linac's clock and ours differ by minutes: that is not the future."""
    course = register(ledger)
    log(ledger, course, 1, delivered_at=ledger.clock.now + timedelta(minutes=5))


def test_the_api_refuses_an_impossible_date_and_exports_stay_whole(ledger, tmp_path):
    seed_accounts(ledger.app)
    course = register(ledger, patient_id="P-DATE")
    with TestClient(create_app(ledger)) as api:
        for at in ("0001-01-01T09:00:00+01:00", "9999-01-01T09:00:00+00:00", "2026-11-02T09:00:00+23:59"):
            r = api.post(f"/api/courses/{course}/fractions", headers=auth("rtt1.partner"),
                         json={"number": 1, "machine": "TB2", "delivered_at": at})
            assert r.status_code == 400 and r.json()["fields"][0]["field"] == "delivered_at", r.text
        assert api.get("/api/exports/dicom", headers=auth("physicist1.home")).status_code == 200


def test_a_bundle_with_an_impossible_date_is_refused_whole(ledger, tmp_path, monkeypatch):
    from adapters.bundle import export_bundle, read_bundle
    from adapters.keys import generate_centre_key
    from adapters.runtime import Ledger
    from tests.conftest import Clock

    course = register(ledger, patient_id="P-BUNDLE")
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "partner-read.sqlite3"))
    # The partner's ledger runs on a clock a year ahead of ours: its "yesterday" is our future.
    with Ledger(str(tmp_path / "partner.sqlite3"), clock=Clock(CLOCK_START + timedelta(days=365))) as partner:
        public, _ = generate_centre_key(tmp_path / "partner.ed25519")
        partner.app.trust.add_centre(PARTNER, public, Actor("admin", PARTNER))
        assert register(partner, patient_id="P-BUNDLE") == course
        log(partner, course, 1, PARTNER, delivered_at=CLOCK_START + timedelta(days=300))
        data = export_bundle(partner.app, PARTNER, tmp_path / "partner.ed25519", None)[0]
    ledger.app.trust.add_centre(PARTNER, public, Actor("admin", HOME))
    before = event_count(ledger)
    with pytest.raises(errors.BundleRefused) as refused:
        ledger.app.trust.import_bundle(read_bundle(ledger.app, data), PHYSICIST)
    assert "delivered_at" in refused.value.message and "future" in refused.value.message
    assert event_count(ledger) == before


# ---- 6. a near-miss is a live attempt, registered once ------------------------------------------


def test_a_clean_baseline_import_registers_no_near_miss_however_often_it_runs(ledger, tmp_path):
    """3 session records and their summary: the summary's fractions are covered, a query."""
    from adapters.dicom.plans import import_plan_file
    from tests import dicom_support
    from tests.test_dicom_baseline import home_ois_export

    history, out = home_ois_export(tmp_path)
    breast = import_plan_file(ledger.app, history["files"]["breast"], dicom_support.PHYSICIST,
                              dicom_support.HOME)["course_id"]
    for _ in range(2):
        answers = list(Baseline(ledger, dicom_support.PHYSICIST, timezone.utc).import_files([out / breast]))
        assert all(a["status"] in ("imported", "unchanged") for a in answers), answers
    summary = [a for a in answers if a.get("kind") == "summary"]
    assert summary and not incidents(ledger), "an import's coverage decision is not a near-miss"


def test_a_live_refusal_is_one_near_miss_filed_under_the_person_acting(ledger):
    course = register(ledger)
    log(ledger, course, 1)
    for _ in range(2):  # the same request retried is the same attempt
        with pytest.raises(errors.FractionAlreadyDelivered):
            ledger.app.log_fraction(course, {"number": 1, "centre": PARTNER, "machine": "TB2", "operator": "rtt.named",
                                             "delivered_at": DAY1 + timedelta(days=1)},
                                    Actor("rtt.partner.b", PARTNER), request_id="attempt-1")
    [near] = incidents(ledger)
    assert (near["registered_by"], near["severity"], near["attempt"]["operator"]) == ("rtt.partner.b", "high", "rtt.named")
    # a refused baseline record is an answer to the physicist, never a near-miss
    with pytest.raises(errors.FractionAlreadyDelivered):
        log(ledger, course, 1, source="baseline", source_uid="1.2.3.4.5")
    assert len(incidents(ledger)) == 1


# ---- 7. the rule catalogue ---------------------------------------------------------------------


def rule_classes() -> set[str]:
    return {name for name, obj in vars(errors).items()
            if isinstance(obj, type) and issubclass(obj, errors.RuleViolation) and obj is not errors.RuleViolation}


def test_the_readme_rule_table_lists_every_rule_and_nothing_else():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| rule | refusal", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([A-Z][a-z][A-Za-z]+)`", table))
    assert named == rule_classes()
    assert set(NEAR_MISS_SEVERITY) == {getattr(errors, n).code for n in rule_classes()} - {"meterset_beyond_tolerance"}


def test_a_self_verification_is_refused_and_registered_as_a_low_near_miss(ledger):
    course = register(ledger)
    log(ledger, course, 1, operator="rtt.anna")
    with pytest.raises(errors.VerifierIsOperator):
        ledger.app.verify_fraction(course, 1, "rtt.anna", Actor("rtt.anna", HOME))
    [near] = incidents(ledger)
    assert (near["category"], near["severity"], near["attempt"]["refusal"]) == ("near-miss", "low", "verifier_is_operator")


@pytest.mark.slow
def test_dicom_records_of_a_continuation_pass_dciodvfy(ledger, tmp_path):
    dciodvfy = require_tool("dciodvfy")
    course = register(ledger, fractions=5)
    log(ledger, course, 1, PARTNER, beams=beams((1, "120.0"), (2, "40.2", "MACHINE")))
    log(ledger, course, 1, PARTNER, day=0, delivery_type="CONTINUATION", beams=beams((2, "75.3")))
    for exported in export_all(ledger.app, ledger.fresh(), tmp_path / "out", kinds=("record",)):
        assert dciodvfy_errors(exported.path, dciodvfy) == [], exported.path


def test_the_log_page_asks_for_the_deviation_reason_in_the_users_language(ledger):
    """1124 MU typed for a 112.4 MU beam: the French page refuses it without "do not treat", asks
    for the reason; given, the fraction is recorded with its deviation."""
    from tests.http_support import seed_course
    from tests.test_void_rules import signed_in

    seed_accounts(ledger.app)
    cid = seed_course(ledger.app)
    form = {"number": "1", "group": "1", "machine": "TB2", "delivered_at": "2026-11-23T09:00",
            "beam_1_mu": "1124", "beam_1_termination": "NORMAL", "beam_2_mu": "109.8", "beam_2_termination": "NORMAL"}
    with TestClient(create_app(ledger)) as client:
        client.cookies.set("lang", "fr")
        csrf = signed_in(client, "rtt1.partner")
        refused = client.post(f"/courses/{cid}/log", data={**form, "_csrf_token": csrf})
        text = html.unescape(refused.text)
        assert refused.status_code == 409
        assert "s'écartent du plan au-delà de la tolérance" in text
        assert 'name="deviation_reason"' in text and "Motif de l'écart d'UM" in text
        assert "Ne pas traiter" not in text.split('id="refusal"')[1].split("</section>")[0]
        assert ledger.app.get_course(cid).fractions_delivered() == 0
        done = client.post(f"/courses/{cid}/log", data={**form, "deviation_reason": "vérifié sur la console",
                                                       "_csrf_token": csrf})
        assert done.status_code == 200, done.text
    [record] = ledger.app.get_course(cid).records
    assert record.deviation_reason == "vérifié sur la console" and record.deviations[0].beam == 1
