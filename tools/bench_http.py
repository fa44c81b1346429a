"""Benchmark: fractions logged per second through HTTP by 16 concurrent clients against a
real `fraction-ledger serve` (uvicorn, loopback only), with p50/p99 latency, next to the
core's in-process logging rate measured in the same run, in rounds that alternate the two
(in-process, HTTP, in-process, HTTP, ...) so that load from elsewhere hits both alike; the ratio
of medians is the figure to compare.

Every 201 is checked durable afterwards: the server is stopped and the fraction events in
the log are counted; they must equal the 201s. Bounded: a fixed number of fractions and a
time limit. Run: `fraction-ledger bench http [--fractions 1600] [--clients 16] [--rounds 3] [--json]`.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
import httpx

from adapters.runtime import Ledger
from ledger.accounts import add_account, hash_token
from ledger.service import Actor

FRACTIONS_PER_COURSE = 30
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=timezone(timedelta(hours=1)))
TIME_LIMIT = 300  # seconds for the HTTP part, whatever happens


def course(i: int, tag: str) -> dict:
    return {"patient": {"id": f"B-{tag}-{i}", "name": "BENCH^PATIENT"}, "home_centre": "HOME",
            "plan": {"uid": f"1.2.826.0.1.{i + 1}", "label": "Bench 60Gy/30", "fraction_groups": [
                {"number": 1, "fractions_planned": FRACTIONS_PER_COURSE,
                 "beams": [{"number": 1, "meterset": "100"}, {"number": 2, "meterset": "101.5"}]}]},
            "assigned_centres": ["PARTNER"]}


def at(k: int) -> datetime:
    return T0 + timedelta(days=k)  # a day apart: no "less than 6 hours" warnings to store


def seed(db: str, courses: int, tag: str) -> list[str]:
    with Ledger(db) as ledger:
        return [ledger.app.register_course(course(i, tag), Actor("bench", "HOME"))["id"] for i in range(courses)]


def in_process_rate(folder: Path, n: int) -> float:
    db = str(folder / "core.sqlite3")
    ids = seed(db, max(1, -(-n // FRACTIONS_PER_COURSE)), "core")
    with Ledger(db) as ledger:
        start = time.perf_counter()
        for k in range(n):
            cid, number = ids[k // FRACTIONS_PER_COURSE], k % FRACTIONS_PER_COURSE + 1
            ledger.app.log_fraction(cid, {"number": number, "centre": "PARTNER", "machine": "TB2",
                                          "operator": "rtt", "delivered_at": at(number)}, Actor("rtt", "PARTNER"))
        return n / (time.perf_counter() - start)


def http_run(folder: Path, n: int, clients: int) -> dict:
    from tools.serverproc import free_port, running_server

    db = str(folder / "http.sqlite3")
    per_client = -(-n // clients)
    courses_per_client = -(-per_client // FRACTIONS_PER_COURSE)
    ids = seed(db, clients * courses_per_client, "http")
    with Ledger(db) as ledger:
        for c in range(clients):
            add_account(ledger.app, {"name": f"rtt{c}", "role": "rtt", "centre": "PARTNER"},
                        hash_token(f"bench-token-{c}"), Actor("bench", "-"))
    env = {"FRACTION_LEDGER_READ_DB": str(folder / "http.read.sqlite3")}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + TIME_LIMIT

    def client(c: int, base: str, barrier: threading.Barrier) -> None:
        mine = ids[c * courses_per_client:(c + 1) * courses_per_client]
        headers = {"Authorization": f"Bearer bench-token-{c}"}
        with httpx.Client(base_url=base, timeout=60, headers=headers) as session:
            barrier.wait()
            for k in range(per_client):
                if time.monotonic() > deadline:
                    return
                cid, number = mine[k // FRACTIONS_PER_COURSE], k % FRACTIONS_PER_COURSE + 1
                t = time.perf_counter()
                r = session.post(f"/api/courses/{cid}/fractions",
                                 json={"number": number, "machine": "TB2", "delivered_at": at(number).isoformat()})
                dt = time.perf_counter() - t
                with lock:
                    latencies.append(dt)
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

    with running_server(db, free_port(), env=env, extra=("--log-level", "warning")) as base:
        barrier = threading.Barrier(clients + 1)
        threads = [threading.Thread(target=client, args=(c, base, barrier)) for c in range(clients)]
        for t in threads:
            t.start()
        barrier.wait()
        start = time.perf_counter()
        for t in threads:
            t.join(timeout=TIME_LIMIT + 30)
        elapsed = time.perf_counter() - start
    # durability: after the server is gone, every 201 is in the log
    with Ledger(db) as ledger:
        stored = sum(1 for _ in ledger.app.recorder.select_notifications(0, 10**7, topics=["ledger.course:Course.FractionDelivered"]))
    lat = sorted(latencies)
    return {
        "requests": len(lat), "statuses": statuses, "stored_fractions": stored, "seconds": elapsed,
        "rate": statuses.get(201, 0) / elapsed,
        "p50_ms": 1000 * statistics.median(lat), "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
    }


@click.command("http")
@click.option("--fractions", "n", type=int, default=1600, show_default=True)
@click.option("--clients", type=int, default=16, show_default=True)
@click.option("--rounds", type=click.IntRange(1, 10), default=3, show_default=True,
              help="Rounds of (in-process, then HTTP), so that a noisy neighbour hits both alike.")
@click.option("--json", "as_json", is_flag=True)
def main(n: int, clients: int, rounds: int, as_json: bool) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    cores, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):  # interleaved: the baseline is measured between the HTTP runs
            folder = Path(tmp) / f"round{r}"
            folder.mkdir()
            os.environ["FRACTION_LEDGER_READ_DB"] = str(folder / "core.read.sqlite3")
            cores.append(in_process_rate(folder, n))
            runs.append(http_run(folder, n, clients))
    core = statistics.median(cores)
    rate = statistics.median(h["rate"] for h in runs)
    statuses: dict[int, int] = {}
    for h in runs:
        for code, count in h["statuses"].items():
            statuses[code] = statuses.get(code, 0) + count
    durable = all(h["stored_fractions"] == h["statuses"].get(201, 0) for h in runs)
    result = {"clients": clients, "fractions": n, "rounds": rounds, "http_per_s": round(rate, 1),
              "p50_ms": round(statistics.median(h["p50_ms"] for h in runs), 2),
              "p99_ms": round(statistics.median(h["p99_ms"] for h in runs), 2),
              "core_in_process_per_s": round(core, 1), "ratio_http_to_core": round(rate / core, 3),
              "rounds_ratio": [round(h["rate"] / c, 3) for h, c in zip(runs, cores)],
              "rounds_p99_ms": [round(h["p99_ms"], 1) for h in runs],
              "statuses": statuses, "every_201_durable": durable}
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"HTTP, {clients} clients: {result['http_per_s']} fractions/s (median of {rounds} rounds; "
                   f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms), statuses {statuses}")
        click.echo(f"core in process, 1 thread, between the HTTP rounds: {result['core_in_process_per_s']} fractions/s")
        click.echo(f"ratio HTTP/core: {result['ratio_http_to_core']} (rounds: {result['rounds_ratio']}); "
                   f"every 201 durable: {durable}")
    if not durable:
        sys.exit(1)


if __name__ == "__main__":
    main()
