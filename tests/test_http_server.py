"""The real server (`fraction-ledger serve` under uvicorn): 16 clients posting the same
fraction at once on SQLite and on PostgreSQL, health, and an access log without names."""

from __future__ import annotations

import threading
from collections import Counter

import httpx
import pytest

from adapters.runtime import Ledger
from tests.conftest import EACH_BACKEND, free_port
from tests.http_support import (
    PATIENT_NAME, PARTNER, account_name, auth, fraction_body, running_server, seed_accounts, seed_course,
)

CLIENTS = 16


@pytest.fixture
def served(db_url, tmp_path, monkeypatch):
    read_db = tmp_path / "read.sqlite3"
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(read_db))
    with Ledger(db_url) as ledger:
        seed_accounts(ledger.app)
        course_id = seed_course(ledger.app)
    log = tmp_path / "server.log"
    with running_server(db_url, free_port(), log=log) as base:
        yield base, course_id, log


@EACH_BACKEND
@pytest.mark.slow
def test_sixteen_clients_same_fraction_one_201_fifteen_409(served):
    base, course_id, log = served
    barrier = threading.Barrier(CLIENTS, timeout=30)
    results: list[httpx.Response] = []
    lock = threading.Lock()
    # Every client is a different RTT account of the partner, so nothing is de-duplicated by identity.
    names = [account_name("rtt", PARTNER, 1), account_name("rtt", PARTNER, 2)]

    def post(i: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            body = fraction_body(1, note=f"client {i}")
            barrier.wait()
            r = client.post(f"/api/courses/{course_id}/fractions", json=body, headers=auth(names[i % 2]))
            with lock:
                results.append(r)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    statuses = Counter(r.status_code for r in results)
    assert statuses == {201: 1, 409: CLIENTS - 1}, [r.text for r in results if r.status_code not in (201, 409)]
    winner = next(r.json() for r in results if r.status_code == 201)
    for r in results:
        if r.status_code == 409:
            assert r.json()["error"] == "fraction_already_delivered"
            assert r.json()["conflict"]["record_id"] == winner["record_id"]
    course = httpx.get(f"{base}/api/courses/{course_id}", headers=auth(names[0])).json()
    assert [f["number"] for f in course["fractions"]] == [1]

    # the access log names routes and statuses, never a patient
    assert httpx.get(f"{base}/health").json()["status"] == "ok"
    assert httpx.get(f"{base}/ready").status_code == 200
    text = log.read_text()
    assert "POST /api/courses/" in text and "201" in text
    for part in PATIENT_NAME.split("^"):
        assert part not in text
