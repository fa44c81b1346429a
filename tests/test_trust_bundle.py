"""Signed bundles between centres: a partner that kept its own ledger while it was cut off hands
back its fraction registrations as one file; the home centre imports it safely, twice if need be.

The home ledger runs on SQLite (the `ledger` fixture); the partner's is a
SQLite file of its own, as at a partner hospital.
"""

from __future__ import annotations

import base64
import os
import uuid
import stat
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest
from cryptography.hazmat.primitives import serialization

from adapters.bundle import canonical, event_hash, export_bundle, read_bundle
from adapters.keys import generate_centre_key, load_private_key, sign
from adapters.runtime import Ledger
from ledger.messages import english
from ledger import errors
from ledger.service import Actor
from tests.conftest import Clock, cli
from tests.test_core_rules import DAY1, HOME, PARTNER, PHYSICIST, log, plan
from schemas.results import BundleImported

PATIENT = {"id": "P-BUNDLE", "name": "DUPONT^MARIE", "birth_date": "1958-04-01", "sex": "F"}


def register(ledger, **plan_args) -> str:
    return ledger.app.register_course(
        {"patient": PATIENT, "home_centre": HOME, "plan": plan(**plan_args), "assigned_centres": [PARTNER]},
        PHYSICIST,
    )["id"]


@pytest.fixture
def partner(tmp_path, monkeypatch):
    """The partner's own ledger, its signing key, and the course registered from the same backup."""
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "partner-read.sqlite3"))
    opened = Ledger(str(tmp_path / "partner.sqlite3"), clock=Clock(DAY1 + timedelta(days=60)))
    opened.clock = opened.app.clock
    public, _ = generate_centre_key(tmp_path / "partner.ed25519")
    opened.app.trust.add_centre(PARTNER, public, Actor("admin", PARTNER))
    opened.key = tmp_path / "partner.ed25519"
    opened.public = public
    yield opened
    opened.close()


def events(ledger) -> int:
    return ledger.app.recorder.max_notification_id() or 0


def bundle_bytes(partner, since=None) -> bytes:
    return export_bundle(partner.app, PARTNER, partner.key, since)[0]


def do_import(ledger, data: bytes) -> dict:
    return ledger.app.trust.import_bundle(read_bundle(ledger.app, data), Actor("physicist.home", HOME))


def test_a_partners_fractions_come_home_once_however_often_the_bundle_is_imported(ledger, partner):
    course = register(ledger)
    for n in range(1, 4):
        log(ledger, course, n, HOME)
    # The partner, cut off, registers the course from the backed-up plan (same id), re-plans on
    # its own linac and treats fractions 4-6; fraction 6 turns out to be wrongly registered.
    assert register(partner) == course
    fallback = plan(uid="1.2.826.0.1.3680043.10.99", centre=PARTNER, machine="TB2")
    partner.app.add_fallback_plan(course, fallback, Actor("physicist.partner", PARTNER))
    for n in range(4, 7):
        log(partner, course, n, PARTNER, operator="rtt.partner.a")
    partner.app.verify_fraction(course, 4, "rtt.partner.b", Actor("rtt.partner.b", PARTNER))
    partner.app.void_fraction(course, 6, "wrong patient on the schedule", "physicist.partner", Actor("physicist.partner", PARTNER))

    ledger.app.trust.add_centre(PARTNER, partner.public, Actor("admin", HOME))
    data = bundle_bytes(partner)
    before = events(ledger)
    summary = do_import(ledger, data)
    assert summary == BundleImported(centre=PARTNER, events=6, applied=6, already_imported=0, courses_registered=0,
                                     collisions=[])

    home = ledger.app.get_course(course)
    came = [r for r in home.records if r.centre == PARTNER]
    assert [(r.number, r.plan_uid, r.source, r.operator, r.voided) for r in came] == [
        (4, fallback["uid"], "bundle", "rtt.partner.a", False),
        (5, fallback["uid"], "bundle", "rtt.partner.a", False),
        (6, fallback["uid"], "bundle", "rtt.partner.a", True),
    ]
    partner_ids = [r.record_id for r in partner.app.get_course(course).records]
    assert [r.source_uid for r in came] == partner_ids
    assert came[0].verified_by == "rtt.partner.b" and came[1].verified_by is None
    assert came[0].recorded_by == "rtt.partner.a"  # who recorded it at the partner, not who imported it
    assert home.fractions_delivered() == 5 and not home.flags
    after_first = events(ledger)
    assert after_first > before

    again = do_import(ledger, data)
    assert (again["applied"], again["already_imported"]) == (0, 6)
    assert events(ledger) == after_first  # importing twice changes nothing

    # Later the partner treats fraction 6 again; a bundle --since the first one overlaps nothing.
    mark = partner.clock.now
    log(partner, course, 6, PARTNER, day=8, operator="rtt.partner.a")
    later = bundle_bytes(partner, since=mark)
    assert do_import(ledger, later)["applied"] == 1
    read = ledger.fresh().course(course)
    assert read["fractions_delivered"] == 6
    assert [f["source"] for f in read["fractions"] if f["centre"] == PARTNER] == ["bundle"] * 4
    # The whole bundle again, now that it holds the new fraction too: only that one is known, nothing new.
    overlap = do_import(ledger, bundle_bytes(partner))
    assert (overlap["applied"], overlap["already_imported"]) == (0, 7)


def test_the_same_fraction_at_two_centres_is_kept_twice_and_flagged_never_merged(ledger, partner):
    """While apart, home and partner both delivered fraction 4: the patient got it twice."""
    course = register(ledger)
    for n in range(1, 5):
        log(ledger, course, n, HOME)
    register(partner)
    for n in range(1, 4):
        log(partner, course, n, HOME)  # what the partner knew from the backup: not exported (not its own)
    log(partner, course, 4, PARTNER, operator="rtt.partner.a")
    log(partner, course, 5, PARTNER, operator="rtt.partner.a")
    ledger.app.trust.add_centre(PARTNER, partner.public, Actor("admin", HOME))

    summary = do_import(ledger, bundle_bytes(partner))
    assert summary["applied"] == 2
    assert [(c["number"], c["refusal"]) for c in summary["collisions"]] == [(4, "fraction_already_delivered")]
    home = ledger.app.get_course(course)
    fourth = home.active_records(1, 4)
    assert [(r.centre, r.source) for r in fourth] == [(HOME, "ledger"), (PARTNER, "bundle")]
    assert len(home.flags) == 1
    flag = home.flags[0]
    assert flag["kind"] == "bundle_collision" and set(flag["record_ids"]) == {r.record_id for r in fourth}
    reason = english(flag["reason"])  # stored as a code and its values
    assert "fraction 4 from PARTNER collides" in reason and "already delivered at HOME" in reason
    incident = ledger.app.repository.get(uuid.UUID(summary["collisions"][0]["incident"]))
    assert (incident.category, incident.severity, incident.centre, incident.home_centre, incident.fraction) == (
        "near-miss", "high", PARTNER, HOME, 4)
    assert english(incident.description).startswith(
        "Bundle collision, both records kept: fraction 4 from PARTNER collides")
    assert incident.attempt["refusal"] == "fraction_already_delivered" and incident.attempt["operator"] == "rtt.partner.a"
    fifth = home.active_records(1, 5)[0]
    assert any("flagged for review" in english(w) for w in fifth.warnings)
    shown = ledger.fresh().course(course)
    assert [f["kind"] for f in shown["flags"]] == ["bundle_collision"]
    assert [(i["id"], i["category"]) for i in shown["incidents"]] == [(str(incident.id), "near-miss")]
    assert [f["centre"] for f in shown["fractions"] if f["number"] == 4] == [HOME, PARTNER]
    # Imported again: still two records, one flag, one incident.
    before = events(ledger)
    do_import(ledger, bundle_bytes(partner))
    assert len(ledger.app.get_course(course).flags) == 1 and events(ledger) == before


def resign(body: dict, key_path: Path, rechain: bool = True) -> bytes:
    if rechain:
        prev = "0" * 64
        for item in body["events"]:
            item["hash"] = prev = event_hash(prev, item)
        body["head"] = prev
    raw = canonical(body)
    seal = canonical({"signature": sign(load_private_key(key_path), raw), "signed_by": body["centre"], "key": "x"})
    return raw + b"\n" + seal + b"\n"


def refused(ledger, data: bytes) -> str:
    before = events(ledger)
    with pytest.raises(errors.BundleRefused) as caught:
        do_import(ledger, data)
    assert events(ledger) == before  # refused whole: nothing written
    return str(caught.value)


def test_a_bundle_that_fails_its_signature_its_chain_or_its_content_is_refused_whole(ledger, partner, tmp_path):
    course = register(ledger)
    register(partner)
    for n in range(1, 4):
        log(partner, course, n, PARTNER, operator="rtt.partner.a")
    data = bundle_bytes(partner)
    body = msgspec.json.decode(data.split(b"\n")[0])

    assert "unknown centre" in refused(ledger, data) and "centre add PARTNER" in refused(ledger, data)
    ledger.app.trust.add_centre(PARTNER, None, Actor("admin", HOME))
    assert "has no public key here" in refused(ledger, data)
    ledger.app.trust.add_centre(PARTNER, partner.public, Actor("admin", HOME))

    changed = data.replace(b'"number":2', b'"number":9', 1)
    assert "signature does not match centre PARTNER's public key" in refused(ledger, changed)
    generate_centre_key(tmp_path / "intruder.ed25519")
    assert "signature does not match" in refused(ledger, resign(msgspec.json.decode(data.split(b"\n")[0]), tmp_path / "intruder.ed25519"))
    assert "expected 2 JSON lines" in refused(ledger, data.split(b"\n")[0])

    broken = msgspec.json.decode(data.split(b"\n")[0])
    broken["events"][1]["record"]["machine"] = "OTHER-LINAC"
    assert refused(ledger, resign(broken, partner.key, rechain=False)) == "event 2 (%s) does not match its chain hash" % broken["events"][1]["key"]
    cut = msgspec.json.decode(data.split(b"\n")[0])
    cut["events"].pop()
    assert "events were cut off" in refused(ledger, resign(cut, partner.key, rechain=False))

    foreign = msgspec.json.decode(data.split(b"\n")[0])
    foreign["events"][2]["record"]["centre"] = HOME
    assert "recorded at HOME, but the bundle is PARTNER's" in refused(ledger, resign(foreign, partner.key))

    unknown = msgspec.json.decode(data.split(b"\n")[0])
    unknown["events"].append({**unknown["events"][0], "type": "FractionVoided", "key": "x/99", "record_ids": ["nope"],
                              "reason": "r", "by": "b", "record": None})
    del unknown["events"][-1]["record"]
    message = refused(ledger, resign(unknown, partner.key))
    assert message.startswith("event 4 (x/99):") and "import the bundle that carried it first" in message

    beyond = msgspec.json.decode(data.split(b"\n")[0])
    beyond["events"][0]["record"]["number"] = 31
    assert "outside the prescription" in refused(ledger, resign(beyond, partner.key))

    other_plan = msgspec.json.decode(data.split(b"\n")[0])
    other_plan["courses"][0]["registration"]["plan"]["label"] = "Something else"
    assert "the bundle's plan differs" in refused(ledger, resign(other_plan, partner.key))

    assert body["events"] and do_import(ledger, data)["applied"] == 3  # the genuine file still imports


def test_a_course_the_home_ledger_lost_is_registered_from_the_bundle(ledger, partner):
    """A restore erased the course at home (REX 3): the partner's bundle brings it back."""
    course = register(partner)
    log(partner, course, 1, PARTNER, operator="rtt.partner.a")
    ledger.app.trust.add_centre(PARTNER, partner.public, Actor("admin", HOME))
    summary = do_import(ledger, bundle_bytes(partner))
    assert (summary["courses_registered"], summary["applied"]) == (1, 1)
    assert ledger.app.get_course(course).patient["id"] == PATIENT["id"]


def test_export_needs_the_registered_key_in_a_private_file(ledger, partner, tmp_path):
    register(partner)
    other, _ = generate_centre_key(tmp_path / "other.ed25519")
    with pytest.raises(errors.CentreConflict, match="is not the key registered for centre PARTNER"):
        export_bundle(partner.app, PARTNER, tmp_path / "other.ed25519")
    os.chmod(partner.key, 0o644)
    with pytest.raises(ValueError, match="readable by others"):
        export_bundle(partner.app, PARTNER, partner.key)


def test_centres_keys_and_bundles_from_the_command_line(tmp_path):
    home, away = tmp_path / "home.sqlite3", tmp_path / "partner.sqlite3"
    env = {"FRACTION_LEDGER_READ_DB": ""}
    args = ("course", "register", "--patient-id", "P-CLI", "--patient-name", "PEETERS^AN", "--plan-uid",
            "1.2.826.0.1.3680043.10.7", "--plan-label", "Breast 40Gy/15", "--fractions", "15", "--home-centre", HOME,
            "--beam", "1=110.5", "--json")
    cid = msgspec.json.decode(cli(*args, db=home, env=env, check=True).stdout)["id"]
    cli(*args, db=away, env=env, check=True)
    at = (DAY1 + timedelta(days=1)).isoformat()
    cli("fraction", "log", cid, "--number", "1", "--centre", PARTNER, "--machine", "TB2", "--operator", "anna",
        "--at", at, db=away, env=env, check=True)

    key = tmp_path / "PARTNER.ed25519"
    made = cli("centre", "keygen", PARTNER, "--out", str(key), db=away, env=env, check=True)
    assert made.stdout.startswith("added: centre PARTNER (SHA256:")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pem = key.read_bytes()
    raw = load_private_key(key).private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                              serialization.NoEncryption())
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("partner.sqlite3*"))
    assert raw not in stored and base64.b64encode(raw) not in stored and pem not in stored  # the private key stays in its file

    out = tmp_path / "partner.bundle"
    exported = cli("bundle", "export", "--centre", PARTNER, "--out", str(out), "--key", str(key), db=away, env=env, check=True)
    assert exported.stdout.startswith(f"wrote {out}: 1 events of 1 course(s) recorded at PARTNER, signed (SHA256:")
    assert "log head " in exported.stdout
    assert cli("bundle", "export", "--centre", PARTNER, "--out", str(out), "--key", str(key), db=away, env=env).returncode == 1

    unknown = cli("bundle", "import", str(out), db=home, env=env)
    assert unknown.returncode == 1 and "signed by an unknown centre" in unknown.stderr
    shown = cli("centre", "add", PARTNER, "--public-key", str(key) + ".pub", db=home, env=env, check=True)
    assert shown.stdout == made.stdout.splitlines()[0] + "\n"
    first = cli("bundle", "import", str(out), db=home, env=env, check=True)
    assert first.stdout.splitlines()[0] == f"imported {out} from PARTNER: 1 applied, 0 already imported, 0 course(s) registered"
    second = msgspec.json.decode(cli("bundle", "import", str(out), "--json", db=home, env=env, check=True).stdout)
    assert (second["applied"], second["already_imported"]) == (0, 1)
    assert cli("verify", db=home, env=env).returncode == 0
    course = msgspec.json.decode(cli("course", "show", cid, "--json", db=home, env=env, check=True).stdout)
    assert [(f["number"], f["centre"], f["source"]) for f in course["fractions"]] == [(1, PARTNER, "bundle")]
