"""Benchmark: fractions logged per second through the application service, every acceptance
durable before the call returns, next to the bare `eventsourcing` rate of one event per
transaction on the same store, with the same number of client threads.

`backend`: the embedded SQLite file (WAL, synchronous=FULL) or a real PostgreSQL server that
the bench starts itself on 127.0.0.1 (fsync on; `tools.pg_server`) and stops at the end. Each
round measures, in turn on fresh stores: the bare baseline, the ledger, and (with `compare`)
the ledger without its aggregate cache and with one save per transaction (no group commit),
so a noisy neighbour hits them all alike; ratios of medians are the figures to compare.
"""

from __future__ import annotations

import contextlib
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from adapters.runtime import Ledger
from adapters.storage import Storage
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


def in_threads(clients: int, work: Callable[[int], None]) -> float:
    """Seconds for `work(k)` in `clients` threads at once (k = 0..clients-1)."""
    start = time.perf_counter()
    if clients == 1:
        work(0)
    else:
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(work, range(clients)))
    return time.perf_counter() - start


def bare_env(url: str, clients: int) -> dict[str, str]:
    if not url.startswith("postgresql://"):
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": url, "SQLITE_LOCK_TIMEOUT": "30"}
    env = Storage(url).event_store_env()
    del env["APPLICATION_RECORDER_TOPIC"]  # the library's own recorder: no hash chain
    return env | {"POSTGRES_POOL_SIZE": str(max(1, clients))}


def bare_rate(url: str, n: int, clients: int = 1) -> float:
    """One aggregate event per transaction, the library alone (no load, no rules), `clients`
    threads at once, each on its own aggregates."""
    app = Bare(env=bare_env(url, clients))
    tallies = [Tally() for _ in range(max(clients, n // FRACTIONS_PER_COURSE))]
    app.save(*tallies)

    def client(k: int) -> None:
        for i in range(k, n, clients):
            t = tallies[i % len(tallies)]
            t.tick()
            app.save(t)

    elapsed = in_threads(clients, client)
    app.close()
    return n / elapsed


def ledger_rate(url: str, read_db: Path, n: int, clients: int = 1, cache: bool = True, grouped: bool = True) -> float:
    """Fractions through FractionLedger.log_fraction: load the course, check every rule, save;
    `clients` threads at once, each on its own courses (a department's RTTs at their linacs),
    so that saves arriving together are group-committed. `cache=False`: every command
    reconstructs its course from the log; `grouped=False`: one save per transaction."""
    with Ledger(url, read_db=str(read_db)) as ledger:
        app = ledger.app
        if not cache:
            app.course_cache.most = 0
        if not grouped:
            app.uow.group_commit.most = 1
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

        elapsed = in_threads(clients, client)
    return n / elapsed


def synchronous_mode(path: str) -> str:
    conn = sqlite3.connect(path)
    mode = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[conn.execute("PRAGMA synchronous").fetchone()[0]]
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    return f"SQLite {journal}/{mode}"


@contextlib.contextmanager
def stores(backend: str, tmp: Path) -> Iterator[Callable[[str], str]]:
    """`new(name)` -> the URL of a fresh, empty event store on `backend`."""
    if backend == "sqlite":
        yield lambda name: str(tmp / f"{name}.sqlite3")
        return
    from tools.pg_server import temporary_postgres

    with temporary_postgres() as server:
        yield lambda name: server.new_database()


def run_bench(n: int = 2000, as_json: bool = False, rounds: int = 3, clients: int = 1, backend: str = "sqlite",
              compare: bool = False) -> dict:
    n = min(n, FRACTIONS_PER_COURSE * max(1, n // FRACTIONS_PER_COURSE))
    runs: dict[str, list[float]] = {"bare": [], "ledger": []}
    if clients > 1:
        runs["bare_one_client"] = []
    if compare:
        runs |= {"ledger_no_cache": [], "ledger_one_save_per_transaction": []}
    durability = "PostgreSQL, fsync on, 127.0.0.1"
    with tempfile.TemporaryDirectory(prefix="fraction-ledger-bench-") as tmp, stores(backend, Path(tmp)) as new:
        for r in range(rounds):
            read = Path(tmp) / f"read{r}"
            read.mkdir()
            runs["bare"].append(bare_rate(new(f"bare{r}"), n, clients))
            if clients > 1:  # the baseline of the rows before 2026-12-08: the library on one thread
                runs["bare_one_client"].append(bare_rate(new(f"bare1_{r}"), n, 1))
            url = new(f"ledger{r}")
            runs["ledger"].append(ledger_rate(url, read / "a.sqlite3", n, clients))
            if backend == "sqlite" and r == 0:
                durability = synchronous_mode(url)
            if compare:
                runs["ledger_no_cache"].append(ledger_rate(new(f"nocache{r}"), read / "b.sqlite3", n, clients,
                                                           cache=False))
                runs["ledger_one_save_per_transaction"].append(
                    ledger_rate(new(f"single{r}"), read / "c.sqlite3", n, clients, grouped=False))
    median = {k: statistics.median(v) for k, v in runs.items()}
    result = {
        "fractions": n, "rounds": rounds, "clients": clients, "backend": backend, "store": durability,
        "ledger_per_s": round(median["ledger"], 1),
        "bare_eventsourcing_per_s": round(median["bare"], 1),
        "ratio": round(median["ledger"] / median["bare"], 3),
    }
    if "bare_one_client" in median:
        result["bare_one_client_per_s"] = round(median["bare_one_client"], 1)
        result["ratio_to_bare_one_client"] = round(median["ledger"] / median["bare_one_client"], 3)
    for k in ("ledger_no_cache", "ledger_one_save_per_transaction"):
        if k in median:
            result[f"{k}_per_s"] = round(median[k], 1)
            result[f"{k}_ratio"] = round(median[k] / median["bare"], 3)
    if as_json:
        print(msgspec.json.encode(result).decode())
    else:
        who = f"{clients} client{'s' if clients > 1 else ''}"
        print(f"fractions logged        {n} per round, {rounds} rounds, {durability}, {who}")
        print(f"ledger (log_fraction)   {result['ledger_per_s']:>8} /s  (median)")
        if compare:
            print(f"  without aggregate cache {result['ledger_no_cache_per_s']:>8} /s")
            print(f"  one save a transaction  {result['ledger_one_save_per_transaction_per_s']:>8} /s")
        print(f"bare eventsourcing      {result['bare_eventsourcing_per_s']:>8} /s  (one event per transaction, {who})")
        if "bare_one_client_per_s" in result:
            print(f"bare, one client        {result['bare_one_client_per_s']:>8} /s")
        print(f"ratio ledger/bare       {result['ratio']:>8}"
              + (f"  (to bare on one client: {result['ratio_to_bare_one_client']})" if clients > 1 else ""))
    return result


if __name__ == "__main__":
    run_bench()
