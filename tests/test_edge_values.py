"""Values the home systems cannot take back are refused when they come in (issue 12, point 8).

Everything the ledger records is later written into DICOM records (TreatmentMachineName is SH:
16 characters; PatientID LO: 64; PatientName and OperatorsName PN: 64 per component group; a
backslash separates values) and HL7 messages (a CR ends a segment). A value that does not fit
is refused at the edge, naming the field, and nothing is written; HL7 escapes what it can carry.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from litestar.testing import TestClient

from adapters.dicom.baseline import Baseline
from adapters.dicom.export import export_all
from adapters.dicom.plans import import_plan_file
from adapters.hl7.er7 import escape, validate
from adapters.hl7.messages import CHARGE, CREDIT
from adapters.http import create_app
from ledger import errors
from ledger.service import Actor
from tests.conftest import Clock, cli
from tests.http_support import PARTNER, account_name, auth, fraction_body, seed_accounts, seed_course
from tools.dicom_samples import sample_plan, write_plan

HOME = "HOME"
DAY1 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=1)))
PHYSICIST = Actor("physicist", HOME)
RTT = Actor("rtt.anna", HOME)
SEVENTY = "A" * 70


def course_body(patient: dict | None = None, **plan) -> dict:
    return {
        "patient": {"id": "P-EDGE", "name": "MÜLLER-LEFÈVRE^ZOË", **(patient or {})},
        "home_centre": HOME,
        "plan": {"uid": "1.2.826.0.1.3680043.10.99", "label": "Prostate VMAT 60Gy/20", "machine": "HOME-LINAC-1",
                 "fraction_groups": [{"number": 1, "fractions_planned": 20, "beams": [
                     {"number": 1, "name": "ARC 1", "meterset": "250.5"}]}], **plan},
    }


def fraction(**changes) -> dict:
    return {"number": 1, "centre": HOME, "machine": "HOME-LINAC-1", "operator": "rtt.anna",
            "delivered_at": DAY1, **changes}


def events(ledger) -> int:
    return ledger.app.recorder.max_notification_id() or 0


# ---- through the service: the field is named, nothing is written ---------------------------

REGISTRATIONS = [
    ("patient.id", {"patient": {"id": "P\\001"}}),
    ("patient.id", {"patient": {"id": "P-001\n"}}),  # a trailing newline too
    ("patient.name", {"patient": {"name": "DUPONT\\MARIE"}}),  # would be two names in DICOM
    ("patient.name", {"patient": {"name": "DUPONT^MARIE\r\nPID|1"}}),
    ("patient.name", {"patient": {"name": SEVENTY + "^MARIE"}}),  # one group of 76 characters
    ("patient.name", {"patient": {"name": "A^B^C^D^E^F"}}),  # six components
    ("plan.machine", {"machine": "PARTNER-TRUEBEAM-2"}),  # 18 > SH 16
    ("plan.label", {"label": "L" * 65}),
    ("plan.label", {"label": "Prostate\x00VMAT"}),
    ("plan.fraction_groups[0].beams[0].name", {"fraction_groups": [{"number": 1, "fractions_planned": 20, "beams": [
        {"number": 1, "name": "ARC\\1", "meterset": "250.5"}]}]}),
    ("plan.fraction_groups[0].beams[0].machine", {"fraction_groups": [{"number": 1, "fractions_planned": 20, "beams": [
        {"number": 1, "machine": "M" * 17, "meterset": "250.5"}]}]}),
    ("plan.source.study_id", {"source": {"study_id": "S" * 17}}),
    ("plan.source.referring_physician", {"source": {"referring_physician": "DR\\WHO"}}),
]


@pytest.mark.parametrize("field, change", REGISTRATIONS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(REGISTRATIONS)])
def test_a_registration_the_ois_could_not_take_back_is_refused_naming_the_field(ledger, field, change):
    body = course_body(change.get("patient"), **{k: v for k, v in change.items() if k != "patient"})
    before = events(ledger)
    with pytest.raises(errors.InvalidCommand) as refused:
        ledger.app.register_course(body, PHYSICIST)
    assert refused.value.field == field, refused.value
    assert events(ledger) == before
    # Accents, hyphens and ^ are PN; a plan name of 21 characters is an RTPlanName (LO 64):
    # the ledger never writes the label into the 16-character RTPlanLabel.
    assert ledger.app.register_course(course_body(), PHYSICIST)["status"] == "registered"


FRACTIONS = [
    ("machine", {"machine": "PARTNER-TRUEBEAM-2"}),  # 18 characters: TreatmentMachineName is SH 16
    ("machine", {"machine": "TB\\2"}),  # a backslash: VM=2 in DICOM
    ("machine", {"machine": "TB2\n"}),
    ("operator", {"operator": SEVENTY}),  # a 70-character component: OperatorsName is PN, 64 per group
    ("operator", {"operator": "anna\\bert"}),
    ("operator", {"operator": "rtt.anna\r"}),
    ("operator", {"operator": "ANNA=" + "B" * 65}),  # the second (ideographic) group too long
    ("operator", {"operator": "A=B=C=D"}),  # four component groups
    ("note", {"note": "shift 4 mm\r\nMSH|^~\\&"}),  # a CR would end an HL7 segment
    ("note", {"note": "shift\x00 4 mm"}),
    ("note", {"note": "tab\tseparated"}),
    ("note", {"note": "x" * 1025}),  # TreatmentStatusComment is ST: 1024 characters
]


@pytest.mark.parametrize("field, change", FRACTIONS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(FRACTIONS)])
def test_a_fraction_the_ois_could_not_take_back_is_refused_naming_the_field(ledger, field, change):
    course = ledger.app.register_course(course_body(), PHYSICIST)["id"]
    before = events(ledger)
    with pytest.raises(errors.InvalidCommand) as refused:
        ledger.app.log_fraction(course, fraction(**change), RTT)
    assert refused.value.field == field, refused.value
    assert events(ledger) == before
    assert ledger.app.get_course(course).records == []


def test_a_note_may_span_lines_with_line_feeds_but_never_carriage_returns(ledger):
    course = ledger.app.register_course(course_body(), PHYSICIST)["id"]
    with pytest.raises(errors.InvalidCommand, match="note"):
        ledger.app.log_fraction(course, fraction(note="Shift 4 mm on CBCT\r\ncorrected"), RTT)
    note = "Shift 4 mm on CBCT\ncorrected, C:\\plans kept"
    ledger.app.log_fraction(course, fraction(note=note, machine="M" * 16, operator="A" * 59 + "^ANNA"), RTT)
    assert [r.note for r in ledger.app.get_course(course).records] == [note]


@pytest.mark.parametrize("by", ["bert\\carl", "B" * 70, "bert\r\n"])
def test_a_verifier_whose_name_cannot_be_an_operators_name_is_refused(ledger, by):
    course = ledger.app.register_course(course_body(), PHYSICIST)["id"]
    ledger.app.log_fraction(course, fraction(), RTT)
    before = events(ledger)
    with pytest.raises(errors.InvalidCommand) as refused:
        ledger.app.verify_fraction(course, 1, by, PHYSICIST)
    assert refused.value.field == "by"
    assert events(ledger) == before and ledger.app.get_course(course).records[0].verified_by is None


@pytest.mark.parametrize("field, reason, by", [("reason", "wrong\rpatient", "bert"), ("reason", "a\x00b", "bert"),
                                               ("by", "wrong patient", "B" * 70), ("by", "wrong patient", "b\\c")])
def test_a_void_with_a_reason_or_name_the_home_systems_cannot_take_is_refused(ledger, field, reason, by):
    course = ledger.app.register_course(course_body(), PHYSICIST)["id"]
    ledger.app.log_fraction(course, fraction(), RTT)
    before = events(ledger)
    with pytest.raises(errors.InvalidCommand) as refused:
        ledger.app.void_fraction(course, 1, reason, by, PHYSICIST)
    assert refused.value.field == field
    assert events(ledger) == before and not ledger.app.get_course(course).records[0].voided


@pytest.mark.parametrize("call, field", [
    (lambda app, c: app.suspend_course(c, "skin\rreaction", PHYSICIST), "reason"),
    (lambda app, c: app.complete_course(c, "done\x1b", PHYSICIST), "reason"),
    (lambda app, c: app.billing.register_incident({"centre": HOME, "category": "positioning", "severity": "low",
                                           "description": "shift\x00", "course_id": c}, PHYSICIST), "description"),
    (lambda app, c: app.billing.register_incident({"centre": HOME, "category": "positioning", "severity": "low",
                                           "description": "shift", "by": "rtt\\anna"}, PHYSICIST), "by"),
    (lambda app, c: app.add_fallback_plan(c, {**course_body()["plan"], "uid": "1.2.3.9", "machine": "M" * 17},
                                          PHYSICIST), "machine"),
])
def test_other_commands_refuse_text_the_home_systems_cannot_take(ledger, call, field):
    course = ledger.app.register_course(course_body(), PHYSICIST)["id"]
    before = events(ledger)
    with pytest.raises(errors.InvalidCommand) as refused:
        call(ledger.app, course)
    assert refused.value.field == field
    assert events(ledger) == before


def test_incident_follow_up_and_close_refuse_control_characters(ledger):
    incident = ledger.app.billing.register_incident({"centre": HOME, "category": "positioning", "severity": "low",
                                             "description": "Shift 4 mm\ncorrected"}, PHYSICIST)["id"]
    before = events(ledger)
    for call, field in ((lambda: ledger.app.billing.add_follow_up(incident, "mask\rremade", PHYSICIST), "text"),
                        (lambda: ledger.app.billing.add_follow_up(incident, "ok", PHYSICIST, by="x" * 70), "by"),
                        (lambda: ledger.app.billing.close_incident(incident, "closed\x00", PHYSICIST), "resolution")):
        with pytest.raises(errors.InvalidCommand) as refused:
            call()
        assert refused.value.field == field
    assert events(ledger) == before


# ---- over HTTP: 400 naming the field, nothing written --------------------------------------


@pytest.fixture
def api(ledger):
    seed_accounts(ledger.app)
    ledger.course_id = seed_course(ledger.app)
    with TestClient(create_app(ledger)) as client:
        client.ledger = ledger
        yield client


@pytest.mark.parametrize("field, change", [
    ("machine", {"machine": "PARTNER-TRUEBEAM-2"}), ("machine", {"machine": "TB\\2"}),
    ("note", {"note": "line\r\nMSH|"}), ("note", {"note": "nul\x00"}),
])
def test_http_log_refuses_with_400_naming_the_field(api, field, change):
    before = events(api.ledger)
    r = api.post(f"/api/courses/{api.ledger.course_id}/fractions", headers=auth(account_name("rtt", PARTNER)),
                 json=fraction_body(1, **change))
    assert r.status_code == 400, r.text
    assert [f["field"] for f in r.json()["fields"]] == [field]
    assert field in r.json()["message"]
    assert events(api.ledger) == before


@pytest.mark.parametrize("field, patient", [("patient.name", {"name": "DUPONT\\MARIE"}),
                                            ("patient.name", {"name": SEVENTY}),
                                            ("patient.id", {"id": "P\r1"})])
def test_http_registration_refuses_with_400_naming_the_field(api, field, patient):
    before = events(api.ledger)
    body = course_body(patient)
    r = api.post("/api/courses", headers=auth(account_name("physicist", "HOME")), json=body)
    assert r.status_code == 400, r.text
    assert [f["field"] for f in r.json()["fields"]] == [field]
    assert events(api.ledger) == before


def test_http_void_reason_with_a_carriage_return_is_refused(api):
    cid = api.ledger.course_id
    rtt = auth(account_name("rtt", PARTNER))
    assert api.post(f"/api/courses/{cid}/fractions", headers=rtt, json=fraction_body(1)).status_code == 201
    before = events(api.ledger)
    r = api.post(f"/api/courses/{cid}/fractions/1/void", headers=rtt, json={"reason": "wrong\rpatient"})
    assert r.status_code == 400 and r.json()["fields"][0]["field"] == "reason"
    assert events(api.ledger) == before


# ---- on the command line: exit 1, the field on stderr, nothing written ---------------------


def test_cli_refuses_a_long_machine_a_backslash_name_and_a_long_operator(tmp_path):
    db = tmp_path / "ledger.sqlite3"
    base = ["course", "register", "--patient-id", "P-001", "--plan-uid", "1.2.826.0.1.3680043.10.7",
            "--plan-label", "Breast 40Gy/15", "--fractions", "15", "--home-centre", "HOME", "--beam", "1=110.5"]
    bad_name = cli(*base, "--patient-name", "PEETERS\\AN", db=db)
    assert bad_name.returncode == 1 and "patient.name" in bad_name.stderr and "backslash" in bad_name.stderr
    cid = json.loads(cli(*base, "--patient-name", "PEETERS^AN", "--json", db=db, check=True).stdout)["id"]
    log = ["fraction", "log", cid, "--number", "1", "--centre", "HOME", "--at", "2026-11-23T09:10+01:00"]
    long_machine = cli(*log, "--machine", "PARTNER-TRUEBEAM-2", "--operator", "rtt.anna", db=db)
    assert long_machine.returncode == 1 and "machine" in long_machine.stderr and "16" in long_machine.stderr
    long_operator = cli(*log, "--machine", "TB2", "--operator", SEVENTY, db=db)
    assert long_operator.returncode == 1 and "operator" in long_operator.stderr and "64" in long_operator.stderr
    note = cli(*log, "--machine", "TB2", "--operator", "rtt.anna", "--note", "a\rb", db=db)
    assert note.returncode == 1 and "note" in note.stderr
    written = [e["type"] for e in json.loads(cli("events", "--json", db=db, check=True).stdout)
               if e["type"] != "AccessLogEntry.Recorded"]  # the reads are logged
    assert written == ["Course.Registered", "PlanCourse.Registered"], "only the registration"


# ---- DICOM files read at import: refused per file, the attribute named ----------------------


def plan_with(tmp_path, name: str, **attributes):
    ds = sample_plan("PAT-EDGE", "PEETERS^AN", "Breast")
    for keyword, value in attributes.items():
        if keyword in ("TreatmentMachineName", "BeamName"):
            for beam in ds.BeamSequence:
                setattr(beam, keyword, value)
        else:
            setattr(ds, keyword, value)
    return write_plan(ds, tmp_path / f"{name}.dcm")


@pytest.mark.filterwarnings("ignore:The (value|PN component) length:UserWarning")  # invalid on purpose
@pytest.mark.parametrize("keyword, value", [
    ("TreatmentMachineName", "PARTNER-TRUEBEAM-2"), ("TreatmentMachineName", "TB\\2"),
    ("PatientName", "PEETERS\\AN"), ("PatientName", SEVENTY), ("PatientID", "P\\1"), ("BeamName", "B" * 65),
    ("StudyID", "S" * 17), ("ReferringPhysicianName", "DR\\WHO"),
])
def test_a_plan_file_with_a_value_that_cannot_be_written_back_is_refused_by_attribute(ledger, tmp_path, keyword, value):
    path = plan_with(tmp_path, "bad", **{keyword: value})
    before = events(ledger)
    answer = import_plan_file(ledger.app, path, PHYSICIST, HOME)
    assert answer["status"] == "error" and keyword in answer["error"], answer
    assert events(ledger) == before
    good = import_plan_file(ledger.app, plan_with(tmp_path, "good"), PHYSICIST, HOME)
    assert good["status"] == "registered", good


@pytest.mark.filterwarnings("ignore:The (value|PN component) length:UserWarning")  # invalid on purpose
def test_a_baseline_record_with_a_machine_longer_than_16_is_refused_by_attribute(ledger, tmp_path):
    from pydicom import dcmread

    source = __import__("adapters.runtime", fromlist=["Ledger"]).Ledger(str(tmp_path / "ois.sqlite3"), clock=Clock())
    try:
        plan = plan_with(tmp_path, "plan")
        cid = import_plan_file(source.app, plan, PHYSICIST, HOME)["course_id"]
        source.app.log_fraction(cid, fraction(machine="LINAC-1"), RTT)
        source.app.log_fraction(cid, fraction(number=2, delivered_at=DAY1 + timedelta(days=1), machine="LINAC-1",
                                              operator="rtt.bert"), Actor("rtt.bert", HOME))
        out = tmp_path / "ois"
        list(export_all(source.app, source.fresh(), out, kinds=("record",)))
    finally:
        source.close()
    first, second = sorted((out / cid).glob("record_*.dcm"))
    ds = dcmread(first)
    ds.TreatmentMachineSequence[0].TreatmentMachineName = "PARTNER-TRUEBEAM-2"
    ds.save_as(first)
    ds = dcmread(second)
    ds.OperatorsName = ["rtt.bert", SEVENTY]
    ds.save_as(second)
    import_plan_file(ledger.app, plan, PHYSICIST, HOME)
    before = events(ledger)
    answers = list(Baseline(ledger, PHYSICIST, DAY1.tzinfo).import_files([first, second]))
    assert [a["status"] for a in answers] == ["error", "error"]
    assert "TreatmentMachineName" in answers[0]["error"] and "OperatorsName" in answers[1]["error"]
    assert events(ledger) == before and ledger.app.get_course(cid).records == []


# ---- HL7: what can be carried is escaped, never a raw control character ---------------------


def test_hl7_escapes_every_control_character_so_a_segment_cannot_be_broken():
    controls = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))]
    for char in controls:
        escaped = escape(f"wrong{char}patient")
        assert not any(c in controls for c in escaped), repr(char)
        assert escaped.startswith("wrong\\X") and escaped.endswith("\\patient")
    assert escape("a\rb\x00c\x85") == "a\\X0D\\b\\X00\\c\\XC285\\"  # hex of the UTF-8 bytes (MSH-18)
    assert escape("C:\\a|b^c&d~e") == "C:\\E\\a\\F\\b\\S\\c\\T\\d\\R\\e"


def test_a_credit_comment_with_line_feeds_stays_one_valid_message():
    values = {"sending_application": "FRACTION-LEDGER", "sending_facility": "HOME", "receiving_application": "BILLING",
              "time": DAY1, "control_id": "CD1", "patient_id": "P-1", "home": "HOME", "family": "PEETERS",
              "transaction_id": "T1", "delivered_at": DAY1, "code": "RTF", "coding_system": "99RTL", "centre": "HOME",
              "machine": "TB2", "operator": "rtt.anna", "comment": "voided:\nlogged twice\x00\rMSH|^~\\&|EVIL"}
    message = CREDIT.fill(**values)
    assert message.count("\r") == len(CREDIT.segments) and "\n" not in message and "\x00" not in message
    validate(message)
    assert [s[:3] for s in message.split("\r") if s] == ["MSH", "EVN", "PID", "PV1", "FT1", "NTE"]
    assert CHARGE.fill(**{k: v for k, v in values.items() if k != "comment"}).count("\r") == len(CHARGE.segments)
