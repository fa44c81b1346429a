"""Issue 15, point 2: the access log (NEN 7513).

Every read of a patient's data, on a page, the API, an export or the command line, leaves one
entry in the event log itself (hash-chained like every event) saying who (user, role, centre),
when (the ledger's clock), what (action and route or command), which courses and patients, and
from where. Administrators and privacy officers list it per patient, user or course; nobody
can change it; a read whose entry cannot be written is refused with 503, never served.
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient

from adapters.chain import verify
from adapters.http import create_app
from adapters.http.access_log import UNLOGGED
from adapters.http.auth import PUBLIC
from adapters.runtime import Ledger
from ledger.access import RULES
from ledger.access_log import TOPIC, AccessLogEntry
from ledger.service import Actor
from tests.conftest import Clock, cli
from tests.http_support import (
    HOME, OTHER, PARTNER, PATIENT_NAME, account_name, auth, course_body, seed_accounts, seed_course, token_of,
)

RTT = account_name("rtt", PARTNER)
PHYS = account_name("physicist", HOME)
ADMIN = account_name("admin", HOME)
PRIVACY = account_name("privacy", HOME)


class World:
    def __init__(self, ledger: Ledger, clock: Clock, db: str, read_db: str):
        self.ledger, self.clock, self.db, self.read_db = ledger, clock, db, read_db
        seed_accounts(ledger.app)
        self.course = seed_course(ledger.app)                                     # P-001, home HOME, at PARTNER
        self.other = seed_course(ledger.app, patient_id="P-002", uid="1.2.3.4.2")  # P-002, at PARTNER too
        self.elsewhere = seed_course(ledger.app, patient_id="P-OTHER", uid="1.2.3.4.3", home=OTHER, assigned=())
        self.incident = ledger.app.billing.register_incident(
            {"centre": PARTNER, "course_id": self.course, "category": "positioning", "severity": "low",
             "description": "tattoo hard to see"}, Actor(RTT, PARTNER))["id"]
        self.client = TestClient(create_app(ledger))

    def entries(self) -> list[dict]:
        """Every access-log entry so far, oldest first, straight from the event log."""
        out = []
        for n in self.ledger.app.recorder.select_notifications(0, 10**6, topics=[TOPIC]):
            e = self.ledger.app.mapper.to_domain_event(n)
            out.append({"id": n.id, "user": e.user, "role": e.role, "centre": e.centre, "channel": e.channel,
                        "client": e.client, "action": e.action, "path": e.path, "at": e.meta["recorded_at"],
                        "courses": e.courses})
        return out

    def last(self) -> dict:
        return self.entries()[-1]


@pytest.fixture
def world(tmp_path, monkeypatch):
    db, read_db = str(tmp_path / "ledger.sqlite3"), str(tmp_path / "read.sqlite3")
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", read_db)
    clock = Clock()
    with Ledger(db, clock=clock) as ledger:
        w = World(ledger, clock, db, read_db)
        with w.client:
            yield w


def shown(entry: dict) -> list[tuple[str, str, str]]:
    return [(c["course_id"], c["patient_id"], c["home_centre"]) for c in entry["courses"]]


def signed_in(client, name: str) -> None:
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    r = client.post("/", data={"token": token_of(name), "_csrf_token": csrf}, follow_redirects=False)
    assert r.status_code in (301, 302, 303), r.text


# ---- each kind of read leaves its entry -----------------------------------------------------


def test_an_api_course_read_records_who_when_what_which_patient_and_from_where(world):
    before = len(world.entries())
    r = world.client.get(f"/api/courses/{world.course}", headers=auth(RTT))
    assert r.status_code == 200 and r.json()["patient_name"] == PATIENT_NAME
    entries = world.entries()
    assert len(entries) == before + 1  # one small entry per read
    e = entries[-1]
    assert (e["user"], e["role"], e["centre"]) == (RTT, "rtt", PARTNER)
    assert (e["channel"], e["client"]) == ("http", "testclient")  # the client's address, as the server saw it
    assert e["action"] == "courses.read" and e["path"] == f"GET /api/courses/{world.course}"
    assert shown(e) == [(world.course, "P-001", HOME)]
    # when: the ledger's (injected) clock, timezone-aware; the last instant it gave out
    assert e["at"].utcoffset() is not None and e["at"] == world.clock.now


def test_course_events_all_events_and_incident_exports_each_name_their_patients(world):
    c = world.client
    assert c.get(f"/api/courses/{world.course}/events", headers=auth(RTT)).status_code == 200
    e = world.last()
    assert (e["action"], shown(e)) == ("courses.read", [(world.course, "P-001", HOME)])
    assert e["path"].endswith("/events")

    assert c.get("/api/events?limit=1000", headers=auth(PHYS)).status_code == 200
    e = world.last()  # the events name only stream ids: the patients come from the read model
    assert e["action"] == "events.read" and e["path"] == "GET /api/events?limit=1000"
    # need to know: the home physicist is shown (and so logged for) its own centre's courses only
    assert set(shown(e)) == {(world.course, "P-001", HOME), (world.other, "P-002", HOME)}

    for path in ("/api/incidents/export", "/api/incidents/export.csv"):
        r = c.get(path, headers=auth(PHYS))
        assert r.status_code == 200 and "tattoo" in r.text
        e = world.last()
        assert (e["user"], e["action"], e["path"]) == (PHYS, "incidents.export", f"GET {path}")
        assert shown(e) == [(world.course, "P-001", HOME)]


def test_a_list_records_each_course_it_showed_and_only_those(world):
    r = world.client.get("/api/courses", headers=auth(RTT))
    assert {row["id"] for row in r.json()} == {world.course, world.other}
    e = world.last()
    assert e["action"] == "courses.list"
    assert sorted(shown(e)) == sorted([(world.course, "P-001", HOME), (world.other, "P-002", HOME)])


def test_the_course_page_and_the_worklist_are_logged(world):
    c = world.client
    signed_in(c, RTT)
    page = c.get(f"/courses/{world.course}")
    assert page.status_code == 200 and "VANDENBROECK" in page.text
    e = world.last()
    assert (e["user"], e["channel"], e["action"], e["path"]) == (RTT, "http", "courses.read", f"GET /courses/{world.course}")
    assert shown(e) == [(world.course, "P-001", HOME)]
    assert c.get("/worklist").status_code == 200
    e = world.last()
    assert e["action"] == "courses.list" and {x[0] for x in shown(e)} == {world.course, world.other}


def test_every_authenticated_get_route_leaves_an_entry(world):
    """The class of defect: any GET route (API or page, today's or tomorrow's) that serves an
    answer leaves an entry, unless it shows no patient at all (who am I, the accounts)."""
    app = world.client.app
    ledger_app = world.ledger.app
    queries = {"/api/billing/statement": "?from=2026-01-01&to=2027-12-31",
               "/api/billing/statement.csv": "?from=2026-01-01&to=2027-12-31"}
    walked = 0
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            action = handler.opt.get("action")
            if "GET" not in (handler.http_methods or ()) or action in (PUBLIC, None) or action in UNLOGGED:
                continue
            role = next(iter(RULES[action]))
            name = account_name(role, HOME)
            path = re.sub(r"\{course_id(:str)?\}", world.course, route.path)
            path = re.sub(r"\{incident_id(:str)?\}", world.incident, path)
            client = TestClient(app)
            with client:
                headers = auth(name)
                if not path.startswith("/api"):
                    signed_in(client, name)
                    headers = {}
                before = ledger_app.recorder.max_notification_id()
                r = client.get(path + queries.get(path, ""), headers=headers)
                assert r.status_code < 400, (path, name, r.status_code, r.text[:300])
                e = world.last()
                assert e["id"] > before and e["user"] == name and e["action"] == action, (path, e)
                assert e["path"].split("?")[0] == f"GET {path}", (path, e)
                walked += 1
    assert walked >= 20


def test_cli_show_list_and_exports_are_logged_with_the_os_user(world, tmp_path):
    env = {"FRACTION_LEDGER_READ_DB": world.read_db}
    shown_course = cli("--user", "jo.physicist", "--centre", HOME, "course", "show", world.course, db=world.db, env=env,
                       check=True)
    assert "VANDENBROECK" in shown_course.stdout
    e = world.last()
    assert (e["user"], e["role"], e["centre"], e["channel"]) == ("jo.physicist", "-", HOME, "cli")
    assert re.fullmatch(r"[^@]+@.+", e["client"])  # OS user @ host
    assert e["action"] == "courses.read" and e["path"] == f"fraction-ledger course show {world.course}"
    assert shown(e) == [(world.course, "P-001", HOME)]

    out = tmp_path / "export"
    cli("--user", "jo.physicist", "export", "dicom", "--out", str(out), "--course", world.course, db=world.db, env=env,
        check=True)
    e = world.last()
    assert (e["user"], e["action"], shown(e)) == ("jo.physicist", "exports", [(world.course, "P-001", HOME)])
    assert e["path"] == f"fraction-ledger export dicom --out {out} --course {world.course}"

    cli("--user", "jo.physicist", "--db", world.db, "incident", "export", "--centre", HOME, "--csv", env=env,
        check=True)
    e = world.last()
    assert (e["action"], shown(e)) == ("incidents.export", [(world.course, "P-001", HOME)])
    assert "postgresql" not in e["path"] and world.db not in e["path"]  # the group's --db is never recorded


# ---- listing: per patient, per user, per course; CLI, API, page -----------------------------------


def read_some(world) -> None:
    c = world.client
    c.get(f"/api/courses/{world.course}", headers=auth(RTT))
    c.get(f"/api/courses/{world.other}", headers=auth(RTT))
    c.get(f"/api/courses/{world.course}", headers=auth(PHYS))


def test_admin_and_privacy_officer_list_the_log_per_patient_and_per_user_on_the_api(world):
    read_some(world)
    for name in (ADMIN, PRIVACY):
        r = world.client.get("/api/access-log?patient=P-001", headers=auth(name))
        assert r.status_code == 200
        rows = r.json()
        reads = {(x["user"], x["patient_id"]) for x in rows if x["action"] == "courses.read"}
        assert reads == {(RTT, "P-001"), (PHYS, "P-001")}
        assert {x["patient_id"] for x in rows} == {"P-001"}
        assert rows == sorted(rows, key=lambda x: -x["position"])  # newest first
        assert all(x["at"].endswith("+00:00") and x["client"] == "testclient" for x in rows)
    # the administrator's reading of the log is in it too
    assert [(x["user"], x["action"]) for x in rows][0] == (ADMIN, "access_log.read")
    rows = world.client.get(f"/api/access-log?user={RTT}", headers=auth(PRIVACY)).json()
    assert {x["patient_id"] for x in rows} == {"P-001", "P-002"} and {x["user"] for x in rows} == {RTT}
    rows = world.client.get(f"/api/access-log?course={world.other}", headers=auth(PRIVACY)).json()
    assert {(x["user"], x["action"], x["course_id"]) for x in rows} == {
        (RTT, "courses.read", world.other), (PRIVACY, "access_log.read", world.other)}  # its own listing by user
    # reading the log is logged, with the patients it named
    e = world.last()
    assert (e["user"], e["role"], e["action"]) == (PRIVACY, "privacy", "access_log.read")
    assert e["path"] == f"GET /api/access-log?course={world.other}" and shown(e) == [(world.other, "P-002", HOME)]
    bad = world.client.get("/api/access-log?patient=" + "x" * 65, headers=auth(PRIVACY))
    assert bad.status_code == 400 and "patient" in bad.text


def test_each_centre_sees_what_concerns_it_only(world):
    read_some(world)
    world.client.get(f"/api/courses/{world.elsewhere}", headers=auth(account_name("physicist", OTHER)))
    home = world.client.get("/api/access-log?limit=5000", headers=auth(PRIVACY)).json()
    assert "P-OTHER" not in {x["patient_id"] for x in home}  # another centre's patient, read by another centre
    other = world.client.get("/api/access-log?limit=5000", headers=auth(account_name("privacy", OTHER))).json()
    assert {x["patient_id"] for x in other if x["patient_id"]} == {"P-OTHER"}


def test_the_access_log_page_in_three_languages(world):
    read_some(world)
    c = world.client
    signed_in(c, PRIVACY)
    for lang, word in (("en", "Access log"), ("nl", "Toegangslog"), ("fr", "Journal des accès")):
        c.cookies.set("lang", lang)
        page = c.get(f"/access-log?patient=P-001&user=&course=")
        assert page.status_code == 200 and word in page.text
        assert RTT in page.text and PHYS in page.text and "P-002" not in page.text.split("<table")[1]
    page = c.get(f"/access-log?user={RTT}")
    assert "P-002" in page.text and PHYS not in page.text.split("<table")[1]
    e = world.last()
    assert (e["user"], e["action"], e["path"]) == (PRIVACY, "access_log.read", f"GET /access-log?user={RTT}")


def test_the_cli_lists_per_patient_user_and_course(world):
    read_some(world)
    env = {"FRACTION_LEDGER_READ_DB": world.read_db}
    rows = json.loads(cli("access-log", "--patient", "P-001", "--json", db=world.db, env=env, check=True).stdout)
    assert {(x["user"], x["patient_id"], x["channel"]) for x in rows} == {(RTT, "P-001", "http"), (PHYS, "P-001", "http")}
    rows = json.loads(cli("access-log", "--user", RTT, "--json", db=world.db, env=env, check=True).stdout)
    assert {x["patient_id"] for x in rows} == {"P-001", "P-002"}
    text = cli("--user", "dpo", "access-log", "--course", world.other, db=world.db, env=env, check=True).stdout
    assert RTT in text and "P-002" in text and PHYS not in text
    e = world.last()
    assert (e["user"], e["channel"], e["action"]) == ("dpo", "cli", "access_log.read")
    assert shown(e) == [(world.other, "P-002", HOME)]


# ---- nobody else reads it; nobody changes it --------------------------------------------------


def test_other_roles_may_not_read_the_log(world):
    read_some(world)
    for role in ("rtt", "physicist", "finance"):
        for centre in (HOME, PARTNER):
            name = account_name(role, centre)
            before = world.ledger.app.recorder.max_notification_id()
            r = world.client.get("/api/access-log", headers=auth(name))
            assert r.status_code == 403 and r.json()["error"] == "forbidden"
            assert world.ledger.app.recorder.max_notification_id() == before  # a refusal shows nothing
    c = TestClient(world.client.app)
    with c:
        signed_in(c, PHYS)
        assert c.get("/access-log").status_code == 403


def test_entries_cannot_be_changed_through_any_interface(world):
    read_some(world)
    c = world.client
    doc = c.get("/schema/openapi.json").json()
    assert set(doc["paths"]["/api/access-log"]) == {"get"}
    assert not [p for p in doc["paths"] if p.startswith("/api/access-log/")]
    entry = world.last()
    before = world.entries()
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/api/access-log", f"/api/access-log/{entry['id']}"):
            assert c.request(method, path, headers=auth(ADMIN), json={}).status_code in (404, 405), (method, path)
    # the command line only lists (no subcommand, no option that writes)
    assert cli("access-log", "delete", db=world.db, env={"FRACTION_LEDGER_READ_DB": world.read_db}).returncode == 2
    assert world.entries() == before
    # the aggregate has no command after its creation: its only event is the one that creates it
    commands = [k for k, v in vars(AccessLogEntry).items() if not k.startswith("_") and not isinstance(v, type)]
    assert commands == []
    # and an edit in the database itself is named by the hash chain
    world.ledger.close()
    with sqlite3.connect(world.db) as con:
        state = con.execute("SELECT state FROM stored_events WHERE rowid=?", [entry["id"]]).fetchone()[0]
        con.execute("UPDATE stored_events SET state=? WHERE rowid=?",
                    [state.replace(entry["user"].encode(), b"someone.else"), entry["id"]])
    with Ledger(world.db, clock=world.clock) as reopened:
        verdict = verify(reopened.app)
        assert not verdict.ok and verdict.problem["event"] == entry["id"] and verdict.problem["kind"] == "altered"


# ---- a read whose entry cannot be written is not served --------------------------------------------


@pytest.fixture
def failing_store(world, monkeypatch):
    """The event store refuses the access-log entries (a full disk, a lost connection)."""
    from eventsourcing.persistence import OperationalError

    recorder = world.ledger.app.recorder
    insert = recorder.insert_events

    def refusing(stored_events, **kw):
        if any(e.topic == TOPIC for e in stored_events):
            raise OperationalError("database or disk is full")
        return insert(stored_events, **kw)

    monkeypatch.setattr(recorder, "insert_events", refusing)
    return world


def test_an_api_read_that_cannot_be_logged_is_refused_with_503(failing_store):
    w = failing_store
    before = len(w.entries())
    for path in (f"/api/courses/{w.course}", "/api/courses", "/api/incidents/export.csv"):
        r = w.client.get(path, headers=auth(PHYS))
        assert r.status_code == 503, path
        assert r.json()["error"] == "access_log_unavailable" and "access log" in r.json()["message"]
        assert "VANDENBROECK" not in r.text and "P-001" not in r.text and "tattoo" not in r.text
    assert len(w.entries()) == before
    # what shows no patient is still served; writes are not affected
    assert w.client.get("/api/me", headers=auth(PHYS)).status_code == 200
    assert w.client.post(f"/api/courses/{w.course}/triage", headers=auth(PHYS), json={"triage": 1}).status_code == 200


def test_a_page_that_cannot_be_logged_says_so_in_the_readers_language(failing_store):
    w = failing_store
    signed_in(w.client, RTT)
    w.client.cookies.set("lang", "nl")
    page = w.client.get(f"/courses/{w.course}")
    assert page.status_code == 503
    assert "Het toegangslog kon niet worden geschreven" in page.text and "VANDENBROECK" not in page.text


def test_a_cli_read_that_cannot_be_logged_shows_nothing(failing_store):
    from tools.cli import main

    w = failing_store
    w.ledger.fresh()
    runner = CliRunner()
    from tools import cli_common

    class Opened(cli_common.Context):
        @property
        def ledger(self):
            return w.ledger

        def close(self):
            pass

    import tools.cli as cli_module
    original = cli_module.Context
    cli_module.Context = Opened
    try:
        result = runner.invoke(main, ["course", "show", w.course])
    finally:
        cli_module.Context = original
    assert result.exit_code == 1
    assert "access log could not be written" in result.output and "VANDENBROECK" not in result.output


# ---- the log on PostgreSQL too, and it is cheap ---------------------------------------------------


def test_a_read_costs_one_event_of_a_new_stream_on_each_backend(ledger):
    seed_accounts(ledger.app)
    cid = seed_course(ledger.app)
    with TestClient(create_app(ledger)) as client:
        before = ledger.app.recorder.max_notification_id()
        assert client.get(f"/api/courses/{cid}", headers=auth(RTT)).status_code == 200
        assert client.get(f"/api/courses/{cid}", headers=auth(RTT)).status_code == 200
        new = ledger.app.recorder.select_notifications(before, 10, inclusive_of_start=False)
        assert [n.topic for n in new] == [TOPIC, TOPIC]
        assert len({n.originator_id for n in new}) == 2 and {n.originator_version for n in new} == {1}
        assert verify(ledger.app).ok
        rows = client.get("/api/access-log?patient=P-001", headers=auth(ADMIN)).json()
        assert [x["position"] for x in rows] == [new[1].id, new[0].id]
        # the projection is disposable: a rebuild gives the same rows
        kept = ledger.fresh().dump()["access_log"]
        assert len(kept) == 3
        ledger.read.rebuild(ledger.app)
        assert ledger.read.dump()["access_log"] == kept
