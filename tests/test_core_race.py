"""Centres racing for one fraction, as real processes on one database."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys

import pytest

from ledger.service import Actor
from tests.conftest import EACH_BACKEND, ROOT

pytestmark = EACH_BACKEND

WORKER = r"""
import json, sys
from datetime import datetime, timezone
from adapters.runtime import Ledger
from ledger import errors
from ledger.service import Actor
db, course, number, centre = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with Ledger(db) as ledger:
    ledger.app.get_course(course)  # connected and warm before the start signal
    print("ready", flush=True)
    sys.stdin.readline()  # the start signal: every racer is ready
    try:
        r = ledger.app.log_fraction(course, {"number": number, "centre": centre, "machine": centre + "-L1",
            "operator": "rtt." + centre, "delivered_at": datetime(2026, 11, 2, 9, tzinfo=timezone.utc)},
            Actor("rtt." + centre, centre))
        print(json.dumps({"accepted": True, "centre": r["centre"]}))
    except errors.LedgerError as e:
        print(json.dumps({"accepted": False, "error": e.code, "message": str(e), "conflict": e.conflict}))
"""

RACERS = 8


def race(ledger, tmp_path, patient: str, numbers: list[int]) -> tuple[str, list[dict]]:
    """RACERS processes, connected and waiting, log their fraction at the same instant: each says
    "ready" once connected, and all are told "go" together."""
    course = ledger.app.register_course(
        {"patient": {"id": patient, "name": "RACE^ONE"}, "home_centre": "HOME",
         "plan": {"uid": f"1.2.3.{len(patient)}{ord(patient[-1])}", "label": "race",
                  "fraction_groups": [{"number": 1, "fractions_planned": 30,
                                       "beams": [{"number": 1, "meterset": "150"}]}]}},
        Actor("physicist", "HOME"))["id"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FRACTION_LEDGER_READ_DB": str(tmp_path / "read.sqlite3")}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, ledger.storage.url, course, str(number), f"C{i}"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for i, number in enumerate(numbers)
    ]
    try:
        for p in procs:  # bounded: a racer that dies closes its stdout (""), one that hangs is given up on
            assert select.select([p.stdout], [], [], 60)[0], "a racer did not connect within 60 s"
            assert p.stdout.readline() == "ready\n", p.stderr.read() if p.poll() is not None else "not ready"
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        outcomes = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            outcomes.append(json.loads(out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    return course, outcomes


@pytest.mark.slow
def test_racing_processes_on_one_fraction_get_one_acceptance(ledger, tmp_path):
    course, outcomes = race(ledger, tmp_path, "P-RACE", [7] * RACERS)
    winners = [o for o in outcomes if o["accepted"]]
    losers = [o for o in outcomes if not o["accepted"]]
    assert len(winners) == 1, outcomes
    assert len(losers) == RACERS - 1
    for lost in losers:
        assert lost["error"] == "fraction_already_delivered"
        assert lost["conflict"]["centre"] == winners[0]["centre"], "the refusal names the winner"
        assert winners[0]["centre"] in lost["message"]
    view = ledger.fresh().course(course)
    assert view["fractions_delivered"] == 1 and len(view["fractions"]) == 1


@pytest.mark.slow
def test_racing_processes_on_different_fractions_all_succeed(ledger, tmp_path):
    course, outcomes = race(ledger, tmp_path, "P-RACE2", list(range(1, RACERS + 1)))
    assert all(o["accepted"] for o in outcomes), outcomes
    assert ledger.fresh().course(course)["fractions_delivered"] == RACERS
