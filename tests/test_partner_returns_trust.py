"""Partner returns, issue 13: one course, one count, whoever speaks for it.

5. A centre's bundle verifies or voids only the fractions delivered at that centre, and record
   ids minted by two ledgers with the same history differ.
6. A centre adds fallback plans only for itself; a re-plan far from the prescription waits for
   a physicist of the home centre before anyone treats with it.
7. One backed-up plan is one course, whichever centre imports it.

The home ledger runs on SQLite (the `ledger` fixture; the registration race also on PostgreSQL); each partner keeps a
SQLite ledger of its own, as at a partner hospital.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient

from adapters.bundle import export_bundle, read_bundle
from adapters.keys import generate_centre_key
from adapters.runtime import Ledger
from ledger import errors
from ledger.plan_course import PlanCourse
from ledger.service import Actor
from tests.conftest import EACH_BACKEND, Clock, cli
from tests.test_trust_bundle import resign
from schemas.results import CourseChange

HOME, PARTNER, OTHER = "AZ-HOME", "PARTNER-RT", "OTHER-RT"
DAY1 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))
PATIENT = {"id": "P-RETURN", "name": "MAES^LIEVE", "birth_date": "1955-02-03", "sex": "F"}
PLAN_UID = "1.2.826.0.1.3680043.10.130"
HOME_PHYSICIST, PARTNER_PHYSICIST = Actor("physicist.home", HOME), Actor("physicist.partner", PARTNER)


def plan(uid=PLAN_UID, centre=HOME, mu="100", fractions=20, machine="HOME-L1") -> dict:
    return {"uid": uid, "label": "Rectum 50Gy/25", "machine": machine, "centre": centre,
            "fraction_groups": [{"number": 1, "fractions_planned": fractions, "beams": [{"number": 1, "meterset": mu}]}]}


def registration(home=HOME) -> dict:
    return {"patient": PATIENT, "home_centre": home, "plan": plan(), "assigned_centres": [PARTNER, OTHER]}


def register(ledger, home=HOME) -> str:
    return ledger.app.register_course(registration(home), Actor(f"physicist.{home.lower()}", home))["id"]


def log(ledger, course, number, centre, **extra) -> dict:
    operator = f"rtt.{centre.lower()}"
    return ledger.app.log_fraction(course, {"number": number, "centre": centre, "machine": f"{centre}-L1",
                                            "operator": operator, "delivered_at": DAY1 + timedelta(days=number),
                                            **extra}, Actor(operator, centre))


def events(ledger) -> int:
    return ledger.app.recorder.max_notification_id() or 0


@pytest.fixture
def away(tmp_path, monkeypatch, ledger):
    """The partners' own ledgers (PARTNER-RT and OTHER-RT), with the same clock: the same history
    gives them the same stream versions at the same instants. Their keys are known at home."""
    opened = {}
    for centre in (PARTNER, OTHER):
        folder = tmp_path / centre
        folder.mkdir()
        monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(folder / "read.sqlite3"))
        other = Ledger(str(folder / "ledger.sqlite3"), clock=Clock(DAY1 + timedelta(days=40)))
        public, _ = generate_centre_key(folder / "key.ed25519")
        other.app.trust.add_centre(centre, public, Actor("admin", centre))
        ledger.app.trust.add_centre(centre, public, Actor("admin", HOME))
        other.key, other.clock = folder / "key.ed25519", other.app.clock
        opened[centre] = other
    yield opened
    for other in opened.values():
        other.close()


def bundle_of(ledgers, centre, since=None) -> bytes:
    return export_bundle(ledgers[centre].app, centre, ledgers[centre].key, since)[0]


def do_import(ledger, data: bytes) -> dict:
    return ledger.app.trust.import_bundle(read_bundle(ledger.app, data), HOME_PHYSICIST)


def body_of(data: bytes) -> dict:
    return msgspec.json.decode(data.split(b"\n")[0])


# ---- 5. a bundle speaks only for its own centre's fractions -------------------------------------


def two_partners_treated(ledger, away) -> str:
    """Both partners registered the course from the same backup; PARTNER-RT delivered fraction 1,
    OTHER-RT fraction 2; both came home in bundles."""
    course = register(ledger)
    for centre in (PARTNER, OTHER):
        assert register(away[centre]) == course
    log(away[PARTNER], course, 1, PARTNER)
    log(away[OTHER], course, 2, OTHER)
    for centre in (PARTNER, OTHER):
        do_import(ledger, bundle_of(away, centre))
    return course


def test_a_partners_void_of_its_fraction_leaves_the_other_partners_fraction_alone(ledger, away):
    course = two_partners_treated(ledger, away)
    [at_partner] = away[PARTNER].app.get_course(course).records
    [at_other] = away[OTHER].app.get_course(course).records
    assert at_partner.record_id != at_other.record_id, "two ledgers with the same history mint different ids"

    mark = away[PARTNER].clock.now
    away[PARTNER].app.void_fraction(course, 1, "logged on the wrong patient", "physicist.partner", PARTNER_PHYSICIST)
    assert do_import(ledger, bundle_of(away, PARTNER, since=mark))["applied"] == 1

    home = ledger.app.get_course(course)
    assert [(r.number, r.centre, r.voided) for r in home.records] == [(1, PARTNER, True), (2, OTHER, False)]
    with pytest.raises(errors.FractionAlreadyDelivered):
        log(ledger, course, 2, HOME)  # OTHER-RT's fraction 2 still counts: it is not given a second time
    assert home.fractions_delivered() == 1


def forged_void(away, course, record_id: str) -> bytes:
    """PARTNER-RT's signed bundle with its void made to name another centre's record."""
    mark = away[PARTNER].clock.now
    away[PARTNER].app.void_fraction(course, 1, "entered twice", "physicist.partner", PARTNER_PHYSICIST)
    body = body_of(bundle_of(away, PARTNER, since=mark))
    body["events"][0]["record_ids"] = [record_id]
    return resign(body, away[PARTNER].key)


def test_a_bundle_voiding_a_fraction_delivered_elsewhere_is_refused_whole(ledger, away):
    course = two_partners_treated(ledger, away)
    [at_other] = away[OTHER].app.get_course(course).records
    data = forged_void(away, course, at_other.record_id)
    before = events(ledger)
    with pytest.raises(errors.BundleRefused) as refused:
        do_import(ledger, data)
    assert "was delivered at OTHER-RT, not at PARTNER-RT" in str(refused.value)
    assert events(ledger) == before
    assert [r.voided for r in ledger.app.get_course(course).records] == [False, False]


def test_bundle_import_from_the_command_line_names_the_refusal(ledger, away, db_url, tmp_path):
    course = two_partners_treated(ledger, away)
    [at_other] = away[OTHER].app.get_course(course).records
    path = tmp_path / "forged.bundle"
    path.write_bytes(forged_void(away, course, at_other.record_id))
    proc = cli("bundle", "import", str(path), db=db_url,
               env={"FRACTION_LEDGER_CENTRE": HOME, "FRACTION_LEDGER_READ_DB": str(tmp_path / "cli-read.sqlite3")})
    assert proc.returncode == 1
    assert "was delivered at OTHER-RT, not at PARTNER-RT" in proc.stderr
    assert [r.voided for r in ledger.app.get_course(course).records] == [False, False]


# ---- 6. fallback plans: only for oneself, and far ones wait for the home physicist --------------


def test_a_partner_cannot_add_a_plan_for_the_home_centre(ledger):
    course = register(ledger)
    with pytest.raises(errors.PlanForAnotherCentre) as refused:
        ledger.app.add_fallback_plan(course, plan(uid="1.2.826.0.1.3680043.10.131", centre=HOME, mu="500"),
                                     PARTNER_PHYSICIST)
    assert refused.value.conflict == {"plan_centre": HOME, "acting_centre": PARTNER}
    home = ledger.app.get_course(course)
    assert len(home.plans) == 1 and home.plan_in_use(HOME).uid == PLAN_UID
    assert [b["specified_mu"] for b in log(ledger, course, 1, HOME)["beams"]] == [Decimal("100")]


def test_a_re_plan_far_from_the_prescription_waits_for_a_home_physicist(ledger):
    course = register(ledger)
    far = plan(uid="1.2.826.0.1.3680043.10.132", centre=PARTNER, mu="500", machine="TB2")
    added = ledger.app.add_fallback_plan(course, far, PARTNER_PHYSICIST)
    assert (added["changed"], added["awaiting_approval"]) == (True, True)
    assert ledger.app.get_course(course).plan_in_use(PARTNER).uid == PLAN_UID, "not the partner's default yet"
    with pytest.raises(errors.PlanNotApproved) as refused:
        log(ledger, course, 1, PARTNER, plan_uid=far["uid"])
    assert "500 MU per fraction in group 1 where the prescription gives 100 MU" in refused.value.message
    assert ledger.app.get_course(course).fractions_delivered() == 0

    with pytest.raises(errors.AccessDenied):
        ledger.app.approve_fallback_plan(course, far["uid"], PARTNER_PHYSICIST)
    assert ledger.app.approve_fallback_plan(course, far["uid"], HOME_PHYSICIST)["changed"] is True
    assert ledger.app.approve_fallback_plan(course, far["uid"], HOME_PHYSICIST)["changed"] is False
    record = log(ledger, course, 1, PARTNER)
    assert (record["plan_uid"], record["beams"][0]["specified_mu"]) == (far["uid"], Decimal("500"))


def test_a_re_plan_within_the_expected_changes_is_used_at_once_and_more_fractions_wait(ledger):
    course = register(ledger)
    near = plan(uid="1.2.826.0.1.3680043.10.133", centre=PARTNER, mu="108", fractions=15, machine="TB2")
    assert ledger.app.add_fallback_plan(course, near, PARTNER_PHYSICIST)["awaiting_approval"] is False
    assert log(ledger, course, 1, PARTNER)["plan_uid"] == near["uid"]
    more = plan(uid="1.2.826.0.1.3680043.10.134", centre=OTHER, mu="100", fractions=25, machine="OTHER-TB")
    assert ledger.app.add_fallback_plan(course, more, Actor("physicist.other", OTHER))["awaiting_approval"] is True
    assert ledger.app.get_course(course).plan_in_use(OTHER).uid == PLAN_UID


def test_a_bundle_with_a_plan_for_the_home_centre_is_refused_and_an_approval_travels_back(ledger, away):
    course = register(ledger)
    partner = away[PARTNER]
    register(partner)
    far = plan(uid="1.2.826.0.1.3680043.10.135", centre=PARTNER, mu="500", machine="TB2")
    partner.app.add_fallback_plan(course, far, PARTNER_PHYSICIST)
    data = bundle_of(away, PARTNER)
    forged = body_of(data)
    forged["events"][0]["plan"]["centre"] = HOME
    before = events(ledger)
    with pytest.raises(errors.BundleRefused) as refused:
        do_import(ledger, resign(forged, partner.key))
    assert "a centre adds fallback plans only for itself" in str(refused.value) and events(ledger) == before
    assert ledger.app.get_course(course).plan_in_use(HOME).uid == PLAN_UID

    # The genuine plan comes home awaiting approval; the home physicist's approval goes back in
    # the home centre's own bundle, and only then does the partner treat with it.
    do_import(ledger, data)
    assert far["uid"] in ledger.app.get_course(course).awaiting_approval
    with pytest.raises(errors.PlanNotApproved):
        log(partner, course, 1, PARTNER, plan_uid=far["uid"])
    ledger.app.approve_fallback_plan(course, far["uid"], HOME_PHYSICIST)
    home_key = Path(str(partner.key).replace(PARTNER, "home"))
    home_key.parent.mkdir()
    public, _ = generate_centre_key(home_key)
    ledger.app.trust.add_centre(HOME, public, Actor("admin", HOME))
    partner.app.trust.add_centre(HOME, public, Actor("admin", PARTNER))
    approval = export_bundle(ledger.app, HOME, home_key)[0]
    partner.app.trust.import_bundle(read_bundle(partner.app, approval), PARTNER_PHYSICIST)
    assert log(partner, course, 1, PARTNER)["plan_uid"] == far["uid"]


def test_fallback_plans_over_the_api(ledger):
    from adapters.http import create_app
    from tests.http_support import account_name, auth, fraction_body, seed_accounts, seed_course
    from tests.http_support import HOME as H, PARTNER as P

    seed_accounts(ledger.app)
    cid = seed_course(ledger.app)  # 112.4 + 109.8 MU per fraction, 30 fractions, assigned to P
    phys_p, phys_h, rtt_p = (auth(account_name("physicist", P)), auth(account_name("physicist", H)),
                             auth(account_name("rtt", P)))
    beams = [{"number": 1, "meterset": "500"}, {"number": 2, "meterset": "500"}]
    body = {"uid": "1.2.3.4.77", "label": "Fallback TB2", "machine": "TB2", "centre": H,
            "fraction_groups": [{"number": 1, "fractions_planned": 30, "beams": beams}]}
    with TestClient(create_app(ledger)) as api:
        r = api.post(f"/api/courses/{cid}/plans", headers=phys_p, json=body)
        assert r.status_code == 409 and r.json()["error"] == "plan_for_another_centre"
        r = api.post(f"/api/courses/{cid}/plans", headers=phys_p, json={**body, "centre": P})
        assert r.status_code == 200 and r.json()["awaiting_approval"] is True
        r = api.post(f"/api/courses/{cid}/fractions", headers=rtt_p, json=fraction_body(1, plan_uid="1.2.3.4.77"))
        assert r.status_code == 409 and r.json()["error"] == "plan_not_approved"
        approve = {"plan_uid": "1.2.3.4.77"}
        assert api.post(f"/api/courses/{cid}/plans/approve", headers=phys_p, json=approve).status_code == 403
        r = api.post(f"/api/courses/{cid}/plans/approve", headers=phys_h, json=approve)
        assert r.status_code == 200 and r.json()["changed"] is True
        r = api.post(f"/api/courses/{cid}/fractions", headers=rtt_p, json=fraction_body(1))
        assert r.status_code == 201 and r.json()["plan_uid"] == "1.2.3.4.77"


# ---- 7. one backed-up plan, one course -----------------------------------------------------------


def test_a_second_course_for_the_same_patient_and_plan_is_refused_with_the_first(ledger):
    course = register(ledger)
    before = events(ledger)
    for centre in (PARTNER, OTHER):
        with pytest.raises(errors.CourseAlreadyRegistered) as refused:
            register(ledger, home=centre)
        assert refused.value.conflict == {"id": course, "home_centre": HOME}
        assert course in refused.value.message
    assert events(ledger) == before
    assert ledger.app.register_course(registration(), HOME_PHYSICIST) == CourseChange(id=course, status="unchanged")
    log(ledger, course, 1, HOME)


@EACH_BACKEND
def test_two_centres_registering_the_plan_at_once_get_one_course(ledger, db_url, monkeypatch, tmp_path):
    """The partner's registration lands between the home's check and its save: the home's save
    conflicts, and on its second look it finds the partner's course."""
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "second-read.sqlite3"))
    with Ledger(db_url, clock=Clock()) as second:
        looked = []
        real = ledger.app.claim_plan

        def stale(course_id, cmd, meta, pending=()):
            if looked:
                return real(course_id, cmd, meta, pending)
            looked.append(course_id)
            theirs = register(second, home=PARTNER)  # saved meanwhile, by another process
            looked.append(theirs)
            return [PlanCourse(patient_id=cmd.patient.id, plan_uid=cmd.plan.uid, course_id=str(course_id),
                               home_centre=cmd.home_centre, meta=meta)]

        monkeypatch.setattr(ledger.app, "claim_plan", stale)
        with pytest.raises(errors.CourseAlreadyRegistered) as refused:
            register(ledger)
        assert refused.value.conflict == {"id": looked[1], "home_centre": PARTNER}
        with pytest.raises(errors.CourseNotFound):
            ledger.app.get_course(looked[0])


def test_a_bundle_registering_a_second_course_for_the_plan_is_refused(ledger, away):
    course = register(ledger)
    theirs = register(away[PARTNER], home=PARTNER)  # the partner made the plan a course of its own
    log(away[PARTNER], theirs, 1, PARTNER)
    before = events(ledger)
    with pytest.raises(errors.BundleRefused) as refused:
        do_import(ledger, bundle_of(away, PARTNER))
    assert f"already course {course} of home centre {HOME}" in str(refused.value) and events(ledger) == before


def test_the_same_plan_uploaded_at_three_centres_is_one_course(ledger, tmp_path):
    from adapters.http import create_app
    from ledger.accounts import add_account, hash_token
    from tests.http_support import auth
    from tools.dicom_samples import sample_plan, write_plan

    path = write_plan(sample_plan("PAT-ONE", "ONE^FRACTION", "Single 8Gy", groups=[(1, ["400"])]), tmp_path / "one.dcm")
    for centre in (HOME, PARTNER, OTHER):
        for role in ("physicist", "rtt"):
            name = f"{role}.{centre.lower()}"
            add_account(ledger.app, {"name": name, "role": role, "centre": centre}, hash_token(f"test-token-{name}"),
                        Actor("setup", "-"))
    with TestClient(create_app(ledger)) as api:
        answers = [api.post("/api/imports/plans", headers=auth(f"physicist.{c.lower()}"),
                            files=[("files", ("one.dcm", path.read_bytes(), "application/dicom"))]).json()[0]
                   for c in (HOME, PARTNER, OTHER)]
        course = answers[0]["course_id"]
        assert answers[0]["status"] == "registered"
        for answer in answers[1:]:
            assert answer["status"] == "error" and f"already course {course} of home centre {HOME}" in answer["error"]
        assert [c["id"] for c in api.get("/api/courses", headers=auth("physicist.az-home")).json()] == [course]
        api.post(f"/api/courses/{course}/assign", headers=auth("physicist.az-home"), json={"centre": PARTNER})
        fraction = {"number": 1, "machine": "TB2", "delivered_at": DAY1.isoformat()}
        assert api.post(f"/api/courses/{course}/fractions", headers=auth("rtt.partner-rt"), json=fraction).status_code == 201
        again = api.post(f"/api/courses/{course}/fractions", headers=auth("rtt.az-home"), json=fraction)
        assert again.status_code == 409 and again.json()["error"] == "fraction_already_delivered"
