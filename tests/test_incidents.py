"""Incidents registered at any centre come back to the home centre; every refusal by a safety
rule is itself recorded as a near-miss, without touching the course."""

from __future__ import annotations

import csv
import io
import json
import zlib
from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import cli
from ledger import errors
from ledger.service import Actor

HOME, PARTNER, OTHER = "AZ-HOME", "PARTNER-RT", "THIRD-RT"
START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))


def register(ledger, patient="P-001", fractions=3, home=HOME) -> str:
    return ledger.app.register_course(
        {
            "patient": {"id": patient, "name": "PEETERS^AN"},
            "home_centre": home,
            "plan": {"uid": f"1.2.826.0.1.3680043.10.9.{zlib.crc32(patient.encode())}", "label": "Breast L",
                     "fraction_groups": [{"number": 1, "fractions_planned": fractions,
                                          "beams": [{"number": 1, "meterset": "100"}]}]},
            "assigned_centres": [PARTNER],
        },
        Actor("physicist", home),
    )["id"]


def log(ledger, course_id, number, centre=PARTNER, operator="rtt.partner.a", day=None, request_id=None):
    at = START + timedelta(days=number - 1 if day is None else day)
    return ledger.app.log_fraction(
        course_id, {"number": number, "centre": centre, "machine": "TB2", "operator": operator, "delivered_at": at},
        Actor(operator, centre), request_id=request_id,
    )


def course_events(ledger, course_id) -> int:
    return ledger.app.get_course(course_id).version


def test_a_partner_registers_an_incident_and_follows_it_up_to_closing(ledger):
    course = register(ledger)
    log(ledger, course, 1)
    app = ledger.app
    found = app.billing.register_incident(
        {"centre": PARTNER, "course_id": course, "fraction": 1, "category": "positioning", "severity": "medium",
         "description": "Couch shift of 6 mm found on CBCT, corrected before treatment", "by": "rtt.partner.a"},
        Actor("rtt.partner.a", PARTNER),
    )
    app.billing.add_follow_up(found["id"], "Mask refitted", Actor("rtt.partner.b", PARTNER))
    app.billing.close_incident(found["id"], "No dosimetric impact", Actor("physicist.p", PARTNER))

    [incident] = ledger.fresh().incidents()
    assert incident["id"] == found["id"]
    assert (incident["centre"], incident["home_centre"], incident["course_id"], incident["fraction"]) == (PARTNER, HOME, course, 1)
    assert (incident["category"], incident["severity"], incident["status"]) == ("positioning", "medium", "closed")
    assert incident["registered_by"] == "rtt.partner.a"
    assert [(f["text"], f["by"]) for f in incident["follow_ups"]] == [("Mask refitted", "rtt.partner.b")]
    assert (incident["resolution"], incident["closed_by"]) == ("No dosimetric impact", "physicist.p")

    with pytest.raises(errors.IncidentClosed):
        app.billing.add_follow_up(found["id"], "too late", Actor("rtt.partner.b", PARTNER))
    with pytest.raises(errors.IncidentClosed):
        app.billing.close_incident(found["id"], "again", Actor("rtt.partner.b", PARTNER))


def test_bad_incident_input_names_the_field_and_writes_nothing(ledger):
    course = register(ledger)
    app, who = ledger.app, Actor("rtt", PARTNER)
    ok = {"centre": PARTNER, "category": "equipment", "severity": "low", "description": "MLC leaf 23 stuck"}
    for bad, field in [
        ({"category": "gossip"}, "category"),
        ({"severity": "catastrophic"}, "severity"),
        ({"description": ""}, "description"),
        ({"fraction": 0, "course_id": course}, "fraction"),
        ({"fraction": 2}, "fraction"),  # a fraction without its course
    ]:
        with pytest.raises(errors.InvalidCommand) as refused:
            app.billing.register_incident(ok | bad, who)
        assert refused.value.field == field
    with pytest.raises(errors.CourseNotFound):
        app.billing.register_incident(ok | {"course_id": "00000000-0000-0000-0000-000000000000"}, who)
    with pytest.raises(errors.IncidentNotFound):
        app.billing.close_incident("00000000-0000-0000-0000-000000000000", "", who)
    assert ledger.fresh().incidents() == []


def test_a_retried_registration_records_one_incident(ledger):
    data = {"centre": HOME, "category": "data-loss-or-restore", "severity": "high",
            "description": "OIS restored from yesterday's backup: today's records lost"}
    first = ledger.app.billing.register_incident(data, Actor("physicist", HOME), request_id="inc-1")
    again = ledger.app.billing.register_incident(data, Actor("physicist", HOME), request_id="inc-1")
    assert first == again
    assert len(ledger.fresh().incidents()) == 1


@pytest.mark.parametrize(
    "situation, refusal",
    [
        ("beyond the prescription", errors.FractionOutOfRange),
        ("the same fraction twice", errors.FractionAlreadyDelivered),
        ("a suspended course", errors.CourseNotActive),
        ("a completed course", errors.CourseNotActive),
        ("a continuation of nothing", errors.NothingToContinue),
    ],
)
def test_every_refusal_by_a_safety_rule_is_a_near_miss_and_the_course_is_unchanged(ledger, situation, refusal):
    course = register(ledger, fractions=3)
    log(ledger, course, 1)
    number, delivery_type = 2, "TREATMENT"
    if situation == "beyond the prescription":
        number = 4
    elif situation == "the same fraction twice":
        number = 1
    elif situation == "a suspended course":
        ledger.app.suspend_course(course, "skin reaction", Actor("dr.x", HOME))
    elif situation == "a completed course":
        ledger.app.complete_course(course, "stopped early", Actor("dr.x", HOME))
    else:
        delivery_type = "CONTINUATION"
    before = course_events(ledger, course)
    tried_at = START + timedelta(days=9, hours=8)
    with pytest.raises(refusal):
        ledger.app.log_fraction(
            course, {"number": number, "centre": OTHER, "machine": "LINAC-7", "operator": "rtt.third",
                     "delivered_at": tried_at, "delivery_type": delivery_type,
                     "beams": [{"number": 1, "delivered_mu": "40"}] if delivery_type == "CONTINUATION" else None},
            Actor("rtt.third", OTHER),
        )
    assert course_events(ledger, course) == before, "a refusal must not change the course"

    [near_miss] = ledger.fresh().incidents(category="near-miss")
    assert (near_miss["course_id"], near_miss["home_centre"], near_miss["fraction"]) == (course, HOME, number)
    assert (near_miss["centre"], near_miss["registered_by"]) == (OTHER, "rtt.third")
    assert datetime.fromisoformat(near_miss["occurred_at"]) == tried_at
    assert near_miss["attempt"]["refusal"] == refusal.code
    assert near_miss["attempt"]["machine"] == "LINAC-7"
    assert "rtt.third" in near_miss["description"] and OTHER in near_miss["description"]
    assert near_miss["status"] == "open"


def test_a_retried_refused_request_is_one_near_miss_and_a_new_attempt_is_another(ledger):
    course = register(ledger, fractions=2)
    log(ledger, course, 1)
    for _ in range(2):
        with pytest.raises(errors.FractionAlreadyDelivered):
            log(ledger, course, 1, operator="rtt.b", request_id="tablet-42")
    assert len(ledger.fresh().incidents(category="near-miss")) == 1
    with pytest.raises(errors.FractionAlreadyDelivered):
        log(ledger, course, 1, operator="rtt.b")  # tried again, without a request id: a second attempt
    assert len(ledger.fresh().incidents(category="near-miss")) == 2
    # The refused request id was never answered, so it can still be used for what was meant.
    assert log(ledger, course, 2, operator="rtt.b", request_id="tablet-42")["number"] == 2


def test_incidents_appear_in_the_course_summary_and_go_back_to_the_home_centre(ledger):
    ours = register(ledger, "P-001")
    theirs = register(ledger, "P-002", home=PARTNER)
    log(ledger, ours, 1)
    app = ledger.app
    app.billing.register_incident({"centre": PARTNER, "course_id": ours, "category": "communication", "severity": "low",
                           "description": "Plan report arrived without the setup photo"}, Actor("rtt", PARTNER))
    app.billing.register_incident({"centre": HOME, "category": "equipment", "severity": "medium",
                           "description": "Backup linac interlock"}, Actor("rtt", HOME))
    app.billing.register_incident({"centre": HOME, "course_id": theirs, "category": "other", "severity": "low",
                           "description": "Patient of the partner asked for transport"}, Actor("rtt", HOME))
    app.billing.register_incident({"centre": PARTNER, "category": "equipment", "severity": "low",
                           "description": "Partner's own printer"}, Actor("rtt", PARTNER))
    with pytest.raises(errors.FractionAlreadyDelivered):
        log(ledger, ours, 1, operator="rtt.partner.b")

    read = ledger.fresh()
    summary = read.course(ours)
    assert [i["category"] for i in summary["incidents"]] == ["communication", "near-miss"]
    assert read.incidents_for_course(ours) == summary["incidents"]
    back_home = [i["description"][:20] for i in read.incidents(home_centre=HOME)]
    assert back_home == ["Plan report arrived ", "Backup linac interlo", "Patient of the partn", "Refused log fraction"]


def test_rebuilding_the_read_model_gives_the_same_incident_rows(ledger):
    course = register(ledger)
    log(ledger, course, 1)
    found = ledger.app.billing.register_incident({"centre": PARTNER, "course_id": course, "category": "dose-deviation",
                                          "severity": "high", "description": "Wedge missing"}, Actor("rtt", PARTNER))
    ledger.app.billing.add_follow_up(found["id"], "Physicist informed", Actor("rtt", PARTNER))
    with pytest.raises(errors.FractionOutOfRange):
        log(ledger, course, 9)
    before = ledger.fresh().dump()
    ledger.read.rebuild(ledger.app)
    assert ledger.read.dump() == before
    assert len(before["incidents"]) == 2


def test_cli_registers_lists_and_exports_incidents_for_the_home_centre(tmp_path):
    db = tmp_path / "ledger.sqlite3"
    course = json.loads(cli("course", "register", "--patient-id", "P-9", "--patient-name", "DE SMET^JAN",
                            "--plan-uid", "1.2.3.9", "--plan-label", "Prostate", "--fractions", "2",
                            "--home-centre", HOME, "--beam", "1=200", "--json", db=db, check=True).stdout)["id"]
    cli("fraction", "log", course, "--number", "1", "--centre", PARTNER, "--machine", "TB2", "--operator", "rtt.p",
        "--at", "2026-11-03T18:00+01:00", db=db, check=True)
    refused = cli("fraction", "log", course, "--number", "3", "--centre", PARTNER, "--machine", "TB2",
                  "--operator", "rtt.q", "--at", "2026-11-04T18:00+01:00", db=db)
    assert refused.returncode == 1 and "outside the prescription" in refused.stderr
    made = cli("incident", "register", "--centre", PARTNER, "--course", course, "--fraction", "1",
               "--category", "extra-or-missed-fraction", "--severity", "high", "--by", "rtt.p",
               "--description", "Fraction 1 registered late, after a restore", "--json", db=db, check=True)
    incident_id = json.loads(made.stdout)["id"]
    cli("incident", "follow-up", incident_id, "--text", "Checked against the linac log", "--by", "physicist.p",
        db=db, check=True)
    bad = cli("incident", "register", "--centre", PARTNER, "--category", "gossip", "--severity", "low",
              "--description", "x", db=db)
    assert bad.returncode == 2 and "--category" in bad.stderr

    listed = json.loads(cli("incident", "list", "--json", db=db, check=True).stdout)
    assert isinstance(listed, list)
    assert [(i["category"], i["fraction"]) for i in listed] == [("near-miss", 3), ("extra-or-missed-fraction", 1)]

    exported = json.loads(cli("incident", "export", "--centre", HOME, "--json", db=db, check=True).stdout)
    assert [i["id"] for i in exported] == [i["id"] for i in listed]
    rows = list(csv.DictReader(io.StringIO(cli("incident", "export", "--centre", HOME, "--csv", db=db, check=True).stdout)))
    assert [(r["category"], r["refusal"], r["course_id"]) for r in rows] == [
        ("near-miss", "fraction_out_of_range", course), ("extra-or-missed-fraction", "", course)]
    assert "physicist.p: Checked against the linac log" in rows[1]["follow_ups"]
    nothing = cli("incident", "export", "--centre", PARTNER, "--json", db=db, check=True)
    assert [i["centre"] for i in json.loads(nothing.stdout)] == [PARTNER, PARTNER]  # what it registered itself


def test_the_summary_document_sent_home_lists_the_course_incidents(ledger):
    import base64

    import hl7
    from pypdf import PdfReader

    from adapters.hl7.messages import MessageBuilder
    from adapters.hl7.replay import course_messages

    course = register(ledger, fractions=2)
    log(ledger, course, 1)
    log(ledger, course, 2)
    with pytest.raises(errors.FractionOutOfRange):
        log(ledger, course, 3, operator="rtt.partner.c")
    ledger.app.billing.register_incident({"centre": PARTNER, "course_id": course, "fraction": 2, "category": "positioning",
                                  "severity": "medium", "description": "Couch shift of 6 mm corrected"},
                                 Actor("rtt.partner.a", PARTNER))
    ledger.app.complete_course(course, "all fractions given", Actor("dr.home", HOME))

    [mdm] = [m for m in course_messages(ledger, MessageBuilder(), course_id=course) if m.kind == "MDM"]
    pdf = base64.b64decode(str(hl7.parse(mdm.er7).segment("OBX")[5][0][4]))
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages).split())
    assert "positioning: Couch shift of 6 mm corrected (open)" in text
    assert "near-miss: Refused log fraction by rtt.partner.c" in text
    assert "No incident recorded" not in text
