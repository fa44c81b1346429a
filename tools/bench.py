"""Benchmark: fractions logged per second through the application service, every acceptance
durable (committed to the SQLite WAL with synchronous=FULL before the call returns), next to
the bare `eventsourcing` rate of one event per transaction on the same kind of file.

Rounds alternate baseline and ledger so that a noisy neighbour hits both alike; the ratio
of medians is the figure to compare between machines.
"""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from adapters.runtime import Ledger
from ledger.service import Actor

FRACTIONS_PER_COURSE = 30


class Tally(Aggregate):
    @event("Created")
    def __init__(self) -> None:
        self.n = 0

    @event("Ticked")
    def tick(self) -> None:
        self.n += 1


class Bare(Application):
    pass


def sqlite_env(path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}


def bare_rate(folder: Path, n: int) -> float:
    """One aggregate event per transaction, the library alone (no load, no rules)."""
    app = Bare(env=sqlite_env(folder / "bare.sqlite3"))
    tallies = [Tally() for _ in range(max(1, n // FRACTIONS_PER_COURSE))]
    app.save(*tallies)
    start = time.perf_counter()
    for i in range(n):
        t = tallies[i % len(tallies)]
        t.tick()
        app.save(t)
    elapsed = time.perf_counter() - start
    app.close()
    return n / elapsed


def ledger_rate(folder: Path, n: int, clients: int = 1) -> float:
    """Fractions through FractionLedger.log_fraction: load the course, check every rule, save;
    `clients` threads at once, each on its own courses (a department's RTTs at their linacs),
    so that saves arriving together are group-committed."""
    with Ledger(str(folder / "ledger.sqlite3")) as ledger:
        app = ledger.app
        courses = []
        for k in range(max(1, n // FRACTIONS_PER_COURSE)):
            courses.append(app.register_course(
                {"patient": {"id": f"B{k:05d}", "name": f"BENCH^{k}"}, "home_centre": "HOME",
                 "plan": {"uid": f"1.2.826.0.1.3680043.10.{k + 1}", "label": "bench",
                          "fraction_groups": [{"number": 1, "fractions_planned": FRACTIONS_PER_COURSE,
                                               "beams": [{"number": 1, "meterset": "120.5"}, {"number": 2, "meterset": "98.1"}]}]}},
                Actor("bench", "HOME"))["id"])
        t0 = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)
        actor = Actor("rtt", "PARTNER")

        def client(k: int) -> None:
            for i in range(k, n, clients):
                number = i // len(courses) + 1
                app.log_fraction(courses[i % len(courses)],
                                 {"number": number, "centre": "PARTNER", "machine": "TB2", "operator": "rtt",
                                  "delivered_at": t0 + timedelta(days=number)}, actor)

        start = time.perf_counter()
        if clients == 1:
            client(0)
        else:
            with ThreadPoolExecutor(clients) as pool:
                list(pool.map(client, range(clients)))
        elapsed = time.perf_counter() - start
    return n / elapsed


def synchronous_mode(folder: Path) -> str:
    conn = sqlite3.connect(str(folder / "ledger.sqlite3"))
    mode = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[conn.execute("PRAGMA synchronous").fetchone()[0]]
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    return f"{journal}/{mode}"


def run_bench(n: int = 2000, as_json: bool = False, rounds: int = 3, clients: int = 1) -> dict:
    n = min(n, FRACTIONS_PER_COURSE * max(1, n // FRACTIONS_PER_COURSE))
    bare, ours = [], []
    with tempfile.TemporaryDirectory(prefix="fraction-ledger-bench-") as tmp:
        for r in range(rounds):
            folder = Path(tmp) / f"round{r}"
            folder.mkdir()
            bare.append(bare_rate(folder, n))
            ours.append(ledger_rate(folder, n, clients))
        durability = synchronous_mode(Path(tmp) / "round0")
    result = {
        "fractions": n,
        "rounds": rounds,
        "clients": clients,
        "sqlite": durability,
        "ledger_per_s": round(statistics.median(ours), 1),
        "bare_eventsourcing_per_s": round(statistics.median(bare), 1),
        "ratio": round(statistics.median(ours) / statistics.median(bare), 3),
    }
    if as_json:
        print(msgspec.json.encode(result).decode())
    else:
        print(f"fractions logged        {n} per round, {rounds} rounds, SQLite {durability}")
        print(f"ledger (log_fraction)   {result['ledger_per_s']:>8} /s  (median, {clients} client{'s' if clients > 1 else ''})")
        print(f"bare eventsourcing      {result['bare_eventsourcing_per_s']:>8} /s  (one event per transaction)")
        print(f"ratio ledger/bare       {result['ratio']:>8}")
    return result


if __name__ == "__main__":
    run_bench()
