"""Outage operations (issue 18), told in the domain's words on the embedded store: the centre
registry, partners' capacity, the assignment plan for 60 courses, contacts and call lists, the
emergency sheet. PDFs are checked by extracting their text (pypdf)."""

from __future__ import annotations

import io
import json
import random
from datetime import date, datetime, timedelta

import pytest
from pypdf import PdfReader

from adapters.dicom.triage import import_triage
from adapters.i18n import Words
from adapters.outage import call_list, call_list_csv, call_list_pdf, emergency_sheet_pdf, home_course_ids
from ledger import errors
from ledger.accounts import add_account
from ledger.planning import TRIAGE_SHARE
from ledger.service import Actor
from tests.conftest import cli

HOME, PART_A, PART_B = "AZ-HOME", "PARTNER-A", "PARTNER-B"
PHYS = Actor("physicist.home", HOME)
DAY = date(2027, 3, 29)  # the Monday after the tests' clock starts
EN = Words("en")


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def network(app) -> None:
    app.outage.register_centre({"code": HOME, "name": "AZ Home Radiotherapy", "zone": "Europe/Brussels", "machines": [
        {"name": "HOME-L1", "model": "TrueBeam", "techniques": ["static", "IMRT", "VMAT", "SRS", "electrons"]}]}, PHYS)
    app.outage.register_centre({"code": PART_A, "name": "Partner A", "zone": "Europe/Brussels", "machines": [
        {"name": "A-TB1", "model": "TrueBeam", "techniques": ["static", "IMRT", "VMAT", "SRS"]},
        {"name": "A-AG1", "model": "Agility", "techniques": ["static", "electrons"]}]}, PHYS)
    app.outage.register_centre({"code": PART_B, "name": "Partner B", "zone": "Europe/Brussels", "machines": [
        {"name": "B-HAL1", "model": "Halcyon", "techniques": ["static", "IMRT", "VMAT"]}]}, PHYS)


def course_data(i: int, triage: int | None, technique: str, planned: int = 20) -> dict:
    beam = {"number": 1, "meterset": "120.5"}
    if technique == "VMAT":
        beam |= {"beam_type": "DYNAMIC", "control_points": 90}
    if technique == "electrons":
        beam |= {"radiation_type": "ELECTRON"}
    return {"patient": {"id": f"P-{i:03d}", "name": f"FAMILY{i}^GIVEN", "birth_date": "1960-01-01"},
            "home_centre": HOME, "triage": triage,
            "plan": {"uid": f"1.2.826.0.1.3680043.10.{i}", "label": f"{technique} {planned}fx #{i}",
                     "fraction_groups": [{"number": 1, "fractions_planned": planned, "beams": [beam]}],
                     "source": {"technique": technique} if technique in ("SRS", "IMRT") else {}}}


def register(app, i, triage, technique, planned=20) -> str:
    return app.register_course(course_data(i, triage, technique, planned), PHYS)["id"]


# ---- 1. the registry --------------------------------------------------------------------------


def test_an_unknown_centre_is_refused_on_every_path_once_the_registry_holds_one(ledger, tmp_path):
    app = ledger.app
    cid = register(app, 1, 2, "VMAT")  # an empty registry accepts any code, as ledgers always did
    network(app)
    with pytest.raises(errors.UnknownCentre) as typo:
        app.assign_centre(cid, "PARTNR-A", PHYS)
    assert typo.value.field == "centre" and "did you mean PARTNER-A?" in typo.value.message
    assert typo.value.conflict["known"] == [HOME, PART_A, PART_B]
    assert "PARTNR-A" in Words("fr").say(typo.value) and "vouliez-vous dire PARTNER-A" in Words("fr").say(typo.value)
    log = {"number": 1, "centre": "ELSEWHERE", "machine": "L1", "operator": "rtt.anna",
           "delivered_at": "2027-03-27T09:00:00+01:00"}
    with pytest.raises(errors.UnknownCentre, match="ELSEWHERE is not a centre of the registry"):
        app.log_fraction(cid, log, Actor("rtt.anna", "ELSEWHERE"))
    with pytest.raises(errors.UnknownCentre):
        app.register_course({**course_data(2, 1, "static"), "home_centre": "AZ-HOEM"}, PHYS)
    with pytest.raises(errors.UnknownCentre):
        add_account(app, {"name": "rtt.x", "role": "rtt", "centre": "NOWHERE"}, "0" * 64, PHYS)
    with pytest.raises(errors.UnknownCentre):
        app.trust.add_centre_alias("NOWHERE", "institution", "Nowhere Hospital", PHYS)
    with pytest.raises(errors.UnknownCentre):
        app.trust.set_centre_zone("NOWHERE", "Europe/Paris", PHYS)
    with pytest.raises(errors.UnknownCentre):
        app.billing.register_incident({"centre": "NOWHERE", "category": "other", "severity": "low", "description": "x"}, PHYS)
    assert app.get_course(cid).assigned_centres == [] and app.get_course(cid).records == []
    # what is known is accepted
    assert app.assign_centre(cid, PART_A, PHYS)["changed"] is True
    assert app.log_fraction(cid, {**log, "centre": PART_A, "machine": "A-TB1"}, Actor("rtt.anna", PART_A))["number"] == 1
    # the CLI: the same refusal, on stderr, nothing written
    db = tmp_path / "cli.sqlite3"
    cli("centre", "register", PART_A, "--name", "Partner A", "--machine", "A-TB1=TrueBeam:static,VMAT", db=db, check=True)
    made = cli("course", "register", "--patient-id", "P-9", "--patient-name", "X^Y", "--plan-uid", "1.2.3",
               "--plan-label", "L", "--fractions", "5", "--home-centre", "PARTNR-A", "--beam", "1=100", db=db)
    assert made.returncode == 1 and "did you mean PARTNER-A?" in made.stderr
    triage = tmp_path / "triage.csv"
    triage.write_text("patient_id,plan,triage,centre\nP-001,VMAT 20fx #1,1,PARTNR-B\n")
    answer = list(import_triage(ledger, triage, PHYS))
    assert answer[0]["status"] == "error" and "did you mean PARTNER-B?" in answer[0]["error"]


def test_the_registry_lists_machines_zones_and_aliases_and_machines_change_by_events(ledger):
    app = ledger.app
    network(app)
    app.trust.add_centre_alias(PART_A, "institution", "Partner A Radiotherapy", PHYS)
    app.trust.set_centre_zone(PART_B, "Europe/Amsterdam", PHYS)
    app.outage.set_machine(PART_B, {"name": "B-HAL2", "model": "Halcyon", "techniques": ["VMAT"]}, PHYS)
    app.outage.remove_machine(PART_A, "A-AG1", PHYS)
    listed = {c["code"]: c for c in app.outage.centres()}
    assert [m["name"] for m in listed[PART_A]["machines"]] == ["A-TB1"]
    assert listed[PART_A]["aliases"] == [{"kind": "institution", "value": "Partner A Radiotherapy"}]
    assert listed[PART_B]["zone"] == "Europe/Amsterdam" and len(listed[PART_B]["machines"]) == 2
    assert app.outage.register_centre({"code": PART_B, "name": "Partner B", "zone": "Europe/Amsterdam"}, PHYS)["status"] == "unchanged"
    with pytest.raises(errors.InvalidCommand) as bad:
        app.outage.set_machine(PART_B, {"name": "B-X", "model": "Halcyon", "techniques": ["protons"]}, PHYS)
    assert bad.value.field.startswith("techniques")


# ---- 2. capacity ------------------------------------------------------------------------------


def test_a_capacity_declaration_is_versioned_and_the_version_in_force_applies(ledger):
    app = ledger.app
    network(app)
    first = app.outage.declare_capacity({"centre": PART_A, "per_day": 40, "window_start": "17:00", "window_end": "21:00",
                                  "valid_from": "2027-03-29", "valid_until": "2027-05-31", "machines": ["A-TB1"]}, PHYS)
    again = app.outage.declare_capacity({"centre": PART_A, "per_day": 40, "window_start": "17:00", "window_end": "21:00",
                                  "valid_from": "2027-03-29", "valid_until": "2027-05-31", "machines": ["A-TB1"]}, PHYS)
    amended = app.outage.declare_capacity({"centre": PART_A, "per_day": 25, "window_start": "17:00", "window_end": "21:00",
                                    "valid_from": "2027-04-12", "valid_until": "2027-05-31",
                                    "machines": ["A-TB1", "A-AG1"]}, PHYS)
    assert (first["version"], again["status"], amended["version"]) == (1, "unchanged", 2)
    assert [(o.centre, o.per_day, o.version) for o in app.outage.offers_on(date(2027, 4, 1))] == [(PART_A, 40, 1)]
    assert [(o.centre, o.per_day, o.version) for o in app.outage.offers_on(date(2027, 4, 12))] == [(PART_A, 25, 2)]
    assert app.outage.offers_on(date(2027, 6, 1)) == []
    with pytest.raises(errors.InvalidCommand) as bad:
        app.outage.declare_capacity({"centre": PART_A, "per_day": 5, "valid_from": "2027-04-01", "machines": ["B-HAL1"]}, PHYS)
    assert bad.value.field == "machines" and "B-HAL1 is not a machine of centre PARTNER-A" in bad.value.message
    with pytest.raises(errors.InvalidCommand, match="valid_until"):
        app.outage.declare_capacity({"centre": PART_A, "per_day": 5, "valid_from": "2027-04-01", "valid_until": "2027-03-01",
                              "machines": ["A-TB1"]}, PHYS)
    with pytest.raises(errors.UnknownCentre):
        app.outage.declare_capacity({"centre": "NOWHERE", "per_day": 5, "valid_from": "2027-04-01", "machines": ["X"]}, PHYS)
    assert len(app.outage.capacity_of(PART_A).versions) == 2


# ---- 3. the assignment plan: 60 courses, two partners, 50% lost ------------------------------


TECHNIQUES = ["static", "VMAT", "VMAT", "IMRT", "SRS", "electrons"]


def sixty(app) -> dict[str, tuple[int, str]]:
    rng = random.Random(18)
    made = {}
    for i in range(1, 61):
        triage = rng.randint(1, 5)
        technique = TECHNIQUES[rng.randrange(len(TECHNIQUES))]
        made[register(app, i, triage, technique, planned=rng.choice([5, 15, 25]))] = (triage, technique)
    return made


def test_sixty_courses_two_partners_half_the_capacity_lost(ledger):
    app = ledger.app
    network(app)
    made = sixty(app)
    # Partner A: after hours on its TrueBeam only (its Agility, the electron machine, is not offered);
    # partner B: its Halcyon in the day.
    app.outage.declare_capacity({"centre": PART_A, "per_day": 14, "window_start": "17:00", "window_end": "21:00",
                          "valid_from": "2027-03-29", "valid_until": "2027-05-31", "machines": ["A-TB1"]}, PHYS)
    app.outage.declare_capacity({"centre": PART_B, "per_day": 12, "valid_from": "2027-03-29", "machines": ["B-HAL1"]}, PHYS)
    ids = home_course_ids(ledger.fresh(), HOME)
    assert len(ids) == 60
    plan = app.outage.plan_assignments(ids, 50, DAY)

    must = {cid for cid, (triage, _) in made.items() if 100 - 50 >= TRIAGE_SHARE[triage]}
    placed = {p.need.course_id for p in plan.proposals}
    unplaceable = {u.need.course_id: u for u in plan.unplaceable}
    assert placed | set(unplaceable) == must and not placed & set(unplaceable)  # every one, once
    assert {n.course_id for n in plan.waiting} == set(made) - must  # triage 4 and 5 wait
    assert len(must) > 26  # more than the partners can take: some must be unplaceable for room
    for p in plan.proposals:  # a machine of the partner delivers the technique
        assert p.need.technique != "electrons"
        assert p.need.technique in {"static", "IMRT", "VMAT", "SRS"}
        assert p.centre == PART_A if p.need.technique == "SRS" else p.centre in (PART_A, PART_B)
    load = {centre: sum(1 for p in plan.proposals if p.centre == centre) for centre in (PART_A, PART_B)}
    assert load == {PART_A: 14, PART_B: 12}  # full, never over
    reasons = {EN.say(u.reason) for u in unplaceable.values()}
    assert "no partner offers a machine that delivers electrons" in reasons
    assert any(r.startswith("every partner that delivers") and "is full" in r for r in reasons)
    # most urgent first: no course is left out for room while a less urgent one was placed
    full = [u.need for u in unplaceable.values() if u.reason["code"] == "plan.no_room"]
    assert max(p.need.triage for p in plan.proposals) <= min(n.triage for n in full)

    # Nothing is assigned before a person accepts.
    assert all(app.get_course(cid).assigned_centres == [] for cid in made)
    assert not any(type(e).__name__ == "CentreAssigned" for cid in made for e in app.course_events(cid))

    # The physicist accepts part, then the rest; each acceptance records CentreAssigned events.
    chosen = [(p.need.course_id, p.centre) for p in plan.proposals]
    first = app.outage.accept_assignments(ids, chosen[:5], 50, DAY, PHYS)
    assert len(first["accepted"]) == 5
    again = app.outage.plan_assignments(ids, 50, DAY)
    assert len(again.kept) == 5 and len(again.proposals) == len(plan.proposals) - 5
    rest = app.outage.accept_assignments(ids, [(p.need.course_id, p.centre) for p in again.proposals], 50, DAY, PHYS)
    assert len(rest["accepted"]) == len(plan.proposals) - 5
    at = {c: sum(1 for cid in made if c in app.get_course(cid).assigned_centres) for c in (PART_A, PART_B)}
    assert at == {PART_A: 14, PART_B: 12}
    assigned_events = [e for cid in made for e in app.course_events(cid) if type(e).__name__ == "CentreAssigned"]
    assert len(assigned_events) == 26 and all(e.meta["user"] == "physicist.home" for e in assigned_events)
    assert all(e.meta["plan"] == {"capacity_lost": 50, "day": "2027-03-29"} for e in assigned_events)
    # A partner full: accepting one more is refused and records nothing.
    left = next(iter(u.need.course_id for u in again.unplaceable if u.need.technique == "VMAT"))
    with pytest.raises(errors.PlanChanged, match="is full"):
        app.outage.accept_assignments(ids, [(left, PART_B)], 50, DAY, PHYS)
    assert app.get_course(left).assigned_centres == []


def test_plan_assignments_on_the_command_line_proposes_and_records_only_what_is_accepted(tmp_path):
    db = tmp_path / "plan.sqlite3"
    env = {"FRACTION_LEDGER_READ_DB": str(tmp_path / "read.sqlite3")}
    for code, machine in ((HOME, "HOME-L1=TrueBeam:static,VMAT"), (PART_A, "A-TB1=TrueBeam:static,VMAT")):
        cli("centre", "register", code, "--name", code.title(), "--machine", machine, db=db, env=env, check=True)
    cli("capacity", "declare", PART_A, "--per-day", "1", "--window", "17:00-21:00", "--from", "2027-03-01",
        "--machine", "A-TB1", db=db, env=env, check=True)
    for n, triage in ((1, 1), (2, 2), (3, 5)):
        cli("course", "register", "--patient-id", f"P-{n}", "--patient-name", f"F{n}^G", "--plan-uid", f"1.2.3.{n}",
            "--plan-label", f"Plan {n}", "--fractions", "10", "--home-centre", HOME, "--beam", "1=100",
            "--triage", str(triage), db=db, env=env, check=True)
    shown = cli("plan-assignments", "--capacity-lost", "50", "--home", HOME, "--day", "2027-03-29", db=db, env=env,
                check=True)
    assert "propose" in shown.stdout and "P-1" in shown.stdout and "every partner that delivers static is full" in shown.stdout
    assert "nothing assigned" in shown.stdout
    listed = json.loads(cli("course", "list", "--json", db=db, env=env, check=True).stdout)
    assert all(c["assigned_centres"] == [] for c in listed)
    done = json.loads(cli("plan-assignments", "--home", HOME, "--day", "2027-03-29", "--accept", "all", "--json",
                          db=db, env=env, check=True).stdout)
    assert done["assigned"] is True and [a["patient_id"] for a in done["accepted"]] == ["P-1"]
    listed = {c["patient_id"]: c for c in json.loads(cli("course", "list", "--json", db=db, env=env).stdout)}
    assert listed["P-1"]["assigned_centres"] == [PART_A] and listed["P-2"]["assigned_centres"] == []
    nl = cli("plan-assignments", "--home", HOME, "--day", "2027-03-29", db=db, env={**env, "FRACTION_LEDGER_LANG": "nl"})
    assert "Toewijzingsplan bij 50% verloren capaciteit" in nl.stdout


# ---- 5. contacts and the call list -----------------------------------------------------------


def test_the_call_list_says_who_to_call_and_why_as_page_data_csv_and_pdf_and_calls_are_events(ledger):
    app = ledger.app
    network(app)
    app.outage.declare_capacity({"centre": PART_A, "per_day": 40, "window_start": "17:00", "window_end": "21:00",
                          "valid_from": "2027-03-01", "machines": ["A-TB1"]}, PHYS)
    moved, paused, quiet = (register(app, i, 2, "VMAT") for i in (1, 2, 3))
    app.outage.set_contact(HOME, "P-001", {"phones": ["+32 470 12 34 56"], "contact_person": "FAMILY1^ANNE",
                                    "contact_phone": "+32 9 123 45 67"}, PHYS)
    app.assign_centre(moved, PART_A, PHYS)
    app.suspend_course(paused, "fever, see the doctor first", PHYS)
    rows = call_list(app, ledger.fresh(), HOME, ledger.clock.now.date(), EN)
    by_patient = {r["patient_id"]: r for r in rows}
    assert set(by_patient) == {"P-001", "P-002"}  # P-003 has nothing new to hear
    assert by_patient["P-001"]["why"] == [f"moved to {PART_A}: first treatment there on 29 Mar 2027, time window 17:00-21:00"]
    assert by_patient["P-001"]["phones"] == ["+32 470 12 34 56"]
    assert by_patient["P-002"]["why"] == ["treatment suspended: fever, see the doctor first"]
    # the partner's list holds the patient who comes to it
    assert [r["patient_id"] for r in call_list(app, ledger.fresh(), PART_A, ledger.clock.now.date(), EN)] == ["P-001"]
    csv_text = call_list_csv(rows, EN)
    assert csv_text.splitlines()[0].startswith("patient_id,name,plan,why,phones")
    assert "+32 470 12 34 56" in csv_text and "to call" in csv_text
    pdf = text_of(call_list_pdf(rows, HOME, ledger.clock.now.date(), Words("nl"), ledger.clock.now))
    assert "Bellijst AZ-HOME" in pdf and "FAMILY1 ANNE" in pdf and "verplaatst naar PARTNER-A" in pdf
    app.outage.record_call({"course_id": moved, "day": ledger.clock.now.date().isoformat(), "outcome": "not_reached"}, PHYS)
    app.outage.record_call({"course_id": moved, "day": ledger.clock.now.date().isoformat(), "outcome": "called",
                     "note": "will go tonight"}, PHYS)
    again = {r["patient_id"]: r for r in call_list(app, ledger.fresh(), HOME, ledger.clock.now.date(), EN)}
    assert [c["outcome"] for c in again["P-001"]["calls"]] == ["not_reached", "called"]
    assert "called" in call_list_csv(list(again.values()), EN).splitlines()[1]
    with pytest.raises(errors.InvalidCommand) as bad:
        app.outage.set_contact(HOME, "P-001", {"phones": ["call me"]}, PHYS)
    assert bad.value.field.startswith("phones")
    assert quiet


def test_contact_details_are_encrypted_at_rest_and_never_in_the_read_model(tmp_path):
    key = tmp_path / "ledger.key"
    cli("keygen-cipher", "--out", str(key), check=True)
    env = {"FRACTION_LEDGER_READ_DB": ""}
    with_key = ("--cipher-key-file", str(key))
    db = tmp_path / "secret.sqlite3"
    cid = json.loads(cli(*with_key, "course", "register", "--patient-id", "P-1", "--patient-name", "F^G",
                         "--plan-uid", "1.2.3.4", "--plan-label", "L", "--fractions", "5", "--home-centre", HOME,
                         "--beam", "1=100", "--json", db=db, env=env, check=True).stdout)["id"]
    cli(*with_key, "contact", "set", cid, "--phone", "+32 470 99 88 77", "--contact-person", "DOE^JANE", db=db, env=env,
        check=True)
    shown = cli(*with_key, "contact", "show", cid, "--json", db=db, env=env, check=True)
    assert json.loads(shown.stdout)["phones"] == ["+32 470 99 88 77"]
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"470 99 88 77" not in stored and b"DOE^JANE" not in stored
    plain = tmp_path / "plain.sqlite3"
    penv = {"FRACTION_LEDGER_READ_DB": str(tmp_path / "plain.read.sqlite3")}
    pid = json.loads(cli("course", "register", "--patient-id", "P-1", "--patient-name", "F^G", "--plan-uid", "1.2.3.4",
                         "--plan-label", "L", "--fractions", "5", "--home-centre", HOME, "--beam", "1=100", "--json",
                         db=plain, env=penv, check=True).stdout)["id"]
    cli("contact", "set", pid, "--phone", "+32 470 99 88 77", db=plain, env=penv, check=True)
    cli("course", "list", db=plain, env=penv, check=True)
    assert b"470 99 88 77" not in (tmp_path / "plain.read.sqlite3").read_bytes()  # the read model never holds it


# ---- 6. the emergency sheet ------------------------------------------------------------------


def test_the_emergency_sheet_shows_identity_prescription_plan_fractions_next_warnings_and_contact(ledger):
    app = ledger.app
    network(app)
    cid = register(app, 7, 1, "VMAT", planned=25)
    app.assign_centre(cid, PART_A, PHYS)
    app.outage.set_contact(HOME, "P-007", {"phones": ["+32 470 00 00 07"]}, PHYS)
    start = datetime.fromisoformat("2027-03-22T09:00:00+01:00")
    for n in range(1, 4):
        app.log_fraction(cid, {"number": n, "centre": HOME if n < 3 else PART_A, "machine": "HOME-L1" if n < 3 else "A-TB1",
                               "operator": "rtt.anna", "delivered_at": (start + timedelta(days=n - 1)).isoformat()},
                         Actor("rtt.anna", HOME if n < 3 else PART_A))
    app.log_fraction(cid, {"number": 5, "centre": PART_A, "machine": "A-TB1", "operator": "rtt.bob",
                           "delivered_at": "2027-03-26T18:00:00+01:00"}, Actor("rtt.bob", PART_A))
    pdf = emergency_sheet_pdf(app, app.get_course(cid), EN)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = text_of(pdf)
    for shown in ("Radiotherapy emergency sheet P-007", "FAMILY7 GIVEN", "VMAT 25fx #7", "1.2.826.0.1.3680043.10.7",
                  "4 of 25 fractions delivered", "fraction 4 (group 1) at PARTNER-A", "+32 470 00 00 07",
                  "An earlier fraction is not recorded: 4.", "A-TB1", "HOME-L1", "AZ-HOME, PARTNER-A"):
        assert shown in text, shown
    fr = text_of(emergency_sheet_pdf(app, app.get_course(cid), Words("fr")))
    assert "Fiche d'urgence de radiothérapie P-007" in fr and "Prochaine fraction" in fr
    assert pdf == emergency_sheet_pdf(app, app.get_course(cid), EN)  # the same log gives the same bytes


# ---- 4. the day list -------------------------------------------------------------------------


def test_the_day_list_of_each_centre_from_assignments_and_schedules_with_who_is_missing(ledger, tmp_path):
    from adapters.outage import day_list, day_list_pdf

    app = ledger.app
    network(app)
    at_home, moved, early = (register(app, i, 2, "VMAT") for i in (1, 2, 3))
    # course 3 started the week before: its schedule's start is its first fraction
    app.log_fraction(early, {"number": 1, "centre": HOME, "machine": "HOME-L1", "operator": "rtt.jo",
                             "delivered_at": "2027-03-22T09:00:00+01:00"}, Actor("rtt.jo", HOME))
    app.assign_centre(moved, PART_A, PHYS)  # on Sunday 28 March: at the partner from Monday
    monday = date(2027, 3, 29)
    home_list = {r["patient_id"]: r for r in day_list(app, ledger.fresh(), HOME, monday)}
    assert {p: r["status"] for p, r in home_list.items()} == {"P-001": "expected", "P-003": "expected"}
    friday = {r["patient_id"]: r["status"] for r in day_list(app, ledger.fresh(), HOME, date(2027, 3, 26))}
    assert friday == {"P-003": "missing"}  # expected Tuesday to Friday after its first fraction: nobody came
    assert [r["patient_id"] for r in day_list(app, ledger.fresh(), PART_A, monday)] == ["P-002"]
    assert day_list(app, ledger.fresh(), PART_A, date(2027, 3, 26)) == []  # before the assignment it was home's
    ledger.clock.now = datetime.fromisoformat("2027-03-29T20:00:00+02:00")
    app.log_fraction(moved, {"number": 1, "centre": PART_A, "machine": "A-TB1", "operator": "rtt.bob",
                             "delivered_at": "2027-03-29T18:30:00+02:00"}, Actor("rtt.bob", PART_A))
    partner = day_list(app, ledger.fresh(), PART_A, monday)
    assert [(r["patient_id"], r["status"], [d["number"] for d in r["delivered"]]) for r in partner] == [
        ("P-002", "delivered", [1])]
    ledger.clock.now = datetime.fromisoformat("2027-03-30T08:00:00+02:00")
    home_after = {r["patient_id"]: r["status"] for r in day_list(app, ledger.fresh(), HOME, monday)}
    assert home_after == {"P-001": "missing", "P-003": "missing"}
    rows = day_list(app, ledger.fresh(), HOME, monday)
    text = text_of(day_list_pdf(rows, HOME, monday, Words("fr"), ledger.clock.now))
    assert "Liste du jour AZ-HOME" in text and "ABSENT" in text and "FAMILY1 GIVEN" in text
    shown = cli("day-list", "--for-centre", PART_A, "--day", "2027-03-29", db=ledger.storage.url,
                env={"FRACTION_LEDGER_READ_DB": str(tmp_path / "cli-read.sqlite3")})
    assert shown.returncode == 0 and "P-002" in shown.stdout and "treated" in shown.stdout


def test_a_bundle_from_a_centre_the_registry_does_not_hold_is_refused_whole(ledger, tmp_path, monkeypatch):
    from adapters.bundle import export_bundle, read_bundle
    from adapters.keys import generate_centre_key
    from adapters.runtime import Ledger
    from tests.conftest import Clock
    from tests.test_core_rules import DAY1, HOME as B_HOME, PARTNER as B_PARTNER, log, plan

    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "partner-read.sqlite3"))
    body = {"patient": {"id": "P-B", "name": "DUPONT^MARIE"}, "home_centre": B_HOME, "plan": plan(),
            "assigned_centres": [B_PARTNER]}
    course = ledger.app.register_course(body, PHYS)["id"]
    with Ledger(str(tmp_path / "partner.sqlite3"), clock=Clock(DAY1 + timedelta(days=60))) as partner:
        public, _ = generate_centre_key(tmp_path / "partner.ed25519")
        partner.app.trust.add_centre(B_PARTNER, public, Actor("admin", B_PARTNER))
        partner.app.register_course(body, Actor("physicist.partner", B_PARTNER))
        log(partner, course, 1, B_PARTNER, operator="rtt.partner.a")
        data = export_bundle(partner.app, B_PARTNER, tmp_path / "partner.ed25519", None)[0]
    ledger.app.trust.add_centre(B_PARTNER, public, PHYS)  # its key, known before the registry was kept
    ledger.app.outage.register_centre({"code": B_HOME, "name": "Home"}, PHYS)
    before = ledger.app.recorder.max_notification_id()
    with pytest.raises(errors.BundleRefused, match=f"{B_PARTNER} is not a centre of the registry"):
        ledger.app.trust.import_bundle(read_bundle(ledger.app, data), PHYS)
    assert ledger.app.recorder.max_notification_id() == before and ledger.app.get_course(course).records == []
    ledger.app.outage.register_centre({"code": B_PARTNER, "name": "Partner"}, PHYS)
    assert ledger.app.trust.import_bundle(read_bundle(ledger.app, data), PHYS)["applied"] == 1


def test_a_dicom_plan_imported_for_an_unknown_centre_registers_nothing(ledger, tmp_path):
    from adapters.dicom.plans import import_plan_file
    from tools.dicom_samples import sample_plan, write_plan

    network(ledger.app)
    path = tmp_path / "plan.dcm"
    write_plan(sample_plan(), path)
    refused = import_plan_file(ledger.app, path, PHYS, "AZ-HOEM")  # each file is answered on its own
    assert refused["status"] == "error" and "did you mean AZ-HOME?" in refused["error"], refused
    assert ledger.fresh().courses() == []
    assert import_plan_file(ledger.app, path, PHYS, HOME)["status"] == "registered"


def test_contact_details_come_with_the_triage_list(ledger, tmp_path):
    network(ledger.app)
    cid = register(ledger.app, 1, None, "VMAT")
    triage = tmp_path / "triage.csv"
    triage.write_text("patient_id,plan,triage,centre,phone,contact_person,contact_phone\n"
                      "P-001,VMAT 20fx #1,2,,+32 470 11 11 11;+32 9 222 22 22,DOE^JANE,+32 475 33 33 33\n"
                      "P-001,VMAT 20fx #1,4,,not a phone,,\n")
    answers = list(import_triage(ledger, triage, PHYS))
    assert [a["status"] for a in answers] == ["changed", "error"] and answers[1]["error"].startswith("phones")
    details = ledger.app.outage.contact(HOME, "P-001").details
    assert details == {"phones": ["+32 470 11 11 11", "+32 9 222 22 22"], "contact_person": "DOE^JANE",
                       "contact_phone": "+32 475 33 33 33", "note": ""}
    assert ledger.app.get_course(cid).triage == 2  # the refused line wrote nothing


def test_two_physicists_accepting_at_once_never_fill_a_partner_beyond_its_capacity(tmp_path, monkeypatch):
    import threading

    from adapters.runtime import Ledger
    from tests.conftest import Clock

    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    db = str(tmp_path / "race.sqlite3")
    with Ledger(db, clock=Clock()) as setup:
        network(setup.app)
        setup.app.outage.declare_capacity({"centre": PART_B, "per_day": 1, "valid_from": "2027-03-01",
                                    "machines": ["B-HAL1"]}, PHYS)
        ids = [register(setup.app, i, 1, "VMAT") for i in (1, 2)]
    both_read = threading.Barrier(2, timeout=30)
    answers: dict[int, object] = {}

    def accept(n: int) -> None:
        monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / f"read-{n}.sqlite3"))
        with Ledger(db, clock=Clock(), read_db=str(tmp_path / f"read-{n}.sqlite3")) as mine:
            offers_on, first = mine.app.outage.offers_on, [True]

            def offers_then_wait(day):
                found = offers_on(day)
                if first[0]:  # both decide on the same state before either saves
                    first[0] = False
                    both_read.wait()
                return found

            mine.app.outage.offers_on = offers_then_wait
            try:
                answers[n] = mine.app.outage.accept_assignments(ids, [(ids[n], PART_B)], 50, DAY, PHYS)
            except errors.PlanChanged as exc:
                answers[n] = exc

    threads = [threading.Thread(target=accept, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    refused = [a for a in answers.values() if isinstance(a, errors.PlanChanged)]
    assert len(answers) == 2 and len(refused) == 1 and "PARTNER-B is full" in refused[0].message
    with Ledger(db, clock=Clock()) as after:
        assert sum(1 for cid in ids if PART_B in after.app.get_course(cid).assigned_centres) == 1
        assert len(after.app.outage.capacity_of(PART_B).taken) == 1


def test_listen_pull_and_watch_do_not_start_for_a_centre_the_registry_does_not_hold(tmp_path):
    db = tmp_path / "l.sqlite3"
    env = {"FRACTION_LEDGER_READ_DB": str(tmp_path / "r.sqlite3")}
    cli("centre", "register", HOME, "--name", "Home", db=db, env=env, check=True)
    (tmp_path / "drop").mkdir()
    for args in (("listen", "--port", "0", "--allow", "HOME-OIS=AZ-HOEM"),
                 ("pull", "--host", "127.0.0.1", "--port", "1", "--called-aet", "OIS", "--centre", "AZ-HOEM"),
                 ("watch", str(tmp_path / "drop"), "--centre", "AZ-HOEM", "--once")):
        r = cli(*args, db=db, env=env)
        assert r.returncode == 1 and "did you mean AZ-HOME?" in r.stderr, (args, r.stderr)


def test_the_command_line_says_a_centre_went_unchecked_while_no_centre_is_registered(tmp_path):
    db = tmp_path / "ledger.sqlite3"
    registered = cli("course", "register", "--patient-id", "P-9", "--patient-name", "DOE^JO", "--home-centre", "HOME",
                     "--plan-uid", "1.2.3.9.1", "--plan-label", "Breast", "--fractions", "5", "--beam", "1=100",
                     "--json", db=db)
    assert registered.returncode == 0, registered.stderr
    cid = json.loads(registered.stdout)["id"]
    loose = cli("course", "assign", cid, "--centre", "PARTNR-RT", db=db, env={"FRACTION_LEDGER_LANG": "fr"})
    assert loose.returncode == 0 and "PARTNR-RT n'a donc pas été vérifié" in loose.stderr
    cli("centre", "register", "HOME", "--name", "Home", db=db, check=True)
    cli("centre", "register", "PARTNER-RT", "--name", "Partner", db=db, check=True)
    checked = cli("course", "assign", cid, "--centre", "PARTNR-RT", db=db)
    assert checked.returncode == 1 and "did you mean PARTNER-RT?" in checked.stderr
    fine = cli("course", "assign", cid, "--centre", "PARTNER-RT", db=db)
    assert fine.returncode == 0 and fine.stderr == ""
