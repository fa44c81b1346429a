"""Issue 15, point 4: the server defends its log.

An intruder with file access edits, deletes, reorders or unchains rows of the event log in the
database itself. Before: the server started, said ready, served the edited value and accepted
new fractions; with an event deleted a fraction silently disappeared and writes answered 500.
Now the hash chain is verified when the ledger opens (from the head verified last time) and
over every batch a catch-up projects or an append builds on: a bad event refuses every write
(503, CLI exit 1) naming it, `/ready` answers 503, every page shows the alarm, reads go on.
"""

from __future__ import annotations

import re
import sqlite3

import pytest
from litestar.testing import TestClient

from adapters.http import create_app
from adapters.runtime import Ledger
from tests.conftest import cli
from tests.http_support import account_name, auth, fraction_body, seed_accounts, token_of
from tests.test_core_rules import PARTNER, log, register
from tests.test_trust_chain import RawLog

RTT = account_name("rtt", PARTNER)
ACCESS_LOG = "ledger.access_log:AccessLogEntry.Recorded"  # who read what: still written under the alarm
TARGET = 100  # the event the intruder goes for


def build_log(db_url: str, read_db) -> list[str]:
    """Accounts, then courses with fractions at the partner, until the log has passed event 110."""
    with Ledger(db_url, read_db=str(read_db)) as ledger:
        seed_accounts(ledger.app)
        courses: list[str] = []
        while (ledger.app.recorder.max_notification_id() or 0) < TARGET + 10:
            course = register(ledger, patient_id=f"P-{len(courses):03d}", uid=f"1.2.826.0.1.3680043.10.{len(courses)}")
            courses.append(course)
            for n in range(1, 16):
                log(ledger, course, n, PARTNER)
        ledger.fresh()
    return courses


@pytest.fixture
def built(db_url, tmp_path, monkeypatch):
    """A log of ~130 events whose read model verified and projected all of it; its raw tables."""
    read_db = tmp_path / "read.sqlite3"
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(read_db))
    courses = build_log(db_url, read_db)
    raw = RawLog(db_url)
    assert raw.row(TARGET)[2].endswith("FractionDelivered")
    yield db_url, read_db, courses, raw
    raw.close()


def ledger_ids(raw: RawLog) -> list[int]:
    """The log's events other than access-log entries (reads are still logged while writes are refused)."""
    return [nid for nid in raw.ids() if raw.row(nid)[2] != ACCESS_LOG]


def course_of_event(raw: RawLog, nid: int) -> str:
    import uuid

    return str(uuid.UUID(str(raw.row(nid)[0])))


def fresh_read_model(tmp_path, monkeypatch, name: str = "server-read.sqlite3") -> None:
    """The server's read model on a machine that never verified this log (a new or rebuilt one)."""
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / name))


def assert_refuses_writes(client: TestClient, raw: RawLog, course_id: str, event: int, kind: str) -> None:
    before = ledger_ids(raw)
    r = client.post(f"/api/courses/{course_id}/fractions", headers=auth(RTT), json=fraction_body(20))
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"] == "log_compromised"
    assert (body["conflict"]["event"], body["conflict"]["kind"]) == (event, kind)
    assert f"event {event} " in body["message"] and "Nothing is written" in body["message"]
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "log_compromised" and f"event {event} " in ready.json()["detail"]
    assert ledger_ids(raw) == before  # nothing written


def assert_alarm_on_pages(client: TestClient, event: int) -> None:
    expected = {"en": f"Event {event} ", "nl": f"Gebeurtenis {event} ", "fr": f"L'événement {event} "}
    titles = {"en": "Alarm: the event log", "nl": "Alarm: het gebeurtenissenlogboek", "fr": "Alarme : le journal"}
    for lang, text in expected.items():
        page = client.get("/", headers={"Accept-Language": lang})  # even the sign-in page
        assert page.status_code == 200
        alarm = re.search(r'<section class="alarm" role="alert" id="log-alarm">(.*?)</section>', page.text, re.S)
        assert alarm, lang
        assert titles[lang] in alarm.group(1) and text in alarm.group(1).replace("&#39;", "'"), (lang, alarm.group(1))


def test_an_untouched_log_starts_ready_and_verifies_only_the_new_events(built, tmp_path):
    db_url, read_db, courses, raw = built
    head = raw.ids()[-1]
    with Ledger(db_url) as ledger:
        assert ledger.guard.status()["started_from"] == head and ledger.guard.checked == 0
        for n in range(16, 21):  # five new fractions, appended without a catch-up
            log(ledger, courses[0], n, PARTNER)
    new_head = raw.ids()[-1]
    assert new_head == head + 5
    with Ledger(db_url) as ledger, TestClient(create_app(ledger)) as client:
        status = ledger.guard.status()
        assert (status["started_from"], status["verified_position"], status["checked"]) == (head, new_head, 5)
        assert client.get("/ready").status_code == 200
        assert "log-alarm" not in client.get("/").text
        r = client.post(f"/api/courses/{courses[0]}/fractions", headers=auth(RTT), json=fraction_body(21))
        assert r.status_code == 201, r.text
        assert client.get(f"/api/courses/{courses[0]}", headers=auth(RTT)).json()["fractions_delivered"] == 21
        assert ledger.read.verified_head() == (new_head + 1, raw.entry(new_head + 1)[1])


def test_a_missing_or_inconsistent_verified_head_means_verifying_from_the_first_event(built, tmp_path):
    db_url, read_db, courses, raw = built
    head = raw.ids()[-1]
    con = sqlite3.connect(read_db, isolation_level=None)
    con.execute("UPDATE position SET chain=? WHERE name='chain'", ("f" * 64,))  # not the chain's hash there
    con.close()
    with Ledger(db_url) as ledger:
        assert (ledger.guard.started_from, ledger.guard.checked, ledger.guard.problem) == (0, head, None)
    con = sqlite3.connect(read_db, isolation_level=None)
    con.execute("UPDATE position SET position=? WHERE name='chain'", (head + 50,))  # beyond the log
    con.close()
    with Ledger(db_url) as ledger:
        assert (ledger.guard.started_from, ledger.guard.checked) == (0, head)
    con = sqlite3.connect(read_db, isolation_level=None)
    con.execute("DELETE FROM position WHERE name='chain'")
    con.close()
    with Ledger(db_url) as ledger:
        assert (ledger.guard.started_from, ledger.guard.checked) == (0, head)
    with Ledger(db_url) as ledger:  # and the record is back
        assert (ledger.guard.started_from, ledger.guard.checked) == (head, 0)


def test_an_edited_event_refuses_writes_fails_ready_and_raises_the_alarm_while_reads_go_on(
        built, tmp_path, monkeypatch):
    db_url, _, courses, raw = built
    state = bytes(raw.row(TARGET)[3])
    assert b"PARTNER-L1" in state
    raw.set_state(TARGET, state.replace(b"PARTNER-L1", b"PARTNER-L9"))
    course = course_of_event(raw, TARGET)
    fresh_read_model(tmp_path, monkeypatch)
    with Ledger(db_url) as ledger, TestClient(create_app(ledger)) as client:
        problem = ledger.guard.problem
        assert (problem["kind"], problem["event"], problem["stream"]) == ("altered", TARGET, course)
        assert_refuses_writes(client, raw, course, TARGET, "altered")
        assert_alarm_on_pages(client, TARGET)
        # Reads answer from what held: the edited session is not shown, the ones before it are.
        seen = client.get(f"/api/courses/{course}", headers=auth(RTT))
        assert seen.status_code == 200
        machines = {f["machine"] for f in seen.json()["fractions"]}
        assert "PARTNER-L9" not in machines
        assert ledger.read.position() == TARGET - 1
    # The CLI's write commands refuse too, naming the event; nothing is written.
    before = ledger_ids(raw)
    proc = cli("fraction", "log", course, "--number", "20", "--centre", PARTNER, "--machine", "PARTNER-L1",
               "--operator", "rtt.partner", "--at", "2026-11-23T09:10+01:00", db=db_url)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"ALARM: The event log failed its integrity check: event {TARGET} ")
    assert f"refused: The event log failed its integrity check: event {TARGET} (Course.FractionDelivered" in proc.stderr
    assert ledger_ids(raw) == before
    listed = cli("course", "list", "--json", db=db_url)  # reads go on, with the alarm, and are logged
    assert listed.returncode == 0 and course in listed.stdout and listed.stderr.startswith("ALARM: ")
    assert ledger_ids(raw) == before and raw.row(raw.ids()[-1])[2] == ACCESS_LOG


def test_an_edit_before_the_verified_head_is_found_by_verifying_all(built):
    """An incremental start checks what is new; `serve --verify-all` (and `verify`) check everything."""
    db_url, _, courses, raw = built
    raw.set_state(TARGET, bytes(raw.row(TARGET)[3]).replace(b"PARTNER-L1", b"PARTNER-L9"))
    with Ledger(db_url, verify_all=True) as ledger:
        assert (ledger.guard.started_from, ledger.guard.problem["event"]) == (0, TARGET)
        with pytest.raises(Exception) as refused:
            log(ledger, courses[0], 16, PARTNER)
        assert type(refused.value).__name__ == "LogCompromised"


@pytest.mark.parametrize("how", ["event", "event and chain entry", "chain entry", "reorder"])
def test_a_deleted_moved_or_unchained_event_is_named_and_nothing_is_written(built, tmp_path, monkeypatch, how):
    db_url, _, courses, raw = built
    course = course_of_event(raw, TARGET)
    expected = {"event": ("missing", TARGET), "event and chain entry": ("broken", TARGET + 1),
                "chain entry": ("unchained", TARGET), "reorder": ("altered", TARGET)}[how]
    if how == "reorder":
        raw.swap(TARGET, TARGET + 1)
    if how.startswith("event"):
        raw.delete_event(TARGET)
    if how.endswith("chain entry"):
        raw.delete_chain(TARGET)
    fresh_read_model(tmp_path, monkeypatch)
    with Ledger(db_url) as ledger, TestClient(create_app(ledger)) as client:
        assert (ledger.guard.problem["kind"], ledger.guard.problem["event"]) == expected
        assert_refuses_writes(client, raw, course, *reversed(expected))
        assert_alarm_on_pages(client, expected[1])
        assert client.get(f"/api/courses/{course}", headers=auth(RTT)).status_code == 200


def test_an_edit_after_start_is_caught_at_the_next_catch_up(built, tmp_path, monkeypatch):
    """Another writer (a CLI, a second server on PostgreSQL) appends; an intruder edits one of those
    events before this server projected it: the catch-up stops before it and raises the alarm."""
    db_url, _, courses, raw = built
    with Ledger(db_url) as server, TestClient(create_app(server)) as client:
        assert client.get("/ready").status_code == 200
        projected = server.read.position()
        with Ledger(db_url, read_db=str(tmp_path / "other-writer.sqlite3")) as other:
            for n in range(16, 21):
                log(other, courses[0], n, PARTNER)
        edited = projected + 3
        raw.set_state(edited, bytes(raw.row(edited)[3]).replace(b"PARTNER-L1", b"PARTNER-L9"))
        assert client.get(f"/api/courses/{courses[0]}", headers=auth(RTT)).json()["fractions_delivered"] == 17
        assert server.read.position() == edited - 1  # the two events before the edit were projected
        assert (server.guard.problem["kind"], server.guard.problem["event"]) == ("altered", edited)
        assert_refuses_writes(client, raw, courses[0], edited, "altered")
        assert_alarm_on_pages(client, edited)


def test_a_write_does_not_build_on_an_event_nobody_verified(built, tmp_path):
    """The append path checks the events appended since the last catch-up before it writes."""
    db_url, _, courses, raw = built
    with Ledger(db_url) as server, TestClient(create_app(server)) as client:
        with Ledger(db_url, read_db=str(tmp_path / "other-writer.sqlite3")) as other:
            log(other, courses[1], 16, PARTNER)
        last = raw.ids()[-1]
        oid, version, topic, state = raw.row(last)
        raw.delete_event(last)
        raw.delete_chain(last)  # put back, changed, without its chain entry: written outside the ledger
        raw.insert_event(last, oid, version, topic, bytes(state).replace(b"PARTNER-L1", b"PARTNER-L9"))
        r = client.post(f"/api/courses/{courses[1]}/fractions", headers=auth(RTT), json=fraction_body(17))
        assert r.status_code == 503, r.text
        assert (r.json()["conflict"]["kind"], r.json()["conflict"]["event"]) == ("unchained", last)
        assert ledger_ids(raw)[-1] == last


def test_signed_in_pages_show_the_alarm_and_their_forms_refuse_with_503(built, tmp_path, monkeypatch):
    db_url, _, courses, raw = built
    raw.delete_event(TARGET)
    fresh_read_model(tmp_path, monkeypatch)
    with Ledger(db_url) as ledger, TestClient(create_app(ledger)) as client:
        csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
        assert client.post("/", data={"token": token_of(RTT), "_csrf_token": csrf}).status_code == 200
        worklist = client.get("/worklist")
        assert worklist.status_code == 200 and 'id="log-alarm"' in worklist.text
        refused = client.post(f"/courses/{courses[0]}/log", data={"number": "16", "machine": "PARTNER-L1",
                                                                  "delivered_at": "2026-11-23T09:10",
                                                                  "_csrf_token": csrf})
        assert refused.status_code == 503, refused.text
        assert 'id="log-alarm"' in refused.text and "failed its integrity check: event" in refused.text
        kept = ledger_ids(raw)
        assert TARGET not in kept and kept == [n for n in range(1, kept[-1] + 1) if n != TARGET]


@pytest.mark.slow
@pytest.mark.parametrize("verify_all", [False, True])
def test_the_server_process_starts_not_ready_on_an_edited_log(built, tmp_path, monkeypatch, verify_all):
    """`fraction-ledger serve` as deployed. Its read model verified the whole log before the edit,
    so only `--verify-all` sees an edit before that head; a new read model (a new machine, a
    rebuilt model) verifies from the first event anyway."""
    import httpx

    from tools.serverproc import free_port, running_server

    db_url, read_db, courses, raw = built
    raw.set_state(TARGET, bytes(raw.row(TARGET)[3]).replace(b"PARTNER-L1", b"PARTNER-L9"))
    if not verify_all:
        read_db = tmp_path / "new-machine.sqlite3"
    env = {"FRACTION_LEDGER_READ_DB": str(read_db)}
    extra = ("--verify-all",) if verify_all else ()
    with running_server(db_url, free_port(), env=env, log=tmp_path / "server.log", extra=extra) as base:
        ready = httpx.get(base + "/ready", timeout=30)
        assert ready.status_code == 503 and f"event {TARGET} " in ready.json()["detail"]
        r = httpx.post(f"{base}/api/courses/{course_of_event(raw, TARGET)}/fractions", headers=auth(RTT),
                       json=fraction_body(20), timeout=30)
        assert r.status_code == 503 and r.json()["conflict"]["event"] == TARGET
