"""Benchmark: how long the gaps worklist takes (what /gaps, GET /api/gaps and `fraction-ledger gaps`
compute on every call: every active course's gap from the read model, in its centre's zone).

Courses of 35 fractions, Monday to Friday from Monday 2 November 2026, with 3 to 10 fractions
delivered and a third of them category 1; "now" is Tuesday 17 November 08:00 in Brussels.

    fraction-ledger bench gaps [--courses 500] [--rounds 5] [--json]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
import msgspec

from adapters.gaps_view import gaps_of
from adapters.runtime import Ledger
from ledger.service import Actor

BXL = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 11, 17, 8, 0, tzinfo=BXL)
DAYS = [datetime(2026, 11, d, 9, tzinfo=BXL) for d in (2, 3, 4, 5, 6, 9, 10, 11, 12, 13)]
SITES = ("head_and_neck", "breast", "palliative")


def seed(ledger: Ledger, courses: int) -> None:
    app, physicist, rtt = ledger.app, Actor("physicist.home", "HOME"), Actor("rtt.home", "HOME")
    for i in range(courses):
        cid = app.register_course(
            {"patient": {"id": f"P-{i:05d}", "name": "BENCH^PATIENT"}, "home_centre": "HOME",
             "assigned_centres": ["PARTNER"], "schedule": {"start": "2026-11-02"}, "site": SITES[i % 3],
             "plan": {"uid": f"1.2.826.0.1.3680043.10.17.{i}", "label": "H&N 70Gy/35", "fraction_groups": [
                 {"number": 1, "fractions_planned": 35, "dose_gy": "2", "beams": [{"number": 1, "meterset": "200"}]}]}},
            physicist)["id"]
        for n, day in enumerate(DAYS[: 3 + i % 8], start=1):
            app.log_fraction(cid, {"number": n, "centre": "HOME", "machine": "L1", "operator": "rtt.home",
                                   "delivered_at": day}, rtt)


@click.command("gaps")
@click.option("--courses", type=int, default=500, show_default=True)
@click.option("--rounds", type=int, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def main(courses: int, rounds: int, as_json: bool) -> None:
    """Milliseconds to compute the gaps worklist of N active courses from the read model."""
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FRACTION_LEDGER_READ_DB"] = str(Path(tmp) / "read.sqlite3")
        try:
            with Ledger(str(Path(tmp) / "ledger.sqlite3"), clock=lambda: NOW) as ledger:
                seed(ledger, courses)
                read = ledger.fresh()
                rows = read.courses(status="active")
                times, out = [], []
                for _ in range(rounds):
                    start = time.perf_counter()
                    out = gaps_of(ledger.app, read, rows, 2)
                    times.append(time.perf_counter() - start)
        finally:
            os.environ.pop("FRACTION_LEDGER_READ_DB", None)
    result = {"courses": len(out), "alarms": sum(r["alarm"] for r in out), "rounds": rounds,
              "median_ms": round(statistics.median(times) * 1000, 1)}
    if as_json:
        click.echo(msgspec.json.encode(result).decode())
    else:
        click.echo(f"gaps worklist of {result['courses']} courses ({result['alarms']} alarms): "
                   f"median {result['median_ms']} ms over {rounds} rounds")
