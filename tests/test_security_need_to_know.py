"""Issue 15.1, need to know: a user of a centre that does not treat a patient gets nothing of
that patient on any route or page (no name, no id in lists, 404 as for an unknown id on direct
ids, incidents, statements, deliveries and exports filtered), while the home and assigned
centres still get it; finance of a centre billed for the course sees it (and only finance);
an administrator manages the accounts of its own centre only.

The course is HOME's, assigned to PARTNER; FAR gave one fraction without being assigned
(accepted with a warning) and is billed for it; OTHER is unrelated and has its own course.
"""

from __future__ import annotations

import io
import re
import uuid
import zipfile

import pytest
from litestar.testing import TestClient

from adapters.http import create_app
from ledger.accounts import add_account, hash_token
from ledger.service import Actor
from tests.conftest import CLOCK_MONTH
from tests.http_support import (
    HOME, OTHER, PARTNER, PATIENT_NAME, account_name, auth, fraction_body, seed_accounts, seed_course, token_of,
)

FAR = "FAR"
PATIENT_ID = "P-001"
OTHER_NAME = "OTHERSIDE^OLIVIA"
MONTH = "from={}&to={}".format(*CLOCK_MONTH)
UNKNOWN = str(uuid.UUID(int=12345))


def who(role: str, centre: str) -> dict[str, str]:
    return auth(account_name(role, centre))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import os

    from adapters.runtime import Ledger

    tmp = tmp_path_factory.mktemp("need")
    os.environ["FRACTION_LEDGER_READ_DB"] = str(tmp / "read.sqlite3")
    try:
        with Ledger(str(tmp / "ledger.sqlite3")) as ledger:
            app = ledger.app
            seed_accounts(app)
            for role in ("rtt", "physicist", "finance"):
                name = account_name(role, FAR)
                add_account(app, {"name": name, "role": role, "centre": FAR}, hash_token(token_of(name)),
                            Actor("setup", "-"))
            course = seed_course(app, patient_id=PATIENT_ID)
            body = {"patient": {"id": "P-OTH", "name": OTHER_NAME, "birth_date": "1970-05-06", "sex": "M"},
                    "home_centre": OTHER, "plan": {"uid": "9.9.9.1", "label": "Prostate", "centre": OTHER,
                                                   "fraction_groups": [{"number": 1, "fractions_planned": 5, "beams": [
                                                       {"number": 1, "name": "ARC", "meterset": "300"}]}]}}
            own = app.register_course(body, Actor("setup", OTHER))["id"]
            for number, centre in ((1, HOME), (2, PARTNER), (3, FAR)):
                app.log_fraction(course, {**fraction_body(number), "centre": centre, "operator": f"rtt.{centre.lower()}"},
                                 Actor(f"rtt.{centre.lower()}", centre))
            incident = app.billing.register_incident(
                {"centre": PARTNER, "course_id": course, "category": "positioning", "severity": "low",
                 "description": "tattoo hard to see"}, Actor(account_name("rtt", PARTNER), PARTNER))["id"]
            for partner in (PARTNER, FAR):
                app.billing.agree({"billing_centre": HOME, "partner": partner, "rule": "pro-rata", "course_amount": "3000.00",
                           "valid_from": "2026-01-01"}, Actor(account_name("finance", HOME), HOME))
            app.complete_course(course, "stopped after 3", Actor(account_name("physicist", HOME), HOME))
            # the billing system refused the charge of this patient, in words that name it
            app.destinations.record_answers("billing", [], [{"id": "CTRL-1", "code": "AE", "text": f"Patient {PATIENT_ID} unknown",
                                                "course": course}], Actor("physicist1.home", HOME))
            with TestClient(create_app(ledger)) as client:
                yield {"client": client, "ledger": ledger, "course": course, "own": own, "incident": incident}
    finally:
        os.environ.pop("FRACTION_LEDGER_READ_DB", None)


FAMILY_NAME = PATIENT_NAME.split("^")[0]  # pages show the name with a space for the ^


def reveals(text: str, w: dict) -> bool:
    return FAMILY_NAME in text or PATIENT_ID in text or w["course"] in text


def position(w) -> int:
    return w["ledger"].app.recorder.max_notification_id()


def same_as_unknown(client, url: str, unknown_url: str, secret: str, headers: dict, method: str = "GET",
                    **kw) -> None:
    """The refusal for an id the caller may not see is the one for an id nobody has: 404, same body."""
    seen = client.request(method, url, headers=headers, **kw)
    nobody = client.request(method, unknown_url, headers=headers, **kw)
    assert seen.status_code == nobody.status_code == 404, (url, seen.status_code, seen.text)
    assert seen.text.replace(secret, "ID") == nobody.text.replace(UNKNOWN, "ID").replace("nobody.at.all", "ID")


# ---- the API: courses and their events ---------------------------------------------------------


@pytest.mark.parametrize("role", ["rtt", "physicist", "finance"])
def test_an_unrelated_centre_lists_and_reads_nothing_of_the_patient(world, role):
    c, course = world["client"], world["course"]
    listed = c.get("/api/courses", headers=who(role, OTHER))
    assert listed.status_code == 200 and not reveals(listed.text, world)
    assert [x["id"] for x in listed.json()] == [world["own"]]  # its own patient, still
    for path in ("", "/events"):
        same_as_unknown(c, f"/api/courses/{course}{path}", f"/api/courses/{UNKNOWN}{path}", course, who(role, OTHER))
    same_as_unknown(c, f"/api/incidents?course_id={course}", f"/api/incidents?course_id={UNKNOWN}", course,
                    who(role, OTHER))


@pytest.mark.parametrize("centre", [HOME, PARTNER])
@pytest.mark.parametrize("role", ["rtt", "physicist", "finance"])
def test_the_home_and_assigned_centres_still_see_the_patient(world, role, centre):
    c, course = world["client"], world["course"]
    listed = c.get("/api/courses", headers=who(role, centre)).json()
    assert [x["patient_name"] for x in listed if x["id"] == course] == [PATIENT_NAME]
    assert world["own"] not in {x["id"] for x in listed}
    assert c.get(f"/api/courses/{course}", headers=who(role, centre)).json()["patient_name"] == PATIENT_NAME
    assert len(c.get(f"/api/courses/{course}/events", headers=who(role, centre)).json()) >= 4


def test_the_log_shows_only_the_events_of_courses_one_sees(world):
    c, course = world["client"], world["course"]
    for role in ("physicist", "finance"):
        theirs = c.get("/api/events?limit=1000", headers=who(role, OTHER))
        assert theirs.status_code == 200 and not reveals(theirs.text, world)
        assert {e["stream"] for e in theirs.json()} == {world["own"]}
        ours = c.get("/api/events?limit=1000", headers=who(role, HOME)).json()
        assert course in {e["stream"] for e in ours} and world["own"] not in {e["stream"] for e in ours}
        assert any(e["data"].get("patient", {}).get("name") == PATIENT_NAME for e in ours if e["stream"] == course)


def test_writes_on_an_unseen_course_are_404_and_write_nothing(world):
    c, course = world["client"], world["course"]
    before = position(world)
    cases = [("rtt", "/fractions", fraction_body(9)), ("rtt", "/fractions/1/verify", {}),
             ("physicist", "/assign", {"centre": OTHER}), ("physicist", "/triage", {"triage": 1}),
             ("physicist", "/suspend", {"reason": "x"}), ("finance", "/settle", None),
             ("finance", "/category", {"category": "complex"})]
    for role, path, body in cases:
        same_as_unknown(c, f"/api/courses/{course}{path}", f"/api/courses/{UNKNOWN}{path}", course, who(role, OTHER),
                        method="POST", json=body)
    # registering an incident about it, and acknowledging its records in an import set
    r = c.post("/api/incidents", headers=who("rtt", OTHER),
               json={"category": "other", "severity": "low", "description": "x", "course_id": course})
    assert r.status_code == 404 and r.json()["error"] == "course_not_found" and r.json()["message"].count(course) == 1
    item = {"group": 1, "number": 1, "record_ids": ["r"]}
    r = c.post("/api/reconcile/acknowledge", headers=who("physicist", OTHER),
               json={"set_id": "s", "items": [{**item, "course_id": course}]})
    u = c.post("/api/reconcile/acknowledge", headers=who("physicist", OTHER),
               json={"set_id": "s", "items": [{**item, "course_id": UNKNOWN}]})
    assert r.status_code == u.status_code == 404 and r.text.replace(course, "ID") == u.text.replace(UNKNOWN, "ID")
    assert position(world) == before


def test_a_partner_physicist_sees_but_may_not_change_what_is_the_home_centres(world):
    """403 is kept where the caller already sees the course: it tells nothing new."""
    r = world["client"].post(f"/api/courses/{world['course']}/triage", headers=who("physicist", PARTNER),
                             json={"triage": 1})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


# ---- incidents --------------------------------------------------------------------------------


def test_incidents_and_their_exports_are_filtered(world):
    c, incident = world["client"], world["incident"]
    for role in ("rtt", "physicist", "finance"):
        r = c.get("/api/incidents", headers=who(role, OTHER))
        assert r.status_code == 200 and r.json() == []
        assert incident in {i["id"] for i in c.get("/api/incidents", headers=who(role, HOME)).json()}
    for query in ("", f"?centre={HOME}", f"?centre={PARTNER}"):
        for path in ("/api/incidents/export", "/api/incidents/export.csv"):
            theirs = c.get(path + query, headers=who("physicist", OTHER))
            assert theirs.status_code == 200 and not reveals(theirs.text, world) and incident not in theirs.text
    ours = c.get(f"/api/incidents/export.csv?centre={HOME}", headers=who("physicist", HOME)).text
    assert incident in ours and world["course"] in ours
    # following up (or closing) an incident one does not see is as for an unknown incident
    for role, path, body in (("rtt", "follow-up", {"text": "x"}), ("physicist", "close", {"resolution": "x"})):
        same_as_unknown(c, f"/api/incidents/{incident}/{path}", f"/api/incidents/{UNKNOWN}/{path}", incident,
                        who(role, OTHER), method="POST", json=body)


# ---- billing: finance sees the courses its centre is billed for ---------------------------------


def test_finance_statements_splits_and_agreements_of_an_unrelated_centre_are_empty(world):
    c, course = world["client"], world["course"]
    fin = who("finance", OTHER)
    for query in (MONTH, f"{MONTH}&pair={HOME}:{PARTNER}"):
        for path in ("/api/billing/statement", "/api/billing/statement.csv"):
            r = c.get(f"{path}?{query}", headers=fin)
            assert r.status_code == 200 and not reveals(r.text, world), (path, query)
    assert c.get(f"/api/billing/statement?{MONTH}", headers=fin).json()["lines"] == []
    assert c.get("/api/billing/agreements", headers=fin).json() == []
    same_as_unknown(c, f"/api/courses/{course}/splits", f"/api/courses/{UNKNOWN}/splits", course, fin)
    home = c.get(f"/api/billing/statement?{MONTH}", headers=who("finance", HOME)).json()
    assert {line["centre"] for line in home["lines"] if line["course_id"] == course} == {HOME, PARTNER, FAR}


def test_finance_of_a_billed_centre_sees_that_course_and_its_clinicians_do_not(world):
    """FAR gave a fraction without being assigned and is paid for it: its finance must check the
    line (documented in ledger/access.py, SEES), its RTTs and physicists have no need to know."""
    c, course = world["client"], world["course"]
    fin = who("finance", FAR)
    assert course in {x["id"] for x in c.get("/api/courses", headers=fin).json()}
    assert c.get(f"/api/courses/{course}", headers=fin).status_code == 200
    assert any(s["current"] for s in c.get(f"/api/courses/{course}/splits", headers=fin).json())
    lines = c.get(f"/api/billing/statement?{MONTH}&pair={HOME}:{FAR}", headers=fin).json()["lines"]
    assert {(x["course_id"], x["centre"]) for x in lines} == {(course, HOME), (course, FAR)}
    assert {(a["billing_centre"], a["partner"]) for a in c.get("/api/billing/agreements", headers=fin).json()} \
        == {(HOME, FAR)}
    for role in ("rtt", "physicist"):
        assert course not in c.get("/api/courses", headers=who(role, FAR)).text
        assert c.get(f"/api/courses/{course}", headers=who(role, FAR)).status_code == 404
    # seeing is not settling another pair's course: a write stays refused
    assert c.post(f"/api/courses/{course}/category", headers=fin, json={"category": "x"}).status_code == 403


# ---- deliveries, exports, recovery, imports ----------------------------------------------------------


def test_deliveries_show_refusals_of_seen_courses_only(world):
    c = world["client"]
    for role in ("physicist", "finance"):
        theirs = c.get("/api/deliveries", headers=who(role, OTHER))
        assert theirs.status_code == 200 and not reveals(theirs.text, world) and "CTRL-1" not in theirs.text
        ours = c.get("/api/deliveries", headers=who(role, HOME)).json()
        billing = next(d for d in ours if d["destination"] == "billing")
        assert [(r["control_id"], r["course"]) for r in billing["refused"]] == [("CTRL-1", world["course"])]


def zip_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return " ".join(z.namelist()) + " ".join(z.read(n).decode("latin-1") for n in z.namelist())


def test_exports_of_an_unrelated_physicist_hold_nothing_of_the_patient(world):
    c, course = world["client"], world["course"]
    phys = who("physicist", OTHER)
    for kind in ("hl7", "dicom"):
        same_as_unknown(c, f"/api/exports/{kind}?course_id={course}", f"/api/exports/{kind}?course_id={UNKNOWN}",
                        course, phys)
        theirs = c.get(f"/api/exports/{kind}", headers=phys)
        assert theirs.status_code == 200 and not reveals(zip_text(theirs.content), world)
    ours = c.get("/api/exports/dicom", headers=who("physicist", HOME))
    assert course in zip_text(ours.content)


def test_recovery_of_an_unrelated_centre_compares_its_own_courses_only(world):
    c, course = world["client"], world["course"]
    files = {"files": ("notes.txt", b"not DICOM", "text/plain")}
    theirs = c.post("/api/reconcile", headers=who("physicist", OTHER), files=files)
    assert theirs.status_code == 200 and not reveals(theirs.text, world)
    assert world["own"] in theirs.text  # its own course, which the OIS upload lacks
    report = c.post("/api/reconcile/report", headers=who("physicist", OTHER), files=files)
    assert report.status_code == 200 and not reveals(report.text, world)
    ours = c.post("/api/reconcile", headers=who("physicist", HOME), files=files)
    assert course in ours.text


def test_an_import_treats_another_centres_patient_as_unknown(world):
    c, course = world["client"], world["course"]
    before = position(world)
    csv_text = f"patient_id,plan,triage,centre\n{PATIENT_ID},1.2.3.4.1,1,\nP-NOBODY,1.2.3.4.1,1,\n"
    r = c.post("/api/imports/triage", headers=who("physicist", OTHER),
               files={"files": ("triage.csv", csv_text.encode(), "text/csv")})
    assert r.status_code == 200
    known, unknown = r.json()
    assert known["status"] == unknown["status"] == "error" and known["course_id"] is None
    assert known["error"].replace(PATIENT_ID, "X") == unknown["error"].replace("P-NOBODY", "X")
    assert course not in r.text
    files = {"files": ("plan.dcm", b"x", "application/dicom")}
    same_as_unknown(c, f"/api/imports/plans?fallback_for={course}", f"/api/imports/plans?fallback_for={UNKNOWN}",
                    course, who("physicist", OTHER), method="POST", files=files)
    assert position(world) == before


# ---- pages --------------------------------------------------------------------------------------


def signed_in(name: str, w) -> tuple[TestClient, str]:
    client = TestClient(create_app(w["ledger"]))
    client.__enter__()
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post("/", data={"token": token_of(name), "_csrf_token": csrf}).status_code == 200
    return client, csrf


@pytest.fixture(scope="module")
def pages(world):
    clients = {}
    for role, centre in (("rtt", OTHER), ("physicist", OTHER), ("finance", OTHER), ("admin", OTHER),
                         ("physicist", HOME), ("finance", FAR), ("admin", HOME)):
        clients[(role, centre)] = signed_in(account_name(role, centre), world)
    yield clients
    for client, _ in clients.values():
        client.__exit__(None, None, None)


PAGES = {"rtt": ["/worklist"], "physicist": ["/physicist", "/physicist/exports", "/physicist/recovery"],
         "finance": [f"/finance?{MONTH}", f"/finance/statement.csv?{MONTH}"]}


@pytest.mark.parametrize("role", ["rtt", "physicist", "finance"])
def test_pages_of_an_unrelated_centre_show_nothing_of_the_patient(world, pages, role):
    client, _ = pages[(role, OTHER)]
    for path in PAGES[role]:
        r = client.get(path)
        assert r.status_code == 200 and not reveals(r.text, world), path
    seen, nobody = client.get(f"/courses/{world['course']}"), client.get(f"/courses/{UNKNOWN}")
    assert seen.status_code == nobody.status_code == 404
    assert seen.text.replace(world["course"], "ID") == nobody.text.replace(UNKNOWN, "ID")
    if role == "physicist":
        for kind in ("hl7", "dicom"):
            assert not reveals(zip_text(client.get(f"/physicist/exports/{kind}.zip").content), world)


def test_pages_of_the_home_and_billed_centres_still_show_it(world, pages):
    client, _ = pages[("physicist", HOME)]
    assert FAMILY_NAME in client.get("/physicist").text
    assert FAMILY_NAME in client.get(f"/courses/{world['course']}").text
    assert f"Patient {PATIENT_ID} unknown" in client.get("/physicist/exports").text
    client, _ = pages[("finance", FAR)]
    assert PATIENT_ID in client.get(f"/finance?{MONTH}").text


# ---- accounts: an administrator manages its own centre's -----------------------------------------


def test_an_admin_lists_and_adds_accounts_of_its_own_centre_only(world):
    c = world["client"]
    listed = c.get("/api/accounts", headers=who("admin", OTHER)).json()
    assert listed and {a["centre"] for a in listed} == {OTHER}
    before = position(world)
    r = c.post("/api/accounts", headers=who("admin", OTHER), json={"name": "mole", "role": "physicist",
                                                                  "centre": HOME})
    assert r.status_code == 403 and "centre" in r.json()["message"] and "token" not in r.json()
    # a name taken at another centre is refused without telling whose it is
    r = c.post("/api/accounts", headers=who("admin", OTHER),
               json={"name": account_name("physicist", HOME), "role": "rtt", "centre": OTHER})
    assert r.status_code == 409 and HOME not in r.text and "physicist at" not in r.text
    assert position(world) == before


def test_an_admin_cannot_revoke_or_rotate_another_centres_account(world):
    c = world["client"]
    victim = account_name("physicist", HOME)
    before = position(world)
    for action in ("revoke", "rotate"):
        same_as_unknown(c, f"/api/accounts/{victim}/{action}", f"/api/accounts/nobody.at.all/{action}", victim,
                        who("admin", OTHER), method="POST")
    assert position(world) == before
    assert c.get("/api/me", headers=auth(victim)).json()["user"] == victim  # still works


def test_an_admin_rotates_and_revokes_its_own_centres_account(world):
    c = world["client"]
    name = "rtt9.home"
    created = c.post("/api/accounts", headers=who("admin", HOME), json={"name": name, "role": "rtt", "centre": HOME})
    assert created.status_code == 201
    first = created.json()["token"]
    rotated = c.post(f"/api/accounts/{name}/rotate", headers=who("admin", HOME))
    assert rotated.status_code == 200 and rotated.json()["token"] != first
    assert c.get("/api/me", headers={"Authorization": f"Bearer {first}"}).status_code == 401
    new = {"Authorization": f"Bearer {rotated.json()['token']}"}
    assert c.get("/api/me", headers=new).status_code == 200
    assert c.post(f"/api/accounts/{name}/revoke", headers=who("admin", HOME)).json()["active"] is False
    assert c.get("/api/me", headers=new).status_code == 401


def test_the_admin_page_is_its_own_centres(world, pages):
    client, csrf = pages[("admin", OTHER)]
    page = client.get("/admin").text
    assert account_name("rtt", OTHER) in page and account_name("physicist", HOME) not in page
    before = position(world)
    victim = account_name("physicist", HOME)
    assert client.post(f"/admin/accounts/{victim}/revoke", data={"_csrf_token": csrf}).status_code == 404
    assert client.post(f"/admin/accounts/{victim}/rotate", data={"_csrf_token": csrf}).status_code == 404
    r = client.post("/admin/accounts", data={"name": "mole2", "role": "physicist", "centre": HOME,
                                             "_csrf_token": csrf})
    assert r.status_code == 403 and "fl_" not in r.text
    assert position(world) == before
    home, home_csrf = pages[("admin", HOME)]
    r = home.post(f"/admin/accounts/{account_name('rtt', HOME, 2)}/rotate", data={"_csrf_token": home_csrf})
    assert r.status_code == 200 and re.search(r'id="new-token">fl_', r.text)
