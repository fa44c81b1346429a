"""Benchmark: how long opening the ledger takes (what a server does before it answers /ready:
open the log, verify the hash chain, catch the read model up) on a log of courses and fractions,
verifying from the head stored last time (incremental) next to verifying every event again.

Rounds alternate the two so that a noisy neighbour hits both alike; the ratio of medians is
the figure to compare between machines.

    fraction-ledger bench start [--events 10000] [--rounds 5] [--json]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
import msgspec

from adapters.runtime import Ledger
from ledger.service import Actor

FRACTIONS = 30
DAY1 = datetime(2026, 10, 5, 9, 0, tzinfo=timezone(timedelta(hours=2)))


def build(db: Path, events: int) -> int:
    """Courses of 30 fractions each, logged through the application service, until `events`."""
    physicist = Actor("physicist.home", "HOME")
    with Ledger(str(db), clock=lambda: DAY1 + timedelta(days=60)) as ledger:
        n = 0
        while (ledger.app.recorder.max_notification_id() or 0) < events:
            course = ledger.app.register_course(
                {"patient": {"id": f"P-{n:05d}", "name": "BENCH^PATIENT", "birth_date": "1958-04-01", "sex": "F"},
                 "home_centre": "HOME", "assigned_centres": ["PARTNER"],
                 "plan": {"uid": f"1.2.826.0.1.3680043.10.{n}", "label": "Pelvis 60Gy/30", "machine": "HOME-L1",
                          "centre": "HOME", "fraction_groups": [{"number": 1, "fractions_planned": FRACTIONS, "beams": [
                              {"number": 1, "meterset": "120.0"}, {"number": 2, "meterset": "115.5"}]}]}},
                physicist)["id"]
            for f in range(1, FRACTIONS + 1):
                ledger.app.log_fraction(course, {"number": f, "centre": "PARTNER", "machine": "PARTNER-L1",
                                                 "operator": "rtt.partner", "delivered_at": DAY1 + timedelta(days=f)},
                                        Actor("rtt.partner", "PARTNER"))
            n += 1
        ledger.fresh()  # the read model current and the verified head stored, as a running server leaves them
        return ledger.app.recorder.max_notification_id()


def open_ready(db: Path, verify_all: bool) -> tuple[float, int]:
    start = time.perf_counter()
    with Ledger(str(db), verify_all=verify_all) as ledger:
        ledger.fresh()
        assert ledger.guard.problem is None
        checked = ledger.guard.checked
    return time.perf_counter() - start, checked


@click.command("start")
@click.option("--events", type=int, default=10_000, show_default=True)
@click.option("--rounds", type=int, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def main(events: int, rounds: int, as_json: bool) -> None:
    """Seconds to open a ledger ready to serve: incremental chain check next to a full one."""
    times: dict[str, list[float]] = {"incremental": [], "full": []}
    checked: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "start.sqlite3"
        os.environ.pop("FRACTION_LEDGER_READ_DB", None)  # the read model beside this log
        built_in = time.perf_counter()
        total = build(db, events)
        built_in = time.perf_counter() - built_in
        for _ in range(rounds):
            for name in ("incremental", "full"):
                seconds, checked[name] = open_ready(db, verify_all=name == "full")
                times[name].append(seconds)
    medians = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "events": total, "rounds": rounds, "build_s": round(built_in, 1),
        "start_s": {k: round(v, 4) for k, v in medians.items()},
        "events_verified": checked,
        "full_vs_incremental": round(medians["full"] / medians["incremental"], 1),
    }
    if as_json:
        print(msgspec.json.encode(result).decode())
        return
    print(f"opening a ledger of {total} events ready to serve (median of {rounds} rounds):")
    print(f"  from the stored verified head  {medians['incremental']:.4f} s  ({checked['incremental']} events verified)")
    print(f"  verifying every event          {medians['full']:.4f} s  ({checked['full']} events verified)")
    print(f"  ratio full / incremental       {result['full_vs_incremental']}")


if __name__ == "__main__":
    main()
