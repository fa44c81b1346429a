"""Issue 17's "Must show", told through the service, the read model's worklist, the API, the pages
and the CLI (the rules themselves: tests/test_gaps_unit.py on an in-memory Course).

A category 1 head and neck course, 35 fractions Monday to Friday from Monday 2 November 2026,
treated 2..10 November (7 fractions), then interrupted Wednesday 11 .. Monday 16 (4 working days).
It is Tuesday 17 November, 08:00 in Brussels.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from litestar.testing import TestClient

from adapters.gaps_view import gaps_of
from adapters.http import create_app
from ledger import errors
from ledger.service import Actor
from tests.conftest import cli
from tests.http_support import auth, seed_accounts, token_of

BXL = ZoneInfo("Europe/Brussels")
HOME, PARTNER = "HOME", "PARTNER"
PHYSICIST, ONC_A, ONC_B = Actor("physicist1.home", HOME), Actor("onc.a", HOME), Actor("onc.b", HOME)
TUESDAY_17 = datetime(2026, 11, 17, 8, 0, tzinfo=BXL)
TREATED = [date(2026, 11, d) for d in (2, 3, 4, 5, 6, 9, 10)]


def hn_course(ledger, fractions: int = 35, groups=None, patient_id: str = "HN-1", dose: str | None = "2") -> str:
    ledger.clock.now = TUESDAY_17 - timedelta(hours=2)
    groups = groups or [{"number": 1, "fractions_planned": fractions, "dose_gy": dose,
                         "beams": [{"number": 1, "meterset": "210"}]}]
    return ledger.app.register_course(
        {"patient": {"id": patient_id, "name": "JANSSENS^PIET", "birth_date": "1961-03-04"}, "home_centre": HOME,
         "plan": {"uid": f"1.2.826.0.1.3680043.10.17.{len(patient_id)}{fractions}", "label": "H&N 70Gy/35",
                  "fraction_groups": groups},
         "assigned_centres": [PARTNER], "schedule": {"start": "2026-11-02"}, "site": "head_and_neck"},
        PHYSICIST)["id"]


def log(ledger, course_id: str, number: int, day: date, group: int | None = None, hour: int = 9, **extra) -> dict:
    return ledger.app.log_fraction(course_id, {
        "number": number, "group": group, "centre": HOME, "machine": "L1", "operator": "rtt.an",
        "delivered_at": datetime(day.year, day.month, day.day, hour, 0, tzinfo=BXL), **extra}, Actor("rtt.an", HOME))


def interrupted(ledger) -> str:
    course_id = hn_course(ledger)
    for n, day in enumerate(TREATED, start=1):
        log(ledger, course_id, n, day)
    ledger.clock.now = TUESDAY_17
    return course_id


def worklist(ledger, centre: str | None = None) -> list[dict]:
    read = ledger.fresh()
    return gaps_of(ledger.app, read, read.courses(centre=centre, status="active"), 2)


# ---- the Must show, through the service and the read model -----------------------------------------


def test_an_interrupted_category_1_course_shows_a_prolongation_of_4_and_an_alarm_then_3_after_compensation(ledger):
    course_id = interrupted(ledger)
    [row] = worklist(ledger)
    assert (row["category"], row["category_from"], row["missed"], row["prolongation"], row["alarm"]) == \
        (1, "site", 4, 4, True)
    assert row["planned_end"] == "2026-12-18" and row["projected_end"] == "2026-12-24"
    assert row["next_fraction"] == {"group": 1, "number": 8} and row["next_day"] == "2026-11-17"
    assert row["assigned_centres"] == [PARTNER] and row["days_since_last"] == 7
    assert (row["dose_delivered_gy"], row["dose_prescribed_gy"]) == ("14", "70")  # exact decimals
    assert ledger.app.gaps.course_gap(course_id).prolongation == 4, "the aggregate and the read model agree"

    proposed = ledger.app.gaps.amend_prescription(course_id, {"kind": "twice_daily", "day": "2026-11-17",
                                                         "reason": "compensate the outage"}, ONC_A)
    [row] = worklist(ledger)
    assert row["prolongation"] == 4 and row["pending_amendments"] == 1, "no countersignature: nothing changes"
    ledger.app.gaps.countersign_amendment(course_id, proposed["amendment"]["id"], ONC_B)
    [row] = worklist(ledger)
    assert (row["prolongation"], row["projected_end"], row["pending_amendments"]) == (3, "2026-12-23", 0)
    assert ledger.app.gaps.course_gap(course_id).prolongation == 3


def test_after_countersignature_fraction_n_plus_1_is_accepted_and_n_plus_2_refused(ledger):
    course_id = hn_course(ledger, fractions=7, dose=None)
    for n, day in enumerate(TREATED, start=1):
        log(ledger, course_id, n, day)
    ledger.clock.now = TUESDAY_17 + timedelta(hours=9)
    proposed = ledger.app.gaps.amend_prescription(course_id, {"kind": "extra_fractions", "fractions": 1,
                                                         "reason": "one fraction lost in the outage"}, ONC_A)
    with pytest.raises(errors.FractionOutOfRange):
        log(ledger, course_id, 8, date(2026, 11, 17))  # an amendment without countersignature changes nothing
    with pytest.raises(errors.CountersignerIsPrescriber):
        ledger.app.gaps.countersign_amendment(course_id, proposed["amendment"]["id"], ONC_A)
    signed = ledger.app.gaps.countersign_amendment(course_id, proposed["amendment"]["id"], PHYSICIST)
    assert signed["fractions_planned"] == 8 and signed["amendment"]["countersigned_by"] == PHYSICIST.user
    assert log(ledger, course_id, 8, date(2026, 11, 17))["number"] == 8
    with pytest.raises(errors.FractionOutOfRange):
        log(ledger, course_id, 9, date(2026, 11, 17), hour=16)
    row = ledger.fresh().course(course_id)
    assert (row["fractions_planned"], row["fractions_delivered"]) == (8, 8)
    near_misses = [i for i in ledger.fresh().incidents() if i["category"] == "near-miss"]
    assert sorted(i["attempt"]["refusal"] for i in near_misses) == [
        "countersigner_is_prescriber", "fraction_out_of_range", "fraction_out_of_range"]


def test_rex3_the_boost_reduced_by_one_fraction_and_the_history_shows_original_and_amendments(ledger):
    groups = [{"number": 1, "fractions_planned": 5, "dose_gy": "2", "beams": [{"number": 1, "meterset": "200"}]},
              {"number": 2, "fractions_planned": 2, "dose_gy": "2", "beams": [{"number": 2, "meterset": "150"}]}]
    course_id = hn_course(ledger, groups=groups, patient_id="REX-3")
    for n, day in enumerate(TREATED[:5], start=1):
        log(ledger, course_id, n, day, group=1)
    extra = ledger.app.gaps.amend_prescription(course_id, {"kind": "extra_fractions", "group": 1, "fractions": 1,
                                                      "reason": "a 6th large-field fraction was given while the "
                                                                "count was not current (REX 3)"}, ONC_A)
    boost = ledger.app.gaps.amend_prescription(course_id, {"kind": "fractions", "group": 2, "fractions": 1,
                                                      "reason": "boost reduced by one fraction to compensate"}, ONC_A)
    for a in (extra, boost):
        ledger.app.gaps.countersign_amendment(course_id, a["amendment"]["id"], ONC_B)
    log(ledger, course_id, 6, TREATED[5], group=1)
    log(ledger, course_id, 1, TREATED[6], group=2)
    with pytest.raises(errors.FractionOutOfRange):
        log(ledger, course_id, 2, date(2026, 11, 11), group=2)
    course = ledger.app.get_course(course_id)
    assert [g.fractions_planned for g in course.plan.fraction_groups] == [5, 2]  # the original stays
    assert [g.fractions_planned for g in course.prescription.fraction_groups] == [6, 1]
    assert course.dose() == (14, 14) and course.next_fraction(HOME) is None
    history = [(a["by"], a["reason"][:20], a["before"], a["after"], a["countersigned_by"])
               for a in ledger.fresh().course(course_id)["amendments"]]
    assert history == [("onc.a", "a 6th large-field fr", 5, 6, "onc.b"), ("onc.a", "boost reduced by one", 2, 1, "onc.b")]


def test_the_read_model_rebuilds_to_the_same_gap_columns(ledger):
    course_id = interrupted(ledger)
    ledger.app.gaps.set_gap_category(course_id, 2, ONC_A)
    a = ledger.app.gaps.amend_prescription(course_id, {"kind": "extra_fractions", "fractions": 2, "reason": "x"}, ONC_A)
    ledger.app.gaps.countersign_amendment(course_id, a["amendment"]["id"], ONC_B)
    before = ledger.fresh().dump()
    ledger.rebuild() if hasattr(ledger, "rebuild") else ledger.fresh().rebuild(ledger.app)
    assert ledger.fresh().dump() == before
    [row] = worklist(ledger)
    assert (row["category"], row["category_from"], row["planned"], row["alarm"]) == (2, "physician", 37, False)


def test_the_worklist_orders_by_category_then_prolongation_and_filters_by_centre(ledger):
    interrupted(ledger)
    late = hn_course(ledger, patient_id="HN-LATE", dose=None)
    log(ledger, late, 1, TREATED[0])
    breast = hn_course(ledger, patient_id="BR-1", dose=None)
    ledger.app.gaps.set_schedule(breast, {"start": "2026-11-02"}, "breast", PHYSICIST)
    ledger.app.unassign_centre(breast, PARTNER, PHYSICIST)
    ledger.clock.now = TUESDAY_17
    rows = worklist(ledger)
    assert [(r["patient_id"], r["category"]) for r in rows] == [("HN-LATE", 1), ("HN-1", 1), ("BR-1", 2)]
    assert rows[0]["prolongation"] > rows[1]["prolongation"]
    assert [r["patient_id"] for r in worklist(ledger, PARTNER)] == ["HN-LATE", "HN-1"]


# ---- API ---------------------------------------------------------------------------------------------


@pytest.fixture
def client(ledger):
    from ledger.accounts import add_account, hash_token

    seed_accounts(ledger.app)
    for name, centre in (("onc1.home", HOME), ("onc2.home", HOME)):
        add_account(ledger.app, {"name": name, "role": "oncologist", "centre": centre}, hash_token(token_of(name)),
                    Actor("setup", "-"))
    with TestClient(create_app(ledger)) as c:
        yield c


def test_the_api_amends_under_four_eyes_and_lists_the_gaps(ledger, client, monkeypatch):
    course_id = interrupted(ledger)
    url = f"/api/courses/{course_id}/amendments"
    body = {"kind": "twice_daily", "day": "2026-11-17", "reason": "compensate"}
    assert client.post(url, json=body, headers=auth("physicist1.home")).status_code == 403
    proposed = client.post(url, json=body, headers=auth("onc1.home"))
    assert proposed.status_code == 201, proposed.text
    aid = proposed.json()["amendment"]["id"]
    own = client.post(f"{url}/{aid}/countersign", headers=auth("onc1.home"))
    assert own.status_code == 409 and own.json()["error"] == "countersigner_is_prescriber"
    [row] = client.get("/api/gaps", headers=auth("rtt1.partner")).json()
    assert (row["prolongation"], row["alarm"], row["pending_amendments"]) == (4, True, 1)
    signed = client.post(f"{url}/{aid}/countersign", headers=auth("onc2.home"))
    assert signed.status_code == 200 and signed.json()["amendment"]["countersigned_by"] == "onc2.home"
    assert client.get("/api/gaps", headers=auth("physicist1.home")).json()[0]["prolongation"] == 3
    assert client.get("/api/gaps?centre=OTHER", headers=auth("physicist1.home")).json() == []
    assert client.get("/api/gaps", headers=auth("rtt1.other")).json() == [], "need to know"
    bad = client.post(url, json={"kind": "extra_fractions", "reason": "x"}, headers=auth("onc1.home"))
    assert bad.status_code == 400 and bad.json()["fields"][0]["field"] == "fractions"
    monkeypatch.setenv("FRACTION_LEDGER_PHYSICISTS_PRESCRIBE", "1")
    by_physicist = client.post(url, json={"kind": "extra_fractions", "fractions": 1, "reason": "x"},
                               headers=auth("physicist1.home"))
    assert by_physicist.status_code == 201, by_physicist.text
    cat = client.post(f"/api/courses/{course_id}/gap-category", json={"category": 4}, headers=auth("onc1.home"))
    assert cat.status_code == 400
    cat = client.post(f"/api/courses/{course_id}/gap-category", json={"category": 2}, headers=auth("onc1.home"))
    assert cat.status_code == 200 and cat.json()["gap_category"] == 2


def test_the_alarm_threshold_is_configurable(ledger, client, monkeypatch):
    interrupted(ledger)
    monkeypatch.setenv("FRACTION_LEDGER_GAP_ALARM_DAYS", "4")
    assert client.get("/api/gaps", headers=auth("onc1.home")).json()[0]["alarm"] is False
    monkeypatch.setenv("FRACTION_LEDGER_GAP_ALARM_DAYS", "3")
    assert client.get("/api/gaps", headers=auth("onc1.home")).json()[0]["alarm"] is True


# ---- pages -------------------------------------------------------------------------------------------


def signed_in(client, name: str, lang: str = "en") -> str:
    client.cookies.set("lang", lang)
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post("/", data={"token": token_of(name), "_csrf_token": csrf}).status_code == 200
    return csrf


def test_the_alarm_shows_on_the_physicists_page_and_the_assigned_centres_pages(ledger, client):
    interrupted(ledger)
    for name, path in (("physicist1.home", "/physicist"), ("rtt1.partner", "/worklist"), ("rtt1.partner", "/gaps")):
        signed_in(client, name)
        page = client.get(path)
        assert page.status_code == 200 and 'id="gap-alarms"' in page.text, (name, path)
        assert "is 4 treatment days behind its schedule" in page.text
        client.post("/sign-out", data={"_csrf_token": re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)})
    signed_in(client, "rtt1.other")
    assert 'id="gap-alarms"' not in client.get("/worklist").text


def test_the_course_page_proposes_countersigns_and_categorises_in_dutch(ledger, client):
    course_id = interrupted(ledger)
    csrf = signed_in(client, "onc1.home", "nl")
    page = client.get(f"/courses/{course_id}")
    assert 'id="amend-form"' in page.text and 'id="gap-category-form"' in page.text
    assert 'id="gap-prolongation">4<' in page.text
    done = client.post(f"/courses/{course_id}/amendments", data={
        "kind": "twice_daily", "day": "2026-11-17", "reason": "compenseren", "_csrf_token": csrf})
    assert done.status_code == 200 and "Wijziging voorgesteld" in done.text
    assert "wacht op medeondertekening" in done.text and 'class="countersign"' not in done.text, "not one's own"
    refused = client.post(f"/courses/{course_id}/amendments", data={"kind": "extra_fractions", "reason": "x",
                                                                    "_csrf_token": csrf})
    assert refused.status_code == 400 and "heeft een aantal fracties nodig" in refused.text
    client.post(f"/courses/{course_id}/gap-category", data={"category": "1", "_csrf_token": csrf})
    client.cookies.clear()
    csrf = signed_in(client, "onc2.home", "fr")
    page = client.get(f"/courses/{course_id}")
    [aid] = re.findall(r'/amendments/([^/]+)/countersign', page.text)
    signed = client.post(f"/courses/{course_id}/amendments/{aid}/countersign", data={"_csrf_token": csrf})
    assert signed.status_code == 200 and "Modification contresignée" in signed.text
    assert 'id="gap-prolongation">3<' in signed.text and "deux fractions le" in signed.text
    assert ledger.app.get_course(course_id).gap_category == 1


def test_an_rtt_sees_the_gap_but_no_prescription_form(ledger, client):
    course_id = interrupted(ledger)
    signed_in(client, "rtt1.partner")
    page = client.get(f"/courses/{course_id}").text
    assert 'id="gap"' in page and 'id="amend-form"' not in page and 'id="gap-category-form"' not in page
    assert 'id="dose"' in page and "14 / 70" in page


# ---- CLI ---------------------------------------------------------------------------------------------


def test_the_cli_gaps_contract_with_json(tmp_path):
    db = tmp_path / "cli.sqlite3"
    env = {"FRACTION_LEDGER_CLOCK": "2026-11-17T07:00:00+01:00", "FRACTION_LEDGER_READ_DB": str(tmp_path / "r.sqlite3")}
    out = cli("--user", "phys", "course", "register", "--patient-id", "HN-9", "--patient-name", "PEETERS^AN",
              "--plan-uid", "1.2.3.9", "--plan-label", "H&N", "--fractions", "35", "--home-centre", HOME,
              "--beam", "1=200", "--assign", PARTNER, "--json", db=db, env=env, check=True)
    course_id = json.loads(out.stdout)["id"]
    cli("course", "schedule", course_id, "--start", "2026-11-02", "--site", "head_and_neck", db=db, env=env, check=True)
    for n, day in enumerate(TREATED, start=1):
        cli("fraction", "log", course_id, "--number", str(n), "--centre", HOME, "--machine", "L1", "--operator",
            "rtt.an", "--at", f"{day.isoformat()}T09:00+01:00", db=db, env=env, check=True)
    [row] = json.loads(cli("gaps", "--json", db=db, env=env, check=True).stdout)
    assert (row["id"], row["category"], row["missed"], row["prolongation"], row["alarm"]) == (course_id, 1, 4, 4, True)
    assert row["projected_end"] == "2026-12-24" and row["next_fraction"] == {"group": 1, "number": 8}
    assert json.loads(cli("gaps", "--centre", "OTHER", "--json", db=db, env=env, check=True).stdout) == []
    assert len(json.loads(cli("gaps", "--centre", PARTNER, "--json", db=db, env=env, check=True).stdout)) == 1
    text = cli("gaps", db=db, env=env, check=True).stdout
    assert text.startswith("ALARM Category 1 course H&N of patient HN-9 is 4 treatment days behind")
    amended = json.loads(cli("--user", "onc.a", "course", "amend", course_id, "--kind", "twice_daily", "--day",
                             "2026-11-17", "--reason", "compensate", "--json", db=db, env=env, check=True).stdout)
    aid = amended["amendment"]["id"]
    own = cli("--user", "onc.a", "course", "countersign", course_id, aid, db=db, env=env)
    assert own.returncode == 1 and "cannot countersign it" in own.stderr
    cli("--user", "onc.b", "course", "countersign", course_id, aid, db=db, env=env, check=True)
    [row] = json.loads(cli("gaps", "--json", db=db, env=env, check=True).stdout)
    assert row["prolongation"] == 3
    shown = json.loads(cli("course", "show", course_id, "--json", db=db, env=env, check=True).stdout)
    assert shown["gap"]["prolongation"] == 3 and shown["amendments"][0]["countersigned_by"] == "onc.b"
    text = cli("course", "show", course_id, db=db, env=env, check=True).stdout
    assert "prolonged 3 treatment days" in text and "two fractions on" in text and "countersigned by onc.b" in text
    bad = cli("course", "gap-category", course_id, "--category", "4", db=db, env=env)
    assert bad.returncode == 2


def test_the_course_api_shows_the_schedule_site_category_and_every_amendment(ledger, client):
    course_id = interrupted(ledger)
    proposed = client.post(f"/api/courses/{course_id}/amendments", headers=auth("onc1.home"),
                           json={"kind": "extra_fractions", "fractions": 1, "reason": "lost in the outage"}).json()
    client.post(f"/api/courses/{course_id}/amendments/{proposed['amendment']['id']}/countersign",
                headers=auth("onc2.home"))
    body = client.get(f"/api/courses/{course_id}", headers=auth("rtt1.partner")).json()
    assert body["schedule"]["start"] == "2026-11-02" and body["site"] == "head_and_neck"
    assert body["fractions_planned"] == 36
    assert (body["dose_delivered_gy"], body["dose_prescribed_gy"]) == ("14", "72")  # exact decimals
    [a] = body["amendments"]
    assert (a["kind"], a["before"], a["after"], a["by"], a["reason"], a["countersigned_by"]) == \
        ("extra_fractions", 35, 36, "onc1.home", "lost in the outage", "onc2.home")


def test_a_course_never_amended_has_no_amendments_and_the_default_schedule(ledger, client):
    course_id = ledger.app.register_course(
        {"patient": {"id": "P-PLAIN", "name": "PLAIN^ANN"}, "home_centre": HOME, "assigned_centres": [PARTNER],
         "plan": {"uid": "1.2.3.77", "label": "Plain", "fraction_groups": [
             {"number": 1, "fractions_planned": 5, "beams": [{"number": 1, "meterset": "100"}]}]}}, PHYSICIST)["id"]
    body = client.get(f"/api/courses/{course_id}", headers=auth("rtt1.home")).json()
    assert (body["amendments"], body["schedule"], body["site"], body["gap_category"]) == ([], None, None, None)
    assert body["dose_prescribed_gy"] is None, "no dose in the plan, none shown"


def test_bench_gaps_reports_the_worklist_it_timed():
    out = json.loads(cli("bench", "gaps", "--courses", "6", "--rounds", "1", "--json", check=True).stdout)
    assert (out["courses"], out["alarms"], out["rounds"]) == (6, 2, 1) and out["median_ms"] >= 0
