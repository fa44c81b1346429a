"""DFT^P03 charges and credits, MDM^T02 and ADT^A23: content, validity, determinism."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import hl7
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.hl7 import messages as m
from adapters.hl7.codes import ProcedureCodes
from adapters.hl7.config import Hl7Config
from adapters.hl7.er7 import Hl7ValueError, escape
from adapters.hl7.messages import MessageBuilder
from adapters.hl7.reference import charge_with_hl7apy
from adapters.hl7.replay import course_messages, export_to
from adapters.runtime import Ledger
from tests.hl7_scenario import HARD_NAMES, HOME, PARTNER, PHYSICIST, T0, check_everywhere, deliver, read_folder, register
from tests.conftest import Clock


@pytest.fixture
def book(tmp_path, monkeypatch):
    monkeypatch.delenv("FRACTION_LEDGER_READ_DB", raising=False)
    with Ledger(str(tmp_path / "ledger.sqlite3"), clock=Clock()) as opened:
        yield opened


def export(book, out: Path, builder: MessageBuilder | None = None, **kw) -> dict[str, str]:
    export_to(book, course_messages(book, builder or MessageBuilder(), **kw), out, PHYSICIST)
    return read_folder(out)


def parsed_by_kind(files: dict[str, str]) -> dict[str, list[hl7.Message]]:
    out: dict[str, list[hl7.Message]] = {}
    for text in files.values():
        msg = check_everywhere(text)
        kind = str(msg.segment("MSH")[9][0][0])
        if kind == "DFT":
            kind += "-" + str(msg.segment("FT1")[6])
        out.setdefault(kind, []).append(msg)
    return out


def test_a_charge_per_delivered_fraction_with_patient_code_and_performing_centre(book, tmp_path):
    app = book.app
    course = register(app, "P-1", "MÜLLER-LEFÈVRE^ZOË", dynamic=True)
    deliver(app, course, 1, HOME)
    deliver(app, course, 2, PARTNER, verify=False, beams=[{"number": 1, "delivered_mu": "50", "termination": "MACHINE"}])
    deliver(app, course, 2, PARTNER, verify=False, delivery_type="CONTINUATION",  # the same fraction: no second charge
            beams=[{"number": 1, "delivered_mu": "45.1"}, {"number": 2, "delivered_mu": "96.3"}])
    files = export(book, tmp_path / "out")
    charges = parsed_by_kind(files)["DFT-CG"]
    assert len(charges) == 2
    assert all(name.startswith("billing/") for name in files)
    by_centre = {str(c.segment("FT1")[16][0][3]): c for c in charges}
    assert set(by_centre) == {HOME, PARTNER}
    partner = by_centre[PARTNER]
    assert str(partner.segment("MSH")[9]) == "DFT^P03^DFT_P03"
    assert str(partner.segment("MSH")[18]) == "UNICODE UTF-8"
    assert str(partner.segment("PID")[3]) == f"P-1^^^{HOME}^MR"
    name = partner.segment("PID")[5][0]
    assert [partner.unescape(str(name[0])), partner.unescape(str(name[1]))] == ["MÜLLER-LEFÈVRE", "ZOË"]
    ft1 = partner.segment("FT1")
    assert str(ft1[6]) == "CG"
    assert str(ft1[4]) == "20261103083000+0100"  # delivered_at, as told by the partner
    assert str(ft1[7]) == "RTF-IMAT^Radiotherapy fraction, intensity modulated^99RTL"
    assert partner.unescape(str(ft1[16][0][8])) == "TB2 | bunker 3"
    assert str(ft1[20]) == "rtt.partner-rt"
    assert len(str(ft1[2])) == 12 and len(str(partner.segment("MSH")[10])) == 20
    assert str(ft1[2]) != str(by_centre[HOME].segment("FT1")[2])


def test_same_log_exports_identical_messages(book, tmp_path):
    app = book.app
    course = register(app, "P-2", "D'HONDT^JAN")
    for n in (1, 2, 3):
        deliver(app, course, n)
    app.complete_course(course, "done", PHYSICIST)
    first = export(book, tmp_path / "a")
    second = export(book, tmp_path / "b")
    assert first == second and len(first) == 5  # 3 charges, summary, purge


def test_voided_after_export_gets_a_credit_voided_before_never_appears(book, tmp_path):
    app = book.app
    course = register(app, "P-3", "PEETERS^AN")
    for n in (1, 2, 3):
        deliver(app, course, n)
    app.void_fraction(course, 3, "logged twice by mistake", "rtt.x", PHYSICIST)  # before any export
    before = parsed_by_kind(export(book, tmp_path / "a"))
    assert len(before["DFT-CG"]) == 2 and "DFT-CD" not in before
    app.void_fraction(course, 2, "wrong patient", "rtt.x", PHYSICIST)  # after billing got it
    after = parsed_by_kind(export(book, tmp_path / "b"))
    assert len(after["DFT-CG"]) == 2  # the charge billing may hold stays, with ...
    (credit,) = after["DFT-CD"]  # ... its credit: never a silent disappearance
    charge2 = next(c for c in after["DFT-CG"] if str(c.segment("FT1")[4]).startswith("20261103"))
    ft1 = credit.segment("FT1")
    assert str(ft1[4]) == str(charge2.segment("FT1")[4]) and str(ft1[7]) == str(charge2.segment("FT1")[7])
    assert str(ft1[2]) != str(charge2.segment("FT1")[2])
    note = credit.unescape(str(credit.segment("NTE")[3]))
    assert str(charge2.segment("FT1")[2]) in note and "wrong patient" in note


def test_completed_course_yields_summary_document_and_pacs_purge(book, tmp_path):
    app = book.app
    course = register(app, "P-4", "MÜLLER-LEFÈVRE^ZOË", fractions=2)
    deliver(app, course, 1)
    deliver(app, course, 2, PARTNER)
    active = parsed_by_kind(export(book, tmp_path / "a"))
    assert set(active) == {"DFT-CG"}
    app.complete_course(course, "all fractions given", PHYSICIST)
    files = export(book, tmp_path / "b")
    kinds = parsed_by_kind(files)
    (mdm,) = kinds["MDM"]
    (adt,) = kinds["ADT"]
    assert any(k.startswith("his/") for k in files) and any(k.startswith("pacs/") for k in files)
    assert str(adt.segment("MSH")[9]) == "ADT^A23^ADT_A21"
    assert str(adt.segment("MSH")[5]) == "CLOUD-PACS"
    assert str(adt.segment("PID")[3]) == f"P-4^^^{HOME}^MR"
    obx = mdm.segment("OBX")
    assert str(obx[2]) == "ED" and str(obx[5][0][1]) == "AP" and str(obx[5][0][2]) == "PDF"
    import base64

    pdf = base64.b64decode(str(obx[5][0][4]))
    assert pdf.startswith(b"%PDF-")
    assert str(mdm.segment("TXA")[12]) and str(mdm.segment("EVN")[2]) == str(adt.segment("EVN")[2])


def test_since_keeps_only_facts_recorded_from_then(book, tmp_path):
    app = book.app
    course = register(app, "P-5", "JANSSENS^MARC")
    first = deliver(app, course, 1)
    second = deliver(app, course, 2)
    files = export(book, tmp_path / "a", since=second["recorded_at"])
    (only,) = [check_everywhere(t) for t in files.values()]
    assert str(only.segment("FT1")[4]).startswith("20261103")
    assert first["recorded_at"] < second["recorded_at"]


def test_procedure_code_mapping_by_technique_and_centre_from_a_file(book, tmp_path):
    codes = tmp_path / "codes.toml"
    codes.write_text(
        'coding_system = "RIZIV"\n[default]\n"*" = { code = "444000", text = "RT" }\n'
        '"PHOTON/STATIC" = { code = "444113", text = "3D" }\n'
        f'[centres."{PARTNER}"]\n"PHOTON/STATIC" = {{ code = "444124", text = "3D at partner" }}\n')
    app = book.app
    course = register(app, "P-6", "A^B")
    deliver(app, course, 1, HOME)
    deliver(app, course, 2, PARTNER)
    builder = MessageBuilder(codes=ProcedureCodes.load(codes))
    charges = parsed_by_kind(export(book, tmp_path / "out", builder))["DFT-CG"]
    got = {str(c.segment("FT1")[16][0][3]): str(c.segment("FT1")[7]) for c in charges}
    assert got == {HOME: "444113^3D^RIZIV", PARTNER: "444124^3D at partner^RIZIV"}


@pytest.mark.parametrize("text, complaint", [
    ('coding_system = "L"\n[default]\n"PHOTON/STATIC" = { code = "X" }\n', '"*"'),
    ('coding_system = "L"\n[default]\n"*" = { code = "" }\n', "code"),
    ('coding_system = "L"\n[default\n', "not valid"),
])
def test_a_bad_code_file_is_refused_with_the_reason(tmp_path, text, complaint):
    path = tmp_path / "codes.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=complaint):
        ProcedureCodes.load(path)


def test_names_with_every_delimiter_round_trip_through_both_parsers(book, tmp_path):
    app = book.app
    for i, name in enumerate(HARD_NAMES):
        deliver(app, register(app, f"H-{i}|^&~", name), 1)
    charges = parsed_by_kind(export(book, tmp_path / "out"))["DFT-CG"]
    got = {}
    for c in charges:
        pid = c.segment("PID")
        family, given = pid[5][0][0], pid[5][0][1]
        got[c.unescape(str(pid[3][0][0]))] = f"{c.unescape(str(family))}^{c.unescape(str(given))}"
    assert got == {f"H-{i}|^&~": name for i, name in enumerate(HARD_NAMES)}


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("|^&~\\\r\nabcÉëüß'€ 0\\E\\F")), min_size=1, max_size=60))
def test_any_text_is_escaped_so_both_parsers_read_it_back(text):
    values = {name: None for name in m.CHARGE.slots} | {
        "sending_application": "FL", "sending_facility": "H", "receiving_application": "B", "time": T0,
        "control_id": "C1", "patient_id": "1", "home": "H", "family": "X", "transaction_id": "T",
        "delivered_at": T0, "code": "C", "coding_system": "L", "centre": "H", "machine": text, "operator": text}
    message = m.CHARGE.fill(**values)
    parsed = check_everywhere(message)
    ft1 = parsed.segment("FT1")
    assert parsed.unescape(str(ft1[16][0][8])) == text
    assert parsed.unescape(str(ft1[20])) == text


def test_escape_agrees_with_hl7apy_on_names_and_is_right_where_hl7apy_is_not():
    from hl7apy.v2_5 import ST

    for name in ["MÜLLER-LEFÈVRE", "D'Hondt", "A|B^C&D~E", "Zoë \\ back"]:
        assert escape(name) == ST(name).to_er7()
    # hl7apy leaves a backslash unescaped when the text before it looks like an escape
    # sequence; ours escapes every backslash, and python-hl7 reads it back exactly.
    tricky = "~E\\F"
    msg = hl7.parse("MSH|^~\\&|A\rZZZ|" + escape(tricky) + "\r")
    assert msg.unescape(str(msg.segment("ZZZ")[1])) == tricky
    assert ST(tricky).to_er7() != escape(tricky)


def test_templates_give_the_bytes_hl7apy_builds_field_by_field(book):
    app = book.app
    for i, name in enumerate(HARD_NAMES):
        deliver(app, register(app, f"R-{i}", name, birth_date=None if i else "1979-11-30"), 1, PARTNER)
    builder = MessageBuilder()
    read = book.fresh()
    compared = 0
    for row in read.courses():
        course = read.course(row["id"])
        plans = {p["uid"]: p for p in course["plans"]}
        for message, f in zip(builder.charges(course), course["fractions"]):
            values = builder.header(course, "DFT", message.control_id, message.at) | builder.charge_values(course, f, plans)
            assert charge_with_hl7apy(values) == message.er7
            compared += 1
    assert compared == len(HARD_NAMES)


def test_values_hl7_cannot_hold_are_refused_naming_the_field(book, tmp_path):
    app = book.app
    long_centre = "A-VERY-LONG-PARTNER-CENTRE-NAME"
    course = register(app, "P-7", "A^B")
    app.assign_centre(course, long_centre, PHYSICIST)
    deliver(app, course, 1, long_centre)
    with pytest.raises(Hl7ValueError, match="centre.*20 characters"):
        list(course_messages(book, MessageBuilder()))
    config = Hl7Config(centres={long_centre: "PARTNER2"})
    charges = parsed_by_kind(export(book, tmp_path / "out", MessageBuilder(config)))["DFT-CG"]
    assert str(charges[0].segment("FT1")[16][0][3]) == "PARTNER2"
    with pytest.raises(Hl7ValueError, match=r"FT1-2 \(transaction_id\).*199"):
        m.CHARGE.value("transaction_id", "x" * 200)
    with pytest.raises(Hl7ValueError, match="required"):
        m.CHARGE.value("family", "")
    assert m.CHARGE.value("delivered_at", T0) == "20261102083000+0100"
    assert m.CHARGE.value("control_id", Decimal("1")) == "1"


def test_a_session_written_as_one_record_per_beam_is_charged_once(book, tmp_path):
    """The billable fraction is ledger.billing's: the first record of a fraction's first session."""
    app = book.app
    course = register(app, "P-PERBEAM", "PEETERS^AN")
    deliver(app, course, 1, HOME, verify=False, beams=[{"number": 1, "delivered_mu": "95.1"}])
    further = deliver(app, course, 1, HOME, verify=False, beams=[{"number": 2, "delivered_mu": "96.3"}])
    assert further["part_of"] is not None
    assert len(parsed_by_kind(export(book, tmp_path / "out"))["DFT-CG"]) == 1
