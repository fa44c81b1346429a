"""Sending over MLLP to an independent receiver (python-hl7's asyncio server) on loopback:
ACKs recorded in the log, refusals kept with the receiver's text, reconnect and retry,
and a second send that sends only what was not accepted. Every wait is bounded."""

from __future__ import annotations

import json
import time

import pytest

from adapters.hl7.messages import MessageBuilder
from adapters.hl7.mllp import MllpSender, SendFailed
from adapters.hl7.replay import send_pending
from adapters.runtime import Ledger
from tests.conftest import Clock, cli
from tools.hl7_receiver import Receiver
from tests.hl7_scenario import HOME, PARTNER, PHYSICIST, check_everywhere, deliver, register



@pytest.fixture
def book(tmp_path, monkeypatch):
    monkeypatch.delenv("FRACTION_LEDGER_READ_DB", raising=False)
    with Ledger(str(tmp_path / "ledger.sqlite3"), clock=Clock()) as opened:
        app = opened.app
        done = register(app, "DONE-1", "MÜLLER-LEFÈVRE^ZOË", fractions=2)
        deliver(app, done, 1)
        deliver(app, done, 2, PARTNER)
        app.complete_course(done, "all given", PHYSICIST)
        busy = register(app, "BUSY-2", "D'HONDT^JAN")
        deliver(app, busy, 1)
        deliver(app, busy, 2, PARTNER)
        yield opened


def sender(port: int, **kw) -> MllpSender:
    return MllpSender("127.0.0.1", port, **({"timeout": 2.0, "attempts": 3, "backoff": 0.05} | kw))


def send(book, port: int, **kw) -> dict:
    return send_pending(book, MessageBuilder(), sender(port), PHYSICIST, **kw)


def test_every_message_accepted_on_one_connection_and_never_sent_twice(book):
    with Receiver() as receiver:
        s = sender(receiver.port)
        report = send_pending(book, MessageBuilder(), s, PHYSICIST)
        assert report["sent"] == 6 and report["accepted"] == 6 and report["refused"] == []  # 4 charges, MDM, ADT
        assert s.connections == 1 and receiver.connections == 1
        assert sorted(receiver.received) == sorted(set(receiver.received))
        kinds = sorted(str(m.segment("MSH")[9]) for m in receiver.messages.values())
        assert kinds == ["ADT^A23^ADT_A21", "DFT^P03^DFT_P03", "DFT^P03^DFT_P03", "DFT^P03^DFT_P03",
                         "DFT^P03^DFT_P03", "MDM^T02^MDM_T02"]
        for m in receiver.messages.values():  # what arrived is what hl7apy validates
            check_everywhere(str(m) + "\r")
        again = send(book, receiver.port)
        assert again["sent"] == 0 and again["skipped"] == 6 and len(receiver.received) == 6
    assert len(book.app.destinations.destination("billing").accepted) == 4
    assert len(book.app.destinations.destination("pacs").accepted) == 1


def test_refusals_keep_the_receivers_text_and_are_sent_again_next_time(book):
    def policy(message, seen):
        if "BUSY-2" in str(message.segment("PID")[3]):
            return ("AE", "Unknown patient BUSY-2 | not admitted") if seen == 0 else ("AA", "")
        if str(message.segment("MSH")[9]).startswith("ADT"):
            return ("AR", "Purge refused: study locked") if seen == 0 else ("AA", "")
        return ("AA", "")

    with Receiver(policy) as receiver:
        report = send(book, receiver.port)
        refused = {r["control_id"]: r for r in report["refused"]}
        assert report["sent"] == 6 and report["accepted"] == 3 and len(refused) == 3
        texts = sorted((r["code"], r["text"]) for r in refused.values())
        assert texts == [("AE", "Unknown patient BUSY-2 | not admitted")] * 2 + [("AR", "Purge refused: study locked")]
        billing = book.app.destinations.destination("billing")
        assert {k: v["text"] for k, v in billing.refused.items()} == {
            k: r["text"] for k, r in refused.items() if r["kind"].startswith("DFT")}
        first = len(receiver.received)
        second = send(book, receiver.port)  # only what was not accepted
        assert second["sent"] == 3 and second["accepted"] == 3 and second["skipped"] == 3
        assert sorted(receiver.received[first:]) == sorted(refused)
        assert send(book, receiver.port)["sent"] == 0
    assert book.app.destinations.destination("billing").refused == {}


def test_a_dropped_connection_is_reopened_and_the_message_sent_again(book):
    victim: list[str] = []

    def policy(message, seen):
        control_id = str(message.segment("MSH")[10])
        if not victim:
            victim.append(control_id) if len(receiver.received) == 2 else None
        return "drop" if victim and control_id == victim[0] and seen == 0 else ("AA", "")

    with Receiver(policy) as receiver:
        s = sender(receiver.port)
        report = send_pending(book, MessageBuilder(), s, PHYSICIST)
        assert report["accepted"] == 6 and report["refused"] == []
        assert receiver.received.count(victim[0]) == 2
        assert s.connections == 2 and receiver.connections == 2


def test_no_ack_in_time_gives_up_after_bounded_retries_and_resumes_later(book):
    silent_on: list[str] = []

    def silent(message, seen):
        if len(receiver.received) == 3 or (silent_on and str(message.segment("MSH")[10]) == silent_on[0]):
            silent_on[:] = silent_on or [str(message.segment("MSH")[10])]
            return "silent"
        return ("AA", "")

    with Receiver(silent) as receiver:
        started = time.monotonic()
        with pytest.raises(SendFailed, match="no answer in time"):
            send_pending(book, MessageBuilder(), sender(receiver.port, timeout=0.3, attempts=3), PHYSICIST)
        assert time.monotonic() - started < 10
        assert receiver.received.count(silent_on[0]) == 3
    accepted = sum(len(book.app.destinations.destination(d).accepted) for d in ("billing", "his", "pacs")
                   if book.app.destinations.destination(d))
    assert accepted == 2  # the answers before the silence are in the log
    with Receiver() as good:
        report = send(book, good.port)
        assert report["sent"] == 4 and report["skipped"] == 2
        assert silent_on[0] in good.received


def test_cli_send_reports_refusals_and_the_log_shows_them(tmp_path):
    db = tmp_path / "cli.sqlite3"
    with Ledger(str(db)) as opened:
        course = register(opened.app, "CLI-1", "ZOË^ANNA")
        deliver(opened.app, course, 1, HOME)
        deliver(opened.app, course, 2, PARTNER)

    def policy(message, seen):
        at_partner = PARTNER in str(message.segment("FT1")[16])
        return ("AE", "No contract with PARTNER-RT") if at_partner else ("AA", "")

    with Receiver(policy) as receiver:
        proc = cli("send", "hl7", "--host", "127.0.0.1", "--port", str(receiver.port), "--destination", "billing",
                   "--timeout", "5", db=db, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "sent 2 messages" in proc.stdout and "1 accepted, 1 refused" in proc.stdout
        assert "refused AE: DFT-CG" in proc.stdout and "No contract with PARTNER-RT" in proc.stdout
        again = cli("send", "hl7", "--host", "127.0.0.1", "--port", str(receiver.port), "--json", db=db, timeout=60)
        assert json.loads(again.stdout)["sent"] == 1 and json.loads(again.stdout)["skipped"] == 1
    shown = cli("deliveries", db=db, check=True).stdout
    assert "billing: 1 accepted, 1 refused" in shown and "No contract with PARTNER-RT" in shown
    events = cli("events", db=db, check=True).stdout
    assert "Destination.MessagesAcknowledged" in events


def test_nobody_listening_fails_clearly_and_quickly(book):
    from tests.conftest import free_port

    port = free_port()
    started = time.monotonic()
    with pytest.raises(SendFailed, match="ConnectionRefused|Connect"):
        send_pending(book, MessageBuilder(), sender(port, attempts=2, timeout=1), PHYSICIST)
    assert time.monotonic() - started < 10
