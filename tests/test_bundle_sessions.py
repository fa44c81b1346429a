"""A partner's bundle of a session its OIS wrote as one record per beam: at home it is one
session of one fraction, as it was at the partner, not a collision (found by the drill, issue 19)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adapters.bundle import export_bundle, read_bundle
from adapters.keys import generate_centre_key
from adapters.runtime import Ledger
from ledger import errors
from ledger.service import Actor
from tests.conftest import Clock

HOME, PARTNER = "AZ-HOME", "PARTNER-RT"
DAY1 = datetime(2026, 11, 2, 18, 30, tzinfo=timezone(timedelta(hours=1)))
REGISTRATION = {
    "patient": {"id": "P-BEAMS", "name": "CLAES^INGE", "birth_date": "1958-06-01", "sex": "F"},
    "home_centre": HOME,
    "plan": {"uid": "1.2.826.0.1.3680043.10.190", "label": "Lung 3D", "machine": "HOME-L1", "centre": HOME,
             "fraction_groups": [{"number": 1, "fractions_planned": 10, "beams": [
                 {"number": 1, "meterset": "100"}, {"number": 2, "meterset": "120"}]}]},
    "assigned_centres": [PARTNER],
}


@pytest.fixture
def partner(tmp_path, monkeypatch, ledger):
    folder = tmp_path / PARTNER
    folder.mkdir()
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(folder / "read.sqlite3"))
    away = Ledger(str(folder / "ledger.sqlite3"), clock=Clock(DAY1 + timedelta(days=20)))
    public, _ = generate_centre_key(folder / "key.ed25519")
    away.app.trust.add_centre(PARTNER, public, Actor("admin", PARTNER))
    ledger.app.trust.add_centre(PARTNER, public, Actor("admin", HOME))
    away.key = folder / "key.ed25519"
    yield away
    away.close()


def per_beam(ledger, course: str, number: int, beam: int, mu: str, minutes: int) -> dict:
    return ledger.app.log_fraction(course, {
        "number": number, "centre": PARTNER, "machine": "TB2", "operator": "rtt.partner",
        "delivered_at": DAY1 + timedelta(days=number, minutes=minutes),
        "beams": [{"number": beam, "delivered_mu": mu}]}, Actor("rtt.partner", PARTNER))


def test_a_session_of_one_record_per_beam_comes_home_as_one_fraction_without_a_collision(ledger, partner):
    course = ledger.app.register_course(REGISTRATION, Actor("physicist.home", HOME))["id"]
    assert partner.app.register_course(REGISTRATION, Actor("physicist.partner", PARTNER))["id"] == course
    for number in (1, 2):
        per_beam(partner, course, number, 1, "100", 0)
        per_beam(partner, course, number, 2, "120", 3)
    at_partner = partner.app.get_course(course)
    assert (at_partner.fractions_delivered(), at_partner.flags) == (2, [])

    data, _ = export_bundle(partner.app, PARTNER, partner.key)
    result = ledger.app.trust.import_bundle(read_bundle(ledger.app, data), Actor("physicist.home", HOME))

    home = ledger.app.get_course(course)
    assert result["applied"] == 4
    assert home.flags == [], "the second beam's record is part of the session, not a second delivery"
    assert home.fractions_delivered() == 2
    assert [(r.number, [b.number for b in r.beams], r.part_of is not None) for r in home.records] == [
        (1, [1], False), (1, [2], True), (2, [1], False), (2, [2], True)]
    assert [i for i in ledger.fresh().incidents() if i["category"] == "near-miss"] == []
    with pytest.raises(errors.FractionAlreadyDelivered):  # the fraction is still given once only
        ledger.app.log_fraction(course, {"number": 1, "centre": HOME, "machine": "HOME-L1", "operator": "rtt.home",
                                         "delivered_at": DAY1 + timedelta(days=5)}, Actor("rtt.home", HOME))
