"""Lists that scale (issue 20 point 5): the courses a centre sees, a page at a time, filtered and
sorted in SQL (adapters/readmodel_lists.py), give exactly what the page's old Python filter and
sort gave; the API pages with limit/offset (X-Total-Count, Link) and refuses bad values naming the
field; the worklist, the incidents and the finance page page with links in the page's language.
Not timed: the speed is `fraction-ledger bench lists`."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone

import msgspec
import pytest
from litestar.testing import TestClient

from adapters.http import create_app
from adapters.http.i18n import words
from adapters.http.paging import api_paging
from adapters.readmodel_lists import PAGE_SIZE, folded
from ledger import day as days
from ledger import errors
from ledger import schedule as schedules
from ledger.service import Actor
from schemas.schedule import Schedule
from tests.http_support import HOME, OTHER, PARTNER, account_name, auth, course_body, seed_accounts, token_of

MONDAY = datetime(2027, 3, 29, 8, 0, tzinfo=timezone.utc)
RTT = account_name("rtt", PARTNER)
NAMES = ("MÜLLER^ZOË", "PEETERS^AN", "JANSSENS^MARC", "CLAES^JAN", "DUBOIS^ÉLODIE", None)


def many(ledger, n: int, home: str = HOME, tag: int = 0) -> list[str]:
    """`n` courses of varied status, triage, schedule, counts, names and centres; some treated today."""
    app, setup = ledger.app, Actor("setup", home)
    ids = []
    for i in range(n):
        body = course_body(patient_id=f"P-{tag or ''}{(i * 37) % 101:03d}", uid=f"1.2.3.9.{tag + 1}{len(home)}{ord(home[0])}.{i}", fractions=3 + i % 3,
                           assigned=(PARTNER,) if i % 4 else ())
        body["home_centre"] = home
        body["patient"]["name"] = NAMES[i % len(NAMES)] or "X"
        body["triage"] = (i % 6) or None
        if i % 5 == 0:
            body["schedule"] = {"weekdays": [2, 4]}  # not due on a Monday
        cid = app.register_course(body, setup)["id"]
        ids.append(cid)
        for k in range(1, i % 4):
            at = MONDAY - timedelta(hours=1) if k == i % 4 - 1 and i % 3 == 0 else MONDAY - timedelta(days=7 - k)
            app.log_fraction(cid, {"number": k, "centre": PARTNER, "machine": "TB2", "operator": "rtt",
                                   "delivered_at": at}, Actor("rtt", PARTNER))
        if i % 7 == 3:
            app.suspend_course(cid, "skin reaction", setup)
    return ids


@pytest.fixture
def world(ledger):
    seed_accounts(ledger.app)
    ledger.clock.now = MONDAY
    ids = many(ledger, 36)
    many(ledger, 3, home=OTHER)  # another centre's: never listed to PARTNER or HOME
    return ledger, ids


# The worklist's filter and sort as the page did them in Python before issue 20.5: the reference.
OLD_SORTS = {
    "day": lambda c: days.day_order(c["due"], c["triage"], c["patient_id"]),
    "patient": lambda c: (c["patient_name"] or "", c["patient_id"]),
    "plan": lambda c: c["plan_label"] or "",
    "triage": lambda c: (c["triage"] or 9, c["patient_id"]),
    "fractions": lambda c: (c["fractions_delivered"] / max(c["fractions_planned"] or 1, 1), c["patient_id"]),
    "last": lambda c: c["last_fraction_at"] or "",
    "awaiting": lambda c: (c["awaiting_verification"] or 0, c["patient_id"]),
    "status": lambda c: (c["status"], c["patient_id"]),
}


def old_list(read, centre, today, zone, sort, reverse, keep=lambda c: True):
    every = [c for c in read.courses() if c["home_centre"] == centre or centre in c["assigned_centres"]]
    every.sort(key=lambda c: (c["patient_id"], c["registered_at"], c["id"]))
    for c in every:
        given = msgspec.convert(c["schedule"], Schedule) if c.get("schedule") else None
        last = schedules.local_day(datetime.fromisoformat(c["last_fraction_at"]), zone) if c["last_fraction_at"] else None
        c["due"] = days.due_state(today, c["status"], c["fractions_delivered"] or 0, c["fractions_planned"] or 0, last, given)
    shown = [c for c in every if keep(c)]
    shown.sort(key=OLD_SORTS[sort], reverse=reverse)
    return [(c["id"], c["due"]) for c in shown]


def test_every_sort_both_ways_gives_the_old_order_and_pages_add_up_to_it(world):
    ledger, _ = world
    read, zone = ledger.fresh(), ledger.app.zone_of(PARTNER)
    today = schedules.local_day(MONDAY, zone)
    for sort in OLD_SORTS:
        for descending in (False, True):
            expected = old_list(read, PARTNER, today, zone, sort, descending)
            rows, total = read.course_page(PARTNER, sort=sort, descending=descending, today=today, zone=zone)
            assert [(r["id"], r["due"]) for r in rows] == expected, (sort, descending)
            assert total == len(expected) > 20
            pages = [read.course_page(PARTNER, sort=sort, descending=descending, today=today, zone=zone,
                                      limit=7, offset=k)[0] for k in range(0, total, 7)]
            assert [r["id"] for p in pages for r in p] == [e[0] for e in expected]
    states = {due for _, due in old_list(read, PARTNER, today, zone, "day", False)}
    assert states == {days.DUE, days.TREATED, days.NOT_DUE}  # the fixture has each
    counts = read.day_counts(PARTNER, False, today, zone)
    old = old_list(read, PARTNER, today, zone, "day", False)
    assert counts == {days.DUE: sum(d == days.DUE for _, d in old), days.TREATED: sum(d == days.TREATED for _, d in old),
                      "all": len(old)}


def test_filters_and_search_in_sql_match_the_old_filter(world):
    ledger, _ = world
    read, zone = ledger.fresh(), ledger.app.zone_of(PARTNER)
    today = schedules.local_day(MONDAY, zone)

    def both(keep, **query):
        expected = old_list(read, PARTNER, today, zone, "day", False, keep)
        rows, total = read.course_page(PARTNER, sort="day", today=today, zone=zone, **query)
        assert [(r["id"], r["due"]) for r in rows] == expected and total == len(expected), query
        return len(expected)

    assert both(lambda c: c["status"] == "suspended", status="suspended") > 0
    assert both(lambda c: c["triage"] == 2, triage=2) > 0
    assert both(lambda c: bool(c["awaiting_verification"]), awaiting=True) > 0
    for q in ("muller", "Müller zoë", "élodie", "p-00", "P-07", "jan", "nobody"):
        wanted = folded(q)
        n = both(lambda c: wanted in folded(c["patient_id"]) or all(w in folded(c["patient_name"]) for w in wanted.split()),
                 search=q)
        assert (n == 0) == (q == "nobody"), q
    # a course registered after a search is found by the next one (the folded names follow the rows)
    body = course_body(patient_id="P-NEW", uid="1.2.3.77.1")
    body["patient"]["name"] = "NIEUW^PATIËNT"
    ledger.app.register_course(body, Actor("setup", HOME))
    assert [r["patient_id"] for r in ledger.fresh().course_page(PARTNER, search="patient")[0]] == ["P-NEW"]
    assert read.course_page(HOME)[1] == 37 and read.course_page(OTHER)[1] == 3 and read.course_page("NOWHERE")[1] == 0


def test_an_older_read_model_gets_the_indexes_when_opened(world, tmp_path):
    ledger, _ = world
    conn = ledger.read.conn
    conn.execute("DROP INDEX courses_listed")
    ledger.read.create_tables()
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"courses_listed", "courses_site", "incidents_listed", "splits_billing"} <= names
    plan = " ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN SELECT * FROM courses c ORDER BY "
                                              "c.patient_id, c.registered_at, c.id LIMIT 5"))
    assert "courses_listed" in plan


# ---- over HTTP ----------------------------------------------------------------------------------


@pytest.fixture
def site(world):
    ledger, ids = world
    with TestClient(create_app(ledger)) as client:
        client.ledger, client.ids = ledger, ids
        yield client


def test_api_courses_pages_with_total_and_links_and_keeps_a_plain_array(site):
    who = auth(RTT)
    whole = site.get("/api/courses", headers=who)
    n = len(whole.json())
    assert whole.status_code == 200 and n > 20 and whole.headers["x-total-count"] == str(n)
    assert "link" not in whole.headers  # everything fits the default page
    first = site.get("/api/courses?limit=10", headers=who)
    assert [c["id"] for c in first.json()] == [c["id"] for c in whole.json()[:10]]
    assert first.headers["x-total-count"] == str(n)
    assert '</api/courses?limit=10&offset=10>; rel="next"' in first.headers["link"]
    last = site.get("/api/courses?limit=10&offset=20", headers=who)
    assert [c["id"] for c in last.json()] == [c["id"] for c in whole.json()[20:]]
    assert 'rel="prev"' in last.headers["link"] and 'rel="next"' not in last.headers["link"]
    suspended = site.get("/api/courses?status=suspended&limit=2", headers=who)
    assert {c["status"] for c in suspended.json()} == {"suspended"}
    assert int(suspended.headers["x-total-count"]) == sum(c["status"] == "suspended" for c in whole.json())
    assert "status=suspended" in suspended.headers["link"]
    other = site.get("/api/courses", headers=auth(account_name("rtt", OTHER)))
    assert other.headers["x-total-count"] == "3"  # need to know: only its own


@pytest.mark.parametrize("query, field", [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"),
                                          ("offset=-1", "offset"), ("offset=1.5", "offset")])
def test_bad_paging_is_refused_naming_the_field_in_the_callers_language(site, query, field):
    for path in ("/api/courses", "/api/incidents"):
        answer = site.get(f"{path}?{query}", headers=auth(RTT))
        assert answer.status_code == 400, (path, query)
        body = answer.json()
        assert body["fields"][0]["field"] == field and "whole number" in body["fields"][0]["reason"]
    name, value = query.split("=")
    with pytest.raises(errors.InvalidCommand) as refused:
        api_paging(value if name == "limit" else None, value if name == "offset" else None)
    assert refused.value.field == field
    assert "geheel" in words("nl").say(refused.value) and "nombre entier" in words("fr").say(refused.value)


def test_api_incidents_page(site):
    ledger, ids = site.ledger, site.ids
    for n, cid in enumerate([c for i, c in enumerate(ids) if i % 4][:5]):  # courses assigned to PARTNER
        site.post("/api/incidents", headers=auth(RTT), json={
            "course_id": cid, "category": "positioning", "severity": "low", "description": f"shift {n}"})
    whole = site.get("/api/incidents", headers=auth(RTT)).json()
    assert [i["description"] for i in whole] == [f"shift {n}" for n in range(5)]
    page = site.get("/api/incidents?limit=2&offset=2", headers=auth(RTT))
    assert [i["description"] for i in page.json()] == ["shift 2", "shift 3"]
    assert page.headers["x-total-count"] == "5" and 'rel="next"' in page.headers["link"]
    assert site.get("/api/incidents", headers=auth(account_name("rtt", OTHER))).headers["x-total-count"] == "0"


def sign_in(client, name: str, lang: str = "en") -> None:
    client.cookies.clear()
    client.headers["Accept-Language"] = lang
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post("/", data={"token": token_of(name), "_csrf_token": csrf}).status_code == 200


def ids_on(page: str) -> list[str]:
    body = page.split('<table class="courses day">')[1].split("</table>")[0]
    return re.findall(r'<a href="/courses/([0-9a-f-]+)">', body)


def test_the_worklist_pages_in_the_day_order_with_links_in_the_pages_language(site):
    ledger = site.ledger
    many(ledger, PAGE_SIZE, home=PARTNER)  # 86 courses for PARTNER: two pages
    read, zone = ledger.fresh(), ledger.app.zone_of(PARTNER)
    expected = [i for i, _ in old_list(read, PARTNER, schedules.local_day(MONDAY, zone), zone, "day", False)]
    sign_in(site, RTT)
    first = site.get("/worklist").text
    assert ids_on(first) == expected[:PAGE_SIZE]
    assert "Page 1 of 2" in html.unescape(first) and 'rel="next"' in first and 'rel="prev"' not in first
    assert f"{len(expected)} of {len(expected)} courses shown" in html.unescape(first)
    second = site.get("/worklist?page=2").text
    assert ids_on(second) == expected[PAGE_SIZE:]
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert ids_on(site.get("/worklist?page=99").text) == expected[PAGE_SIZE:]  # past the end: the last page
    # a sort link starts again at page 1; a page link keeps the sort and the filters
    assert 'href="/worklist?sort=patient"' in second
    by_name = site.get("/worklist?sort=patient&dir=desc&status=active").text
    assert "/worklist?status=active&amp;sort=patient&amp;dir=desc&amp;page=2" in by_name
    sign_in(site, RTT, "nl")
    dutch = html.unescape(site.get("/worklist?page=2").text)
    assert "Pagina 2 van 2" in dutch and "Vorige" in dutch
    sign_in(site, RTT, "fr")
    assert "Suivante" in html.unescape(site.get("/worklist").text)


def test_the_finance_page_pages_its_courses(site):
    many(site.ledger, PAGE_SIZE, home=HOME, tag=1)
    sign_in(site, account_name("finance", HOME))
    page = html.unescape(site.get("/finance").text)
    assert "Page 1 of 2" in page and 'rel="next"' in page
    assert "Page 2 of 2" in html.unescape(site.get("/finance?page=2").text)
