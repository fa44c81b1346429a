"""The hash chain: someone with file access edits, deletes, reorders or inserts rows of the
event log directly in SQLite or PostgreSQL; `verify` names the first event that does not match.

Each test runs on SQLite (the sqlite3 module on the file) and on a real PostgreSQL (psycopg).
"""

from __future__ import annotations

import json
import sqlite3
import uuid

import psycopg
import pytest

from adapters import chain
from tests.conftest import EACH_BACKEND, cli
from tests.test_core_rules import PARTNER, log, register


class RawLog:
    """The event and chain tables, edited as an intruder would: no ledger code involved."""

    def __init__(self, db_url: str):
        self.pg = db_url.startswith("postgresql://")
        if self.pg:
            self.conn = psycopg.connect(db_url, autocommit=True)
            self.events, self.chain, self.id = "fractionledger_events", "fractionledger_events_chain", "notification_id"
        else:
            self.conn = sqlite3.connect(db_url, isolation_level=None)
            self.events, self.chain, self.id = "stored_events", "stored_events_chain", "rowid"
        self.p = "%s" if self.pg else "?"

    def run(self, sql: str, *params):
        return self.conn.execute(sql.replace("?", self.p), params)

    def row(self, nid: int) -> tuple:
        return self.run(f"SELECT originator_id, originator_version, topic, state FROM {self.events} WHERE {self.id}=?", nid).fetchone()

    def ids(self) -> list[int]:
        return [r[0] for r in self.run(f"SELECT {self.id} FROM {self.events} ORDER BY {self.id}").fetchall()]

    def set_state(self, nid: int, state: bytes) -> None:
        self.run(f"UPDATE {self.events} SET state=? WHERE {self.id}=?", state, nid)

    def delete_event(self, nid: int) -> None:
        self.run(f"DELETE FROM {self.events} WHERE {self.id}=?", nid)

    def delete_chain(self, nid: int) -> None:
        self.run(f"DELETE FROM {self.chain} WHERE notification_id=?", nid)

    def swap(self, a: int, b: int) -> None:
        self.run(f"UPDATE {self.events} SET {self.id}=? WHERE {self.id}=?", -1, a)
        self.run(f"UPDATE {self.events} SET {self.id}=? WHERE {self.id}=?", a, b)
        self.run(f"UPDATE {self.events} SET {self.id}=? WHERE {self.id}=?", b, -1)

    def insert_event(self, nid: int, originator_id, version: int, topic: str, state: bytes) -> None:
        oid = originator_id if self.pg else uuid.UUID(str(originator_id)).hex
        self.run(f"INSERT INTO {self.events} (originator_id, originator_version, topic, state, {self.id}) VALUES (?,?,?,?,?)",
                 oid, version, topic, state, nid)

    def entry(self, nid: int) -> tuple:
        return self.run(f"SELECT prev, hash FROM {self.chain} WHERE notification_id=?", nid).fetchone()

    def insert_chain(self, nid: int, prev: str, h: str) -> None:
        self.run(f"INSERT INTO {self.chain} (notification_id, prev, hash) VALUES (?,?,?)", nid, prev, h)

    def close(self) -> None:
        self.conn.close()


pytestmark = EACH_BACKEND


@pytest.fixture
def treated(ledger, db_url):
    """A course with six fractions at home and at a partner; the raw tables of its log."""
    course = register(ledger)
    for n in range(1, 7):
        log(ledger, course, n, PARTNER if n > 3 else "HOME")
    raw = RawLog(db_url)
    yield ledger, raw
    raw.close()


def delivered_ids(raw: RawLog) -> list[int]:
    return [nid for nid in raw.ids() if raw.row(nid)[2].endswith("FractionDelivered")]


def test_an_untouched_log_verifies_and_its_head_is_the_newest_entry(treated):
    ledger, raw = treated
    verdict = chain.verify(ledger.app, batch=3)  # several batches: the merge of log and chain is streamed
    assert verdict.ok and verdict.problem is None
    assert verdict.events == len(raw.ids()) == 8  # the course and its plan's claim, six fractions
    assert verdict.head == chain.head_hash(ledger.app) == raw.entry(raw.ids()[-1])[1]
    assert chain.describe_head(ledger.app) == f"log head {verdict.head} (event {raw.ids()[-1]})"


def test_an_edited_event_is_named(treated):
    """The operator of fraction 2 is rewritten in place."""
    ledger, raw = treated
    target = delivered_ids(raw)[1]
    state = raw.row(target)[3]
    assert b"rtt.home" in bytes(state)
    raw.set_state(target, bytes(state).replace(b"rtt.home", b"rtt.evil"))
    verdict = chain.verify(ledger.app)
    assert not verdict.ok
    assert verdict.problem["kind"] == "altered" and verdict.problem["event"] == target
    assert f"event {target} (Course.FractionDelivered" in verdict.problem["message"]
    assert verdict.head_event == target - 1  # the chain holds up to the event before


def test_an_event_edited_with_sql_in_the_database_console_is_named(treated):
    """The intruder uses SQL, not a program: SQLite's replace() even turns the BLOB into TEXT."""
    ledger, raw = treated
    target = delivered_ids(raw)[0]
    if raw.pg:
        raw.run(f"UPDATE {raw.events} SET state = convert_to(replace(convert_from(state, 'UTF8'), 'HOME-L1', 'HOME-L9'), "
                "'UTF8') WHERE notification_id=?", target)
    else:
        raw.run(f"UPDATE {raw.events} SET state = replace(state, 'HOME-L1', 'HOME-L9') WHERE rowid=?", target)
    verdict = chain.verify(ledger.app)
    assert (verdict.problem["kind"], verdict.problem["event"]) == ("altered", target)


def test_a_deleted_event_is_named_whether_or_not_its_chain_entry_was_deleted_too(treated):
    ledger, raw = treated
    first, second = delivered_ids(raw)[1:3]
    raw.delete_event(first)
    verdict = chain.verify(ledger.app)
    assert (verdict.problem["kind"], verdict.problem["event"]) == ("missing", first)
    # A tidier intruder removes the chain entry as well: the next event no longer follows.
    raw.delete_chain(first)
    verdict = chain.verify(ledger.app)
    assert (verdict.problem["kind"], verdict.problem["event"]) == ("broken", first + 1)
    assert "deleted, inserted or rewritten" in verdict.problem["message"]
    assert second > first


def test_reordered_events_are_named(treated):
    """Fractions 2 and 4 swap places in the log (their positions are exchanged)."""
    ledger, raw = treated
    a, _, b = delivered_ids(raw)[1:4]
    raw.swap(a, b)
    verdict = chain.verify(ledger.app)
    assert (verdict.problem["kind"], verdict.problem["event"]) == ("altered", a)
    assert "edited or moved" in verdict.problem["message"]


def test_an_inserted_event_is_named_with_or_without_a_forged_chain_entry(treated):
    ledger, raw = treated
    ids = raw.ids()
    oid, version, topic, state = raw.row(delivered_ids(raw)[-1])
    # Appended without a chain entry: written outside the ledger.
    raw.insert_event(ids[-1] + 1, oid, version + 1, topic, bytes(state).replace(b'"number":6', b'"number":7'))
    verdict = chain.verify(ledger.app)
    assert (verdict.problem["kind"], verdict.problem["event"]) == ("unchained", ids[-1] + 1)
    raw.delete_event(ids[-1] + 1)
    assert chain.verify(ledger.app).ok

    # Put in the middle, in place of fraction 3, with a chain entry forged from the one before:
    # the event after it no longer follows.
    middle = delivered_ids(raw)[2]
    m_oid, m_version, m_topic, m_state = raw.row(middle)
    raw.delete_event(middle)
    raw.delete_chain(middle)
    forged_state = bytes(m_state).replace(b"HOME-L1", b"ELSEWHERE")
    prev = raw.entry(middle - 1)[1]
    raw.insert_event(middle, m_oid, m_version, m_topic, forged_state)
    raw.insert_chain(middle, prev, chain.link_hash(prev, middle, uuid.UUID(str(m_oid)), m_version, m_topic, forged_state))
    verdict = chain.verify(ledger.app)
    assert (verdict.problem["kind"], verdict.problem["event"]) == ("broken", middle + 1)


def test_a_printed_head_detects_a_cut_tail_and_a_rewritten_chain(treated):
    """Cutting the last events with their chain entries leaves a consistent shorter chain:
    the head printed on an earlier report is what finds it."""
    ledger, raw = treated
    printed = chain.head_hash(ledger.app)
    older = raw.entry(raw.ids()[2])[1]
    assert chain.verify(ledger.app, anchor=printed).anchor == {"hash": printed, "event": raw.ids()[-1], "on_chain": True}
    assert chain.verify(ledger.app, anchor=older).ok

    last = raw.ids()[-1]
    raw.delete_event(last)
    raw.delete_chain(last)
    assert chain.verify(ledger.app).ok  # without the anchor nothing looks wrong
    verdict = chain.verify(ledger.app, anchor=printed)
    assert not verdict.ok and verdict.anchor["on_chain"] is False
    assert "not on the verified chain" in verdict.anchor["message"]
    assert chain.verify(ledger.app, anchor=older).ok


def test_new_events_keep_chaining_after_a_verified_head(treated):
    ledger, raw = treated
    first = chain.head_hash(ledger.app)
    course = ledger.app.get_course(raw.row(raw.ids()[0])[0])
    log(ledger, str(course.id), 7, PARTNER)
    verdict = chain.verify(ledger.app, anchor=first)
    assert verdict.ok and verdict.events == 9 and verdict.head != first


def test_verify_from_the_command_line_names_the_event_and_exits_1(treated, db_url, tmp_path):
    ledger, raw = treated
    env = {"FRACTION_LEDGER_READ_DB": str(tmp_path / "cli-read.sqlite3")}
    ok = cli("verify", db=db_url, env=env)
    assert ok.returncode == 0, ok.stderr
    head = chain.head_hash(ledger.app)
    assert ok.stdout.splitlines() == ["ok: 8 events, chain intact", f"log head {head} (event {raw.ids()[-1]})"]
    anchored = cli("verify", "--head", head, db=db_url, env=env)
    assert anchored.returncode == 0 and f"is on the chain at event {raw.ids()[-1]}" in anchored.stdout

    target = delivered_ids(raw)[0]
    raw.set_state(target, bytes(raw.row(target)[3]).replace(b"HOME-L1", b"HOME-L2"))
    bad = cli("verify", "--json", db=db_url, env=env)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False and report["problem"]["event"] == target and report["problem"]["kind"] == "altered"
    text = cli("verify", "--head", head, db=db_url, env=env)
    assert text.returncode == 1 and text.stdout.startswith(f"TAMPERED: event {target} ")
    french = cli("verify", "--head", head, db=db_url, env={**env, "FRACTION_LEDGER_LANG": "fr"})
    assert french.returncode == 1 and french.stdout.startswith(f"FALSIFIÉ : l'événement {target} ")
    assert "ne correspond pas à son hachage" in french.stdout and "n'a pas été atteinte" in french.stdout, \
        "a French physicist reads what is wrong with the log in French"
    assert cli("verify", "--head", "xyz", db=db_url, env=env).returncode == 2
