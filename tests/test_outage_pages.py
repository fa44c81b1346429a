"""The outage pages: the registry (view and edit), the assignment plan (propose, accept part),
the call list (page, CSV, PDF, called / not reached) and the emergency sheet, by role."""

from __future__ import annotations

import html
import io
import re

import pytest
from litestar.testing import TestClient
from pypdf import PdfReader

from adapters.http import create_app
from adapters.runtime import Ledger
from ledger.service import Actor
from tests.conftest import Clock
from tests.http_support import HOME, OTHER, PARTNER, account_name, course_body, seed_accounts, token_of

PHYS, ADMIN, RTT_P, FIN = (account_name("physicist", HOME), account_name("admin", HOME),
                           account_name("rtt", PARTNER), account_name("finance", HOME))
SETUP = Actor("setup", HOME)


@pytest.fixture
def site(tmp_path, monkeypatch):
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    with Ledger(str(tmp_path / "ledger.sqlite3"), clock=Clock()) as ledger:
        app = ledger.app
        seed_accounts(app)
        for code in (HOME, PARTNER, OTHER):
            app.outage.register_centre({"code": code, "name": f"Centre {code.title()}", "machines": [
                {"name": f"{code[:4]}-TB", "model": "TrueBeam", "techniques": ["static", "VMAT"]}]}, SETUP)
        ids = [app.register_course({**course_body(f"P-{n}", f"1.2.3.4.{n}", assigned=()), "triage": t}, SETUP)["id"]
               for n, t in ((1, 1), (2, 2), (3, 3), (4, 5))]
        app.outage.declare_capacity({"centre": PARTNER, "per_day": 2, "window_start": "17:00", "window_end": "21:00",
                              "valid_from": "2027-01-01", "machines": ["PART-TB"]}, SETUP)
        app.outage.set_contact(HOME, "P-1", {"phones": ["+32 470 10 20 30"]}, SETUP)
        yield ledger, ids


def client_for(ledger, name):
    client = TestClient(create_app(ledger))
    client.__enter__()
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post("/", data={"token": token_of(name), "_csrf_token": csrf}).status_code == 200
    client.csrf = csrf
    return client


def test_the_registry_page_shows_and_edits_centres_machines_aliases_and_zones(site):
    ledger, _ = site
    admin = client_for(ledger, ADMIN)
    page = admin.get("/centres")
    assert page.status_code == 200 and "Centre Partner" in page.text and "PART-TB (TrueBeam): static, VMAT" in page.text
    ok = admin.post("/centres/machine", data={"_csrf_token": admin.csrf, "centre": PARTNER, "name": "PART-HAL",
                                              "model": "Halcyon", "techniques": ["VMAT", "IMRT"]})
    assert ok.status_code == 200 and "PART-HAL (Halcyon): VMAT, IMRT" in ok.text
    admin.post("/centres/alias", data={"_csrf_token": admin.csrf, "centre": PARTNER, "kind": "institution",
                                       "value": "Partner Hospital RT"})
    admin.post("/centres/zone", data={"_csrf_token": admin.csrf, "centre": PARTNER, "zone": "Europe/Amsterdam"})
    shown = admin.get("/centres").text
    assert "institution: Partner Hospital RT" in shown and "Europe/Amsterdam" in shown
    bad = admin.post("/centres/zone", data={"_csrf_token": admin.csrf, "centre": "PARTNR", "zone": "Europe/Paris"})
    assert bad.status_code == 400 and "did you mean PARTNER?" in html.unescape(bad.text)
    nl = client_for(ledger, ADMIN)
    nl.cookies.set("lang", "nl")
    assert "Tijdzone" in nl.get("/centres").text
    rtt = client_for(ledger, RTT_P)
    assert rtt.get("/centres").status_code == 200  # everyone reads the registry
    refused = rtt.post("/centres/register", data={"_csrf_token": rtt.csrf, "code": "NEW", "name": "New"})
    assert refused.status_code == 403


def test_the_plan_page_proposes_and_the_physicist_accepts_part(site):
    ledger, ids = site
    phys = client_for(ledger, PHYS)
    page = phys.get("/physicist/plan?capacity_lost=50&day=2027-03-29")
    text = html.unescape(page.text)
    assert page.status_code == 200 and "2 proposed, 1 unplaceable, 0 already assigned, 1 waiting" in text
    assert "every partner that delivers static is full (PARTNER)" in text
    assert all(ledger.app.get_course(c).assigned_centres == [] for c in ids)  # shown, not assigned
    chosen = re.findall(r'name="chosen" value="([^"]+)"', page.text)
    assert len(chosen) == 2
    done = phys.post("/physicist/plan/accept", data={"_csrf_token": phys.csrf, "capacity_lost": "50",
                                                     "day": "2027-03-29", "chosen": chosen[:1]})
    assert done.status_code == 200 and "accepted: 1 assignments recorded" in done.text
    assert sum(1 for c in ids if ledger.app.get_course(c).assigned_centres == [PARTNER]) == 1
    twice = phys.post("/physicist/plan/accept", data={"_csrf_token": phys.csrf, "capacity_lost": "50",
                                                      "day": "2027-03-29", "chosen": chosen[:1]})
    assert twice.status_code == 409 and "already assigned to PARTNER" in html.unescape(twice.text)
    assert client_for(ledger, FIN).get("/physicist/plan").status_code == 403
    assert client_for(ledger, RTT_P).get("/physicist/plan").status_code == 403


def test_the_call_list_page_csv_pdf_and_the_calls_recorded(site):
    ledger, ids = site
    ledger.app.assign_centre(ids[0], PARTNER, SETUP)
    phys = client_for(ledger, PHYS)
    day = ledger.app.clock().date().isoformat()
    page = phys.get(f"/calls?day={day}")
    assert page.status_code == 200 and "+32 470 10 20 30" in page.text and "moved to PARTNER" in page.text
    csv_text = phys.get(f"/calls.csv?day={day}").text
    assert csv_text.splitlines()[1].startswith("P-1,VANDENBROECK JOZEFIEN")
    pdf = phys.get(f"/calls.pdf?day={day}")
    assert pdf.headers["content-type"] == "application/pdf"
    assert "+32 470 10 20 30" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    rtt = client_for(ledger, RTT_P)  # the partner's RTTs call the patients who come to them
    assert "+32 470 10 20 30" in rtt.get(f"/calls?day={day}").text
    r = rtt.post("/calls/record", data={"_csrf_token": rtt.csrf, "course": ids[0], "day": day, "outcome": "called"})
    assert r.status_code == 200 and "rtt1.partner" in r.text
    assert [c["outcome"] for c in ledger.app.outage.contact(HOME, "P-1").calls] == ["called"]
    assert client_for(ledger, FIN).get(f"/calls?day={day}").status_code == 403  # finance never reads phones
    assert client_for(ledger, ADMIN).get(f"/calls?day={day}").status_code == 403
    other = client_for(ledger, account_name("rtt", OTHER))
    assert "+32 470" not in other.get(f"/calls?day={day}").text  # not its patients


def test_the_emergency_sheet_page_is_a_pdf_for_those_who_see_the_course(site):
    ledger, ids = site
    phys = client_for(ledger, PHYS)
    sheet = phys.get(f"/courses/{ids[0]}/sheet.pdf")
    assert sheet.status_code == 200 and "Radiotherapy emergency sheet P-1" in PdfReader(io.BytesIO(sheet.content)).pages[0].extract_text()
    assert client_for(ledger, account_name("rtt", OTHER)).get(f"/courses/{ids[0]}/sheet.pdf").status_code == 404


def test_the_day_list_page_and_its_pdf_and_an_unknown_centre_on_the_api(site):
    ledger, ids = site
    rtt = client_for(ledger, account_name("rtt", HOME))
    page = rtt.get("/day-list?day=2027-03-29")
    assert page.status_code == 200 and page.text.count('class="day-expected"') == 4  # every home course, Monday
    pdf = rtt.get("/day-list.pdf?day=2027-03-29")
    assert "Day list HOME" in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert client_for(ledger, FIN).get("/day-list").status_code == 403
    api = TestClient(create_app(ledger))
    with api:
        r = api.post(f"/api/courses/{ids[0]}/assign", json={"centre": "PARTNR"},
                     headers={"Authorization": f"Bearer {token_of(PHYS)}"})
    assert r.status_code == 400 and r.json()["fields"][0]["field"] == "centre", r.text
    assert "did you mean PARTNER?" in r.text
    assert ledger.app.get_course(ids[0]).assigned_centres == []


def test_until_a_centre_is_registered_physicists_and_admins_are_told_any_code_is_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    with Ledger(str(tmp_path / "ledger.sqlite3"), clock=Clock()) as ledger:
        seed_accounts(ledger.app)
        phys, rtt = client_for(ledger, PHYS), client_for(ledger, RTT_P)
        assert 'id="no-registry"' in phys.get("/physicist").text
        assert 'id="no-registry"' not in rtt.get("/worklist").text  # an RTT cannot register centres
        phys.cookies.set("lang", "fr")
        assert "Aucun centre n'est encore enregistré" in html.unescape(phys.get("/physicist").text)
        ledger.app.outage.register_centre({"code": HOME, "name": "Home"}, SETUP)
        assert 'id="no-registry"' not in phys.get("/physicist").text
        assigned = ledger.app.register_course(course_body("P-9", "1.2.3.4.9", assigned=()), SETUP)["id"]
        with pytest.raises(Exception, match="PARTNR"):
            ledger.app.assign_centre(assigned, "PARTNR", SETUP)


def test_a_route_a_role_may_not_take_is_refused_in_the_readers_language(site):
    ledger, _ = site
    finance = client_for(ledger, FIN)
    finance.cookies.set("lang", "fr")
    refused = finance.get("/calls")
    assert refused.status_code == 403
    text = html.unescape(refused.text)
    assert "ne peut pas" in text and "contacts.read" in text and "may not" not in text
    api = TestClient(create_app(ledger))
    with api:
        answer = api.get("/api/gaps", headers={"Authorization": f"Bearer {token_of(FIN)}"})
    assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
