"""The API for incidents, billing and HL7 (export, send, deliveries): what the CLI does,
through HTTP, with the role rules, and nothing written on a refusal."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from litestar.testing import TestClient

from adapters.http import create_app
from adapters.reports import INCIDENT_CSV, STATEMENT_CSV
from ledger.service import Actor
from tests.conftest import CLOCK_MONTH, cli, wait_for
from tools.hl7_receiver import Receiver
from tests.http_support import (
    HOME, OTHER, PARTNER, T0, account_name, auth, fraction_body, seed_accounts, seed_course,
)

RTT_P, RTT_O = account_name("rtt", PARTNER), account_name("rtt", OTHER)
PHYS_H, PHYS_P, PHYS_O = (account_name("physicist", c) for c in (HOME, PARTNER, OTHER))
FIN_H, FIN_O = account_name("finance", HOME), account_name("finance", OTHER)
NOVEMBER = "from={}&to={}".format(*CLOCK_MONTH)  # the month in which the tests' clock completes courses


def client_for(ledger, **kw) -> TestClient:
    return TestClient(create_app(ledger, **kw))


@pytest.fixture
def world(ledger):
    seed_accounts(ledger.app)
    ledger.course_id = seed_course(ledger.app)
    return ledger


def position(ledger) -> int:
    return ledger.app.recorder.max_notification_id() or 0


def deliver(ledger, course_id: str, centres: list[str]) -> None:
    for k, centre in enumerate(centres, start=1):
        ledger.app.log_fraction(course_id, {**fraction_body(k), "centre": centre, "operator": f"rtt.{centre}"},
                                Actor(f"rtt.{centre}", centre))


# ---- incidents ---------------------------------------------------------------------------------


def test_incident_register_follow_up_close_and_home_export(world, db_url):
    course = world.course_id
    with client_for(world) as api:
        r = api.post("/api/incidents", headers=auth(RTT_P), json={
            "category": "positioning", "severity": "medium", "description": "mask did not fit",
            "course_id": course, "fraction": 2, "occurred_at": T0.isoformat()})
        assert r.status_code == 201, r.text
        incident = r.json()["id"]
        # the centre and the person come from the account; a course of another centre is unknown to it
        before = position(world)
        r = api.post("/api/incidents", headers=auth(RTT_P), json={
            "category": "other", "severity": "low", "description": "x", "centre": HOME})
        assert r.status_code == 400 and r.json()["fields"][0]["field"] == "centre"
        r = api.post("/api/incidents", headers=auth(RTT_O), json={
            "category": "other", "severity": "low", "description": "x", "course_id": course})
        assert r.status_code == 404 and position(world) == before
        # an RTT sees its centre's incidents; OTHER's RTT sees none of them
        listed = api.get("/api/incidents", headers=auth(RTT_P)).json()
        assert [(i["id"], i["centre"], i["registered_by"], i["home_centre"]) for i in listed] == [
            (incident, PARTNER, RTT_P, HOME)]
        assert api.get("/api/incidents", headers=auth(RTT_O)).json() == []
        # follow-up where it happened; only the home centre's physicist closes it
        r = api.post(f"/api/incidents/{incident}/follow-up", headers=auth(RTT_P), json={"text": "new mask made"})
        assert r.status_code == 200 and r.json()["follow_ups"] == 1
        assert api.post(f"/api/incidents/{incident}/close", headers=auth(PHYS_P), json={}).status_code == 403
        r = api.post(f"/api/incidents/{incident}/close", headers=auth(PHYS_H), json={"resolution": "re-positioned"})
        assert r.status_code == 200 and r.json()["status"] == "closed"
        r = api.post(f"/api/incidents/{incident}/follow-up", headers=auth(RTT_P), json={"text": "late"})
        assert r.status_code == 409 and r.json()["error"] == "incident_closed"
        assert api.post("/api/incidents/00000000-0000-0000-0000-000000000000/close", headers=auth(PHYS_H),
                        json={}).status_code == 404
        # the export for the home centre: JSON, and CSV byte for byte as the CLI writes it
        exported = api.get("/api/incidents/export", headers=auth(PHYS_P), params={"centre": HOME}).json()
        assert [(i["id"], i["status"], i["resolution"]) for i in exported] == [(incident, "closed", "re-positioned")]
        r = api.get("/api/incidents/export.csv", headers=auth(PHYS_H))
        assert r.headers["content-type"].startswith("text/csv")
        assert 'filename="incidents-HOME.csv"' in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert list(rows[0]) == INCIDENT_CSV and rows[0]["follow_ups"].endswith(f"{RTT_P}: new mask made")
    world.close()  # the CLI opens the same store
    out = cli("incident", "export", "--centre", HOME, "--csv", db=db_url, check=True).stdout
    assert out == r.text


# ---- billing -----------------------------------------------------------------------------------


def test_an_unsettled_split_says_why_in_english_and_as_a_code(world):
    course = world.course_id
    deliver(world, course, [HOME] * 2 + [PARTNER])
    world.app.complete_course(course, "done", Actor("dr.home", HOME))
    with client_for(world) as api:
        [split] = api.get(f"/api/courses/{course}/splits", headers=auth(FIN_H)).json()
        st = api.get(f"/api/billing/statement?{NOVEMBER}", headers=auth(FIN_H)).json()
    assert split["status"] == "unsettled" and f"{HOME} has no agreement with {PARTNER}" in split["reason"]
    assert split["reason_said"]["code"] == "split.reasons", "one reason per centre that could bill it"
    [unsettled] = st["unsettled"]
    assert unsettled["reason"] == split["reason"] and unsettled["reason_said"] == split["reason_said"]


def test_finance_agrees_for_its_own_centre_and_downloads_the_statement(world):
    course = world.course_id
    with client_for(world) as api:
        body = {"billing_centre": HOME, "partner": PARTNER, "rule": "pro-rata", "course_amount": "3000.00",
                "valid_from": "2026-01-01"}
        before = position(world)
        assert api.post("/api/billing/agreements", headers=auth(FIN_O), json=body).status_code == 403
        r = api.post("/api/billing/agreements", headers=auth(FIN_H), json={**body, "course_amount": "12.345"})
        assert r.status_code == 400 and r.json()["fields"][0]["field"] == "course_amount"
        assert position(world) == before
        r = api.post("/api/billing/agreements", headers=auth(FIN_H), json=body)
        assert r.status_code == 201 and r.json()["terms"]["version"] == 1
        assert api.get("/api/billing/agreements", headers=auth(FIN_H)).json()[0]["course_amount"] == "3000.00"
        assert api.get("/api/billing/agreements", headers=auth(FIN_O)).json() == []  # not a party to it
        # 10 fractions, 3 at the partner; completed: the split follows
        deliver(world, course, [HOME] * 7 + [PARTNER] * 3)
        world.app.complete_course(course, "done", Actor("dr.home", HOME))
        assert api.get(f"/api/courses/{course}/splits", headers=auth(FIN_O)).status_code == 404  # need to know
        splits = api.get(f"/api/courses/{course}/splits", headers=auth(FIN_H)).json()
        assert splits[-1]["current"] and {s["centre"]: s["amount"] for s in splits[-1]["shares"]} == {
            HOME: "2100.00", PARTNER: "900.00"}
        st = api.get(f"/api/billing/statement?{NOVEMBER}&pair={HOME}:{PARTNER}", headers=auth(FIN_H)).json()
        assert st["balances"] == [{"debtor": HOME, "creditor": PARTNER, "amount": "900.00"}]
        assert st["totals"]["amount"] == "3000.00" and st["pair"] == [HOME, PARTNER]
        r = api.get(f"/api/billing/statement.csv?{NOVEMBER}", headers=auth(FIN_H))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert 'filename="statement-{}-{}.csv"'.format(*CLOCK_MONTH) in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert list(rows[0]) == STATEMENT_CSV
        assert [(x["record"], x["centre"] or x["debtor"], x["amount"]) for x in rows] == [
            ("line", HOME, "2100.00"), ("line", PARTNER, "900.00"), ("balance", HOME, "900.00"), ("total", "", "3000.00")]
        # bad periods and pairs name the parameter
        r = api.get("/api/billing/statement?from=2026-11-30&to=2026-11-01", headers=auth(FIN_H))
        assert r.status_code == 400 and r.json()["fields"][0]["field"] == "to"
        r = api.get(f"/api/billing/statement?{NOVEMBER}&pair={HOME}", headers=auth(FIN_H))
        assert r.status_code == 400 and r.json()["fields"][0]["field"] == "pair"
        assert api.get("/api/billing/statement?from=nope&to=2026-11-01", headers=auth(FIN_H)).status_code == 400
        # the category picks a tariff: the home physicist sets it, the split is recomputed
        r = api.post(f"/api/courses/{course}/category", headers=auth(PHYS_H), json={"category": "complex"})
        assert r.status_code == 200 and r.json()["changed"] is True
        r = api.post(f"/api/courses/{course}/settle", headers=auth(FIN_H))
        assert r.status_code == 200 and r.json()["changed"] is False


# ---- HL7: export, send, deliveries -------------------------------------------------------------


def hl7_config(tmp_path, port: int, timeout: float = 5, attempts: int = 2) -> str:
    path = tmp_path / "hl7.toml"
    path.write_text("".join(
        f'[destinations.{name}]\nmessages = ["{kind}"]\napplication = "{app}"\nhost = "127.0.0.1"\nport = {port}\n'
        f"timeout = {timeout}\nattempts = {attempts}\n"
        for name, kind, app in (("billing", "DFT", "BILLING"), ("his", "MDM", "HIS"), ("pacs", "ADT", "CLOUD-PACS"))))
    return str(path)


def test_physicist_downloads_hl7_zip_of_its_home_courses(world):
    course = world.course_id
    deliver(world, course, [HOME, PARTNER])
    with client_for(world) as api:
        r = api.get("/api/exports/hl7", headers=auth(PHYS_H))
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(r.content)).namelist()
        assert len(names) == 2 and all(n.startswith("billing/") and n.endswith(".hl7") for n in names)
        first = zipfile.ZipFile(io.BytesIO(r.content)).read(names[0]).decode()
        assert first.startswith("MSH|^~\\&|") and "DFT^P03" in first and "\r" in first
        assert api.get("/api/exports/hl7", headers=auth(PHYS_H)).content == r.content  # deterministic
        # the partner's physicist has no home course here: an empty zip; a HOME course by id is refused
        empty = api.get("/api/exports/hl7", headers=auth(PHYS_P))
        assert zipfile.ZipFile(io.BytesIO(empty.content)).namelist() == []
        assert api.get(f"/api/exports/hl7?course_id={course}", headers=auth(PHYS_P)).status_code == 403
        billing = next(d for d in api.get("/api/deliveries", headers=auth(FIN_H)).json() if d["destination"] == "billing")
        assert billing["exported"] == 2 and billing["accepted"] == 0
        # without configured addresses nothing is sent, and the answer says why
        r = api.post("/api/sends/hl7", headers=auth(PHYS_H), json={})
        assert r.status_code == 409 and "host and port" in r.json()["message"]


def test_send_hl7_reports_accepted_and_refused_per_destination_and_resumes(world, tmp_path):
    course = world.course_id
    deliver(world, course, [HOME, PARTNER, PARTNER])
    world.app.complete_course(course, "done", Actor("dr.home", HOME))
    refused_once: set[str] = set()

    def policy(message, seen):
        kind = str(message.segment("MSH")[9])
        if kind.startswith("MDM") and seen == 0:
            refused_once.add(str(message.segment("MSH")[10]))
            return ("AR", "Unknown patient in HIS")
        return ("AA", "")

    with Receiver(policy) as receiver, client_for(world, hl7_config=hl7_config(tmp_path, receiver.port)) as api:
        r = api.post("/api/sends/hl7", headers=auth(PHYS_H), json={})
        assert r.status_code == 200, r.text
        by = {row["destination"]: row for row in r.json()}
        assert (by["billing"]["sent"], by["billing"]["accepted"], by["billing"]["failure"]) == (3, 3, None)
        assert by["his"]["accepted"] == 0 and by["his"]["refused"][0]["text"] == "Unknown patient in HIS"
        assert by["pacs"]["accepted"] == 1 and by["pacs"]["address"] == f"127.0.0.1:{receiver.port}"
        status = {d["destination"]: d for d in api.get("/api/deliveries", headers=auth(PHYS_P)).json()}
        assert status["his"]["refused"][0]["code"] == "AR" and status["billing"]["accepted"] == 3
        # again: only what was not accepted goes out, and now the HIS takes it
        r = api.post("/api/sends/hl7", headers=auth(PHYS_H), json={"destinations": ["his"]})
        assert [(x["destination"], x["sent"], x["accepted"], x["skipped"]) for x in r.json()] == [("his", 1, 1, 0)]
        assert receiver.received.count(next(iter(refused_once))) == 2
        status = {d["destination"]: d for d in api.get("/api/deliveries", headers=auth(PHYS_P)).json()}
        assert status["his"]["refused"] == [] and status["his"]["accepted"] == 1
        r = api.post("/api/sends/hl7", headers=auth(PHYS_H), json={"destinations": ["nowhere"]})
        assert r.status_code == 400 and r.json()["fields"][0]["field"] == "destinations"


def test_send_is_bounded_by_the_deadline_and_keeps_what_was_answered(world, tmp_path):
    deliver(world, world.course_id, [HOME, PARTNER, HOME])

    def first_only(message, seen):  # answers the first message, then goes silent
        return ("AA", "") if len(answered) == 0 and not answered.append(1) else "silent"

    answered: list[int] = []
    with Receiver(first_only) as receiver, client_for(
            world, hl7_config=hl7_config(tmp_path, receiver.port, timeout=30), send_deadline=1.5) as api:
        import time

        started = time.monotonic()
        r = api.post("/api/sends/hl7", headers=auth(PHYS_H), json={"destinations": ["billing"]})
        took = time.monotonic() - started
        assert r.status_code == 200 and took < 10
        row = r.json()[0]
        assert "send deadline (1.5 s) passed" in row["failure"] and row["accepted"] == 1
        status = {d["destination"]: d for d in api.get("/api/deliveries", headers=auth(PHYS_H)).json()}
        assert status["billing"]["accepted"] == 1


@pytest.mark.slow
def test_a_send_does_not_stop_the_server_answering(tmp_path):
    """A real server process: while a send waits on a silent receiver, other requests are answered."""
    import os
    import threading
    import time

    import httpx

    from adapters.runtime import Ledger
    from tests.conftest import free_port
    from tests.http_support import running_server

    db, env = str(tmp_path / "ledger.sqlite3"), {"FRACTION_LEDGER_READ_DB": str(tmp_path / "read.sqlite3")}
    os.environ.update(env)
    try:
        with Ledger(db) as ledger:
            seed_accounts(ledger.app)
            deliver(ledger, seed_course(ledger.app), [HOME])
    finally:
        os.environ.pop("FRACTION_LEDGER_READ_DB")
    with Receiver(lambda m, seen: "silent") as receiver, running_server(
            db, free_port(), env=env, log=tmp_path / "server.log",
            extra=("--hl7-config", hl7_config(tmp_path, receiver.port, timeout=20, attempts=1),
                   "--send-deadline", "8")) as base:
        answer: dict = {}

        def send() -> None:
            started = time.monotonic()
            answer["r"] = httpx.post(base + "/api/sends/hl7", headers=auth(PHYS_H), json={"destinations": ["billing"]},
                                     timeout=30)
            answer["took"] = time.monotonic() - started

        sender = threading.Thread(target=send)
        sender.start()
        wait_for(lambda: receiver.received, "the send reaching the receiver", seconds=10)
        # the send is waiting for an ACK now: the server still answers, and refuses a second send
        during = 0  # requests answered while the send was still waiting (not after it gave up)
        for _ in range(5):
            assert httpx.get(base + "/api/deliveries", headers=auth(PHYS_H), timeout=5).status_code == 200
            during += sender.is_alive()
        assert during >= 1
        second = httpx.post(base + "/api/sends/hl7", headers=auth(PHYS_H), json={}, timeout=5)
        assert second.status_code == 409 and "Another send" in second.json()["message"]
        sender.join(timeout=30)
        assert answer["r"].status_code == 200 and answer["took"] >= 7.5  # it waited for the deadline
        assert "send deadline (8 s) passed" in answer["r"].json()[0]["failure"]
