"""The pages for a working day, in-process (litestar's TestClient, no browser): the RTT's day view
(due today first, search, filters, sort, the verify queue), the patient's identity and the MU as
people read them, field errors next to their field in the page's language, the physicist's
complete/resume/suspend and plan approvals with messages in words, the recovery page that keeps
the last reconciliation, finance's agreements and default period, the admin's accounts.
Real browsers, axe-core and screenshots: tests/test_ui_a11y.py."""

from __future__ import annotations

import html
import io
import re
import zipfile
from datetime import date, datetime, timedelta, timezone

import pytest
from litestar.testing import TestClient

from adapters.http import create_app
from ledger import day
from ledger.service import Actor
from schemas.schedule import Schedule
from tests.http_support import HOME, PARTNER, account_name, course_body, seed_accounts, seed_course, token_of

RTT_A, RTT_B = account_name("rtt", PARTNER), account_name("rtt", PARTNER, 2)
PHYS, FIN, ADMIN = account_name("physicist", HOME), account_name("finance", HOME), account_name("admin", HOME)
# A Monday morning in Brussels (the tests' clock starts on a Sunday)
MONDAY = datetime(2027, 3, 29, 8, 0, tzinfo=timezone.utc)


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page)))


def sign_in(client, name: str, lang: str = "en") -> str:
    client.cookies.clear()
    client.headers["Accept-Language"] = lang
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post("/", data={"token": token_of(name), "_csrf_token": csrf}).status_code == 200
    return csrf


@pytest.fixture
def site(ledger):
    seed_accounts(ledger.app)
    ledger.clock.now = MONDAY
    app = ledger.app
    ids = {}
    for pid, name, triage in (("P-100", "MÜLLER^ZOË", 2), ("P-200", "PEETERS^AN", 1), ("P-300", "JANSSENS^MARC", 4),
                              ("P-600", "CLAES^JAN", 3)):
        body = course_body(patient_id=pid, uid=f"1.2.3.{pid[-3:]}", fractions=5)
        body["patient"]["name"] = name
        body["triage"] = triage
        if pid == "P-600":
            body["schedule"] = {"weekdays": [2, 4]}  # Tuesdays and Thursdays: not due on a Monday
        ids[pid] = app.register_course(body, Actor("setup", HOME))["id"]
    # P-200 treated this morning by RTT_A (awaits a colleague's check); P-300 suspended
    app.log_fraction(ids["P-200"], {"number": 1, "centre": PARTNER, "machine": "TB2", "operator": RTT_A,
                                    "delivered_at": MONDAY - timedelta(hours=1)}, Actor(RTT_A, PARTNER))
    app.suspend_course(ids["P-300"], "skin reaction", Actor(PHYS, HOME))
    with TestClient(create_app(ledger)) as client:
        client.ledger, client.ids = ledger, ids
        yield client


# ---- the rule -----------------------------------------------------------------------------------


def test_due_today_rule():
    monday, saturday = date(2027, 3, 29), date(2027, 4, 3)
    assert day.due_state(monday, "active", 3, 5, date(2027, 3, 26)) == day.DUE
    assert day.due_state(monday, "active", 3, 5, monday) == day.TREATED
    assert day.due_state(saturday, "active", 3, 5, None) == day.NOT_DUE  # not a working day
    assert day.due_state(monday, "suspended", 3, 5, None) == day.NOT_DUE
    assert day.due_state(monday, "active", 5, 5, None) == day.NOT_DUE  # every fraction given
    # the course's schedule (ledger/schedule.py) says which days: Monday, Wednesday, Friday here
    three_a_week = Schedule(weekdays=[1, 3, 5])
    assert day.due_state(monday, "active", 3, 5, None, three_a_week) == day.DUE
    assert day.due_state(monday + timedelta(days=1), "active", 3, 5, None, three_a_week) == day.NOT_DUE
    assert day.due_state(saturday, "active", 3, 5, None, Schedule(weekdays=[6])) == day.DUE
    ranked = sorted([(day.NOT_DUE, 1, "a"), (day.TREATED, 1, "b"), (day.DUE, 3, "c"), (day.DUE, 1, "d")],
                    key=lambda x: day.day_order(*x))
    assert [x[2] for x in ranked] == ["d", "c", "b", "a"]


# ---- the RTT's day --------------------------------------------------------------------------------


def rows(page: str) -> list[str]:
    body = page.split('<table class="courses day">')[1].split("</table>")[0]
    return [text_of(r).strip() for r in re.findall(r"<tr class=\"status-.*?</tr>", body, re.S)]


def ids_in(page: str) -> list[str]:
    return [re.search(r"P-\d+", r).group(0) for r in rows(page)]


def test_day_view_due_first_search_filters_and_sort(site):
    sign_in(site, RTT_B)
    page = site.get("/worklist").text
    assert ids_in(page) == ["P-100", "P-200", "P-600", "P-300"]  # due, treated today, then by triage
    assert rows(page)[0].startswith("due P-100 MÜLLER, Zoë born 2 Jan 1960")
    assert "1 course due today" in text_of(page) and "1 treated today" in text_of(page)
    # search by id or by name, accents and case ignored
    assert ids_in(site.get("/worklist?q=muller").text) == ["P-100"]
    assert ids_in(site.get("/worklist?q=p-3").text) == ["P-300"]
    assert "No course matches" in text_of(site.get("/worklist?q=nobody").text)
    # filters
    assert ids_in(site.get("/worklist?status=suspended").text) == ["P-300"]
    assert ids_in(site.get("/worklist?triage=2").text) == ["P-100"]
    assert ids_in(site.get("/worklist?awaiting=yes").text) == ["P-200"]
    # sortable columns, both ways, and the header says how it is sorted
    by_triage = site.get("/worklist?sort=triage&dir=desc").text
    assert ids_in(by_triage) == ["P-300", "P-600", "P-100", "P-200"]
    assert 'aria-sort="descending"' in by_triage
    assert ids_in(site.get("/worklist?sort=patient").text) == ["P-600", "P-300", "P-100", "P-200"]


def test_verify_queue_lists_colleagues_fractions_only_and_verifies(site):
    sign_in(site, RTT_A)
    assert "No fraction waits for your second check" in text_of(site.get("/worklist").text)
    csrf = sign_in(site, RTT_B, "nl")
    page = site.get("/worklist").text
    queue = text_of(page.split('id="verify-queue"')[1])
    assert "P-200 PEETERS, An geboren 2 jan 1960" in queue and RTT_A in queue
    assert "1 fractie wacht op een tweede controle" in text_of(page)
    course = site.ids["P-200"]
    r = site.post(f"/courses/{course}/fractions/1/verify", data={"_csrf_token": csrf})
    assert r.status_code == 200 and "geverifieerd" in text_of(r.text).lower()
    assert "Geen fractie wacht op uw tweede controle" in text_of(site.get("/worklist").text)


def test_course_page_names_the_patient_rounds_mu_and_highlights_deviations(site):
    ledger = site.ledger
    body = course_body(patient_id="P-400", uid="1.2.3.400", fractions=5)
    body["plan"]["fraction_groups"][0]["beams"][0]["meterset"] = "116.003669700000"
    course = ledger.app.register_course(body, Actor("setup", HOME))["id"]
    ledger.app.log_fraction(course, {"number": 1, "centre": PARTNER, "machine": "TB2", "operator": RTT_B,
                                     "delivered_at": MONDAY - timedelta(days=3),
                                     "beams": [{"number": 1, "delivered_mu": "130"}, {"number": 2, "delivered_mu": "109.8"}],
                                     "deviation_reason": "linac fault, checked"}, Actor(RTT_B, PARTNER))
    sign_in(site, RTT_A, "fr")
    page = site.get(f"/courses/{course}").text
    words = text_of(page)
    assert "P-400 VANDENBROECK, Jozefien né(e) le 2 janv. 1960" in words
    assert "116,0" in words and "116.003669700000" not in page  # planned MU, as people read it (the incident too)
    assert 'value="116.0"' in page  # the form's delivered MU, rounded to 0.01 MU
    row = page.split('id="fraction-1"')[1].split("</tr>")[0]
    assert 'class="deviation"' in row and "130,0 UM délivrées pour 116,0 UM prévues" in text_of(row)
    assert "has-deviation" in page.split('id="fraction-1"')[0][-200:]
    assert "Invalider" in words and "Annuler" not in words


def test_a_bad_field_is_explained_next_to_it_in_the_pages_language(site):
    course = site.ids["P-100"]
    csrf = sign_in(site, RTT_A, "fr")
    r = site.post(f"/courses/{course}/log", data={
        "_csrf_token": csrf, "number": "1", "group": "1", "machine": "TB2", "delivered_at": "2027-03-29T09:00",
        "beam_1_mu": "abc", "beam_1_termination": "NORMAL", "beam_2_mu": "109.8", "beam_2_termination": "NORMAL"})
    assert r.status_code == 400
    field = re.search(r'<input name="beam_1_mu"[^>]*>\s*<span class="field-error" id="([^"]+)" role="alert">([^<]+)</span>',
                      r.text)
    assert field, r.text[:3000]
    assert "n'est pas un nombre" in html.unescape(field.group(2))
    assert f'aria-describedby="{field.group(1)}"' in r.text and 'aria-invalid="true"' in r.text
    assert "UM délivrées du faisceau 1" in text_of(r.text)  # the summary names the field as the page labels it
    assert site.ledger.app.get_course(course).records == []


# ---- the physicist -------------------------------------------------------------------------------------


def test_physicist_completes_resumes_and_suspends_with_messages_in_words(site):
    csrf = sign_in(site, PHYS)
    course = site.ids["P-300"]
    r = site.post(f"/physicist/courses/{course}/resume", data={"_csrf_token": csrf})
    assert "P-300 JANSSENS, Marc (Breast 50Gy/25): course resumed." in text_of(r.text)
    assert course not in text_of(r.text).split("resumed")[0]  # words, not the course id
    r = site.post(f"/physicist/courses/{course}/suspend", data={"_csrf_token": csrf, "reason": "review"})
    assert "course suspended" in text_of(r.text)
    r = site.post(f"/physicist/courses/{course}/complete", data={"_csrf_token": csrf, "reason": "stopped early"})
    assert "P-300 JANSSENS, Marc (Breast 50Gy/25): course completed." in text_of(r.text)
    assert site.ledger.app.get_course(course).status == "completed"


def test_physicist_approves_a_fallback_plan_that_departs_from_the_prescription(site):
    ledger = site.ledger
    course = site.ids["P-100"]
    ledger.app.assign_centre(course, PARTNER, Actor(PHYS, HOME))
    plan = course_body(uid="1.2.3.999", fractions=5, home=PARTNER)["plan"]
    plan["label"] = "Breast TB2"
    plan["fraction_groups"][0]["beams"][0]["meterset"] = "150.0"  # more than 10% apart
    ledger.app.add_fallback_plan(course, plan, Actor("physicist1.partner", PARTNER))
    csrf = sign_in(site, PHYS)
    page = site.get("/physicist").text
    waiting = text_of(page.split('id="approvals"')[1].split("</section>")[0])
    assert "P-100 MÜLLER, Zoë" in waiting and "plan Breast TB2 of PARTNER" in waiting and "MU per fraction" in waiting
    r = site.post(f"/physicist/courses/{course}/approve-plan", data={"_csrf_token": csrf, "plan_uid": "1.2.3.999"})
    assert "fallback plan 1.2.3.999 approved" in text_of(r.text)
    assert "No fallback plan waits for approval" in text_of(r.text)
    assert ledger.app.get_course(course).awaiting_approval == {}


def test_import_results_name_patient_and_plan(site):
    import json

    csrf = sign_in(site, PHYS)
    body = json.dumps(course_body(patient_id="P-555", uid="1.2.3.555"))
    r = site.post("/physicist/courses", data={"_csrf_token": csrf},
                  files=[("files", ("backup-P-555.json", body.encode(), "application/json"))])
    results = text_of(r.text.split('id="file-results"')[1].split("</ul>")[0])
    assert "backup-P-555.json: registered — P-555 VANDENBROECK, Jozefien born 2 Jan 1960 · Breast 50Gy/25" in results


def test_recovery_keeps_the_last_reconciliation_for_report_and_import_set(site, tmp_path):
    from adapters.dicom.export import export_all

    ledger = site.ledger
    course = site.ids["P-100"]
    ledger.app.log_fraction(course, {"number": 1, "centre": HOME, "machine": "L1", "operator": "rtt.h",
                                     "delivered_at": MONDAY - timedelta(days=4)}, Actor("rtt.h", HOME))
    list(export_all(ledger.app, ledger.fresh(), tmp_path / "ois", kinds=("record", "summary")))
    ledger.app.log_fraction(course, {"number": 2, "centre": HOME, "machine": "L1", "operator": "rtt.h",
                                     "delivered_at": MONDAY - timedelta(days=3)}, Actor("rtt.h", HOME))
    csrf = sign_in(site, PHYS)
    assert "there is no reconciliation" in text_of(site.get("/physicist/recovery/report").text)
    files = [("files", (p.name, p.read_bytes(), "application/dicom")) for p in sorted((tmp_path / "ois").rglob("*.dcm"))]
    r = site.post("/physicist/recovery", data={"_csrf_token": csrf, "output": "page"}, files=files)
    assert r.status_code == 200 and 'id="kept-reconciliation"' in r.text
    # later, without uploading anything: the page, the report and the import set from the kept one
    again = site.get("/physicist/recovery").text
    assert 'id="reconcile-result"' in again and "P-100" in text_of(again.split('id="reconcile-result"')[1])
    report = site.get("/physicist/recovery/report")
    assert report.status_code == 200 and "P-100" in report.text
    zipped = site.get("/physicist/recovery/import-set.zip")
    assert zipped.status_code == 200
    assert any(n.endswith(".dcm") for n in zipfile.ZipFile(io.BytesIO(zipped.content)).namelist())


# ---- finance and admin ---------------------------------------------------------------------------------


def test_finance_default_period_agreement_form_and_printable_statement(site):
    csrf = sign_in(site, FIN, "nl")
    page = site.get("/finance").text
    assert 'value="2027-02-01"' in page and 'value="2027-03-29"' in page  # the previous and the current month
    r = site.post("/finance/agreements", data={"_csrf_token": csrf, "billing_centre": HOME, "partner": PARTNER,
                                               "rule": "pro-rata", "valid_from": "2027-01-01", "course_amount": "2100,5"})
    assert r.status_code == 200 and "versie 1 vastgelegd" in text_of(r.text)
    assert "2100,50" in text_of(r.text.split('id="agreements"')[1])
    r = site.post("/finance/agreements", data={"_csrf_token": csrf, "billing_centre": HOME, "partner": PARTNER,
                                               "rule": "per-fraction", "valid_from": "2027-03-01", "fee_per_fraction": "x"})
    assert r.status_code == 400
    assert re.search(r'name="fee_per_fraction"[^>]*aria-invalid="true"[^>]*>\s*<span class="field-error"[^>]*>is geen getal',
                     r.text), r.text
    r = site.post("/finance/agreements", data={"_csrf_token": csrf, "billing_centre": HOME, "partner": PARTNER,
                                               "rule": "per-fraction", "valid_from": "2027-03-01", "course_amount": "2100",
                                               "fee_per_fraction": "118.75"})
    assert "versie 2 vastgelegd" in text_of(r.text)
    printable = site.get("/finance/statement?from=2027-03-01&to=2027-03-31")
    assert printable.status_code == 200 and 'id="statement"' in printable.text and "<form" not in printable.text.split("<main")[1]


def test_demo_seeds_an_agreement_and_completed_courses(ledger):
    from tools.demo import run_demo

    run_demo(ledger, echo=lambda s: None)
    agreements = ledger.fresh().agreements(party="AZ-HOME")
    assert [(a["partner"], a["rule"]) for a in agreements] == [("PARTNER-RT", "pro-rata")]
    completed = [c for c in ledger.fresh().courses() if c["status"] == "completed"]
    assert {c["patient_id"] for c in completed} == {"DEMO-004", "DEMO-005"}
    today = ledger.clock.now.date()
    statement = ledger.fresh().statement((today.replace(day=1) - timedelta(days=1)).replace(day=1), today, None,
                                         seen_by="AZ-HOME")
    assert len(statement["lines"]) == 4 and statement["balances"]


def test_admin_revokes_and_rotates_with_words(site):
    csrf = sign_in(site, ADMIN, "fr")
    page = text_of(site.get("/admin").text)
    assert "physicien" in page and "actif" in page
    home_rtt, home_rtt2 = account_name("rtt", HOME), account_name("rtt", HOME, 2)
    r = site.post(f"/admin/accounts/{home_rtt}/revoke", data={"_csrf_token": csrf})
    assert f"Compte {home_rtt} révoqué" in text_of(r.text) and "révoqué le" in text_of(r.text)
    r = site.post(f"/admin/accounts/{home_rtt2}/rotate", data={"_csrf_token": csrf})
    assert re.search(r'id="new-token">fl_', r.text)


def test_incident_follow_up_and_close_from_the_course_page(site):
    course = site.ids["P-100"]
    csrf = sign_in(site, RTT_A)
    r = site.post(f"/courses/{course}/incidents", data={"_csrf_token": csrf, "category": "positioning",
                                                        "severity": "low", "description": "mask loose"})
    assert "Incident registered: Positioning" in text_of(r.text) or "Incident registered:" in text_of(r.text)
    [incident] = site.ledger.fresh().incidents(course_id=course)
    r = site.post(f"/courses/{course}/incidents/{incident['id']}/follow-up", data={"_csrf_token": csrf, "text": ""})
    assert r.status_code == 400 and 'class="field-error"' in r.text.split(f'id="incident-{incident["id"]}"')[1]
    r = site.post(f"/courses/{course}/incidents/{incident['id']}/follow-up",
                  data={"_csrf_token": csrf, "text": "new mask made"})
    assert "Follow-up added" in text_of(r.text) and "new mask made" in text_of(r.text)
    assert f"/incidents/{incident['id']}/close" not in r.text  # closing is the home physicist's
    csrf = sign_in(site, PHYS)
    r = site.post(f"/courses/{course}/incidents/{incident['id']}/close", data={"_csrf_token": csrf, "resolution": "fixed"})
    assert "Incident closed." in text_of(r.text)
    assert site.ledger.fresh().incidents(course_id=course)[0]["status"] == "closed"


def test_mu_amounts_and_names_as_people_read_them():
    from adapters.i18n import Words, mu_input, name_parts

    assert Words("en").mu("116.003669700000") == "116.0" and Words("fr").mu("95.15") == "95,15"
    assert Words("nl").mu("1805") == "1.805,0"
    assert mu_input("116.003669700000") == "116.0" and mu_input("112.4") == "112.4" and mu_input("98.125") == "98.12"
    assert Words("en").amount("2100") == "2100.00" and Words("nl").amount("2100.5") == "2100,50"
    assert name_parts("PEETERS^AN") == ("PEETERS", "An")
    assert name_parts("MÜLLER-LEFÈVRE^ZOË") == ("MÜLLER-LEFÈVRE", "Zoë")
    assert name_parts("DUPONT^JEAN-PIERRE^MARIE") == ("DUPONT", "Jean-Pierre Marie")
    assert name_parts("Smith^John") == ("Smith", "John")


def test_favicon_and_the_focus_script_are_served(site):
    icon = site.get("/static/favicon.svg")
    assert icon.status_code == 200 and "<svg" in icon.text
    assert site.get("/static/focus.js").status_code == 200
    assert '<link rel="icon" href="/static/favicon.svg"' in site.get("/").text
