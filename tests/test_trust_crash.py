"""No acknowledged fraction is lost: the server is killed with SIGKILL again and again while
RTTs' clients log fractions concurrently; after a restart every fraction that was answered
201 is in the log, and the hash chain verifies.

Loopback only, bounded: a few rounds of about a second of load each, every wait has a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from adapters import chain
from adapters.runtime import Ledger
from tests.conftest import EACH_BACKEND, ROOT, cli, free_port, wait_for
from tools.serverproc import stop_process
from tests.http_support import PARTNER, account_name, auth, fraction_body, seed_accounts, seed_course

ROUNDS = 3
CLIENTS = 4
DEADLINE = 150  # seconds for the whole test


def start_server(db: str, port: int, log) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "--db", db, "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"],
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, "the server coming up", seconds=60)
    except AssertionError:
        proc.kill()
        raise
    return proc


class Rtt(threading.Thread):
    """Logs fractions 1, 2, 3... of its own course; a fraction whose answer was lost to a crash
    is sent again with the same Idempotency-Key, so it is recorded once."""

    def __init__(self, base: str, course_id: str, account: str, stop: threading.Event):
        super().__init__(daemon=True)
        self.base, self.course_id, self.account, self.stop = base, course_id, account, stop
        self.acknowledged: dict[int, str] = {}  # fraction number -> record id answered with 201
        self.unexpected: list[str] = []
        self.number = 1
        self.lost_answers = 0  # requests in flight when the server died

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self.stop.is_set():
                key = f"crash-{self.course_id}-{self.number}"
                try:
                    r = client.post(f"/api/courses/{self.course_id}/fractions", json=fraction_body(self.number, days=self.number),
                                    headers=auth(self.account) | {"Idempotency-Key": key})
                except httpx.HTTPError as exc:
                    self.lost_answers += not isinstance(exc, httpx.ConnectError)
                    self.stop.wait(0.05)  # the server is down: try the same fraction again soon
                    continue
                if r.status_code == 201:
                    self.acknowledged[self.number] = r.json()["record_id"]
                    self.number += 1
                else:
                    self.unexpected.append(f"{r.status_code} {r.text[:200]}")
                    self.number += 1


def answered_each(rtts: list[Rtt], when: str) -> None:
    """Wait (bounded) until every client got one more 201 than it had now."""
    had = [len(r.acknowledged) for r in rtts]
    wait_for(lambda: all(len(r.acknowledged) > n for r, n in zip(rtts, had)), f"a 201 for every client {when}",
             seconds=60)


@EACH_BACKEND
@pytest.mark.slow
def test_sigkill_during_concurrent_logging_loses_no_acknowledged_fraction(db_url, tmp_path, monkeypatch):
    started = time.monotonic()
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    with Ledger(db_url) as ledger:
        seed_accounts(ledger.app)
        courses = [seed_course(ledger.app, patient_id=f"P-CRASH-{i}", uid=f"1.2.3.4.{i}", fractions=500)
                   for i in range(CLIENTS)]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    stop = threading.Event()
    rtts = [Rtt(base, courses[i], account_name("rtt", PARTNER, 1 + i % 2), stop) for i in range(CLIENTS)]
    kills = 0
    with open(tmp_path / "server.log", "w") as log:
        server = start_server(db_url, port, log)
        for rtt in rtts:
            rtt.start()
        try:
            for _ in range(ROUNDS):
                # Kill once every client was answered since the (re)start, mid-stream of requests.
                answered_each(rtts, "before a kill")
                server.send_signal(signal.SIGKILL)
                server.wait(timeout=10)
                kills += 1
                assert time.monotonic() - started < DEADLINE
                server = start_server(db_url, port, log)
            answered_each(rtts, "after the last restart")  # acknowledged after the last restart too
        finally:
            stop.set()
            for rtt in rtts:
                rtt.join(timeout=20)
            stop_process(server)

    acknowledged = sum(len(r.acknowledged) for r in rtts)
    assert kills == ROUNDS and acknowledged >= CLIENTS, "the clients must have been answered between kills"
    assert [u for r in rtts for u in r.unexpected] == []
    print(f"{acknowledged} fractions answered 201, {sum(r.lost_answers for r in rtts)} requests cut by {kills} kills")
    with Ledger(db_url) as ledger:
        for rtt in rtts:
            course = ledger.app.get_course(rtt.course_id)
            stored = {r.number: r.record_id for r in course.active_records()}
            for number, record_id in rtt.acknowledged.items():
                assert stored.get(number) == record_id, f"fraction {number} of {rtt.course_id} was answered 201 but is lost"
            # No fraction twice, even when the answer was lost and the request sent again.
            assert len(course.active_records()) == len(stored)
        assert chain.verify(ledger.app).ok
    verified = cli("verify", db=db_url, env={"FRACTION_LEDGER_READ_DB": str(tmp_path / "read.sqlite3")})
    assert verified.returncode == 0 and verified.stdout.startswith("ok: "), verified.stdout + verified.stderr
    assert time.monotonic() - started < DEADLINE
