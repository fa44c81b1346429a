"""Benchmark: the lists at scale (issue 20 point 5). A read model of N courses (default 50,000), one
incident per 10 courses and a settlement split per completed course, served by a real
`fraction-ledger serve` on 127.0.0.1; timed over HTTP: the RTT worklist (/worklist, the day order),
GET /api/courses, GET /api/incidents and finance's statement page (/finance for the period), each
median and p99, next to the baseline of the same run, one course read (GET /api/courses/{id});
and the server process's peak memory (VmHWM) after them, at N and at N/10 (flat or not).

    fraction-ledger bench lists [--courses 50000] [--small 5000] [--rounds 20] [--json]

The read model's rows are written directly (the tables as the projection writes them, in one
transaction), over a log that holds only the accounts: seeding 50,000 courses through the service
would take minutes and measure the projection, not the lists. Bounded: a fixed number of requests,
each with a timeout, and the server is stopped at the end whatever happens.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click
import httpx

from adapters.readmodel import COURSE_ROW, INSERT_COURSE, dumps
from adapters.readmodel_billing import INCIDENT_COLUMNS, INSERT_INCIDENT, INSERT_SHARE, INSERT_SPLIT, SHARE_COLUMNS, SPLIT_COLUMNS
from adapters.readmodel_sql import cells
from adapters.runtime import Ledger
from ledger.accounts import add_account, hash_token
from ledger.service import Actor

HOME, PARTNER = "HOME", "PARTNER"
NOW = "2026-11-17T08:00:00+01:00"  # a Tuesday: the worklist's "today"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))
PERIOD = ("2026-11-01", "2026-11-30")
ACCOUNTS = (("rtt.home", "rtt", HOME), ("finance.home", "finance", HOME))
REQUEST_TIMEOUT = 120


def token(name: str) -> str:
    return f"bench-token-{name}"


def plan(i: int, planned: int) -> dict:
    return {"uid": f"1.2.826.0.1.3680043.10.20.{i}", "label": f"Bench {2 * planned}Gy/{planned}",
            "fraction_groups": [{"number": 1, "fractions_planned": planned, "beams": [{"number": 1, "meterset": "200"}]}]}


def seed_rows(read, courses: int) -> str:
    """Course, incident and split rows straight into the read model (one transaction); returns a course id."""
    rng = random.Random(20)
    conn = read.conn
    conn.execute("BEGIN IMMEDIATE")
    first = None
    for i in range(courses):
        cid = f"00000000-0000-5000-8000-{i:012d}"
        first = first or cid
        planned = 25 + i % 11
        status = "completed" if i % 10 == 0 else "suspended" if i % 10 == 5 else "active"
        delivered = planned if status == "completed" else rng.randrange(0, planned)
        last = T0 + timedelta(days=rng.randrange(0, 16), hours=rng.randrange(0, 8)) if delivered else None
        conn.execute(INSERT_COURSE, COURSE_ROW({
            "id": cid, "patient_id": f"P-{rng.randrange(10**7):07d}", "patient_name": f"BENCH^PATIENT{i}",
            "birth_date": "1960-01-02", "sex": "F", "home_centre": HOME, "plan_uid": f"1.2.826.0.1.3680043.10.20.{i}",
            "plan_label": f"Bench {2 * planned}Gy/{planned}", "triage": (i % 6) or None, "status": status,
            "status_reason": None, "assigned_centres": dumps([PARTNER] if i % 2 else []), "plans": dumps([plan(i, planned)]),
            "fractions_planned": planned, "fractions_delivered": delivered, "awaiting_verification": i % 7 == 0 and delivered > 0,
            "fractions_with_warnings": 0, "last_fraction_at": last.isoformat() if last else None,
            "last_fraction_centre": HOME if last else None, "registered_at": T0.isoformat(), "version": 1 + delivered,
            "flags": None, "schedule": dumps({"start": None, "weekdays": [1, 3, 5], "days": []}) if i % 13 == 0 else None,
            "site": "head_and_neck" if i % 50 == 0 else None, "gap_category": None, "amendments": None, "prescribed": None,
        }))
        if i % 10 == 3:
            conn.execute(INSERT_INCIDENT, cells({
                "id": f"10000000-0000-5000-8000-{i:012d}", "centre": HOME, "home_centre": HOME, "course_id": cid,
                "fraction": 1, "category": "positioning", "severity": "low", "description": "bench",
                "description_said": None, "registered_by": "rtt.home", "occurred_at": T0.isoformat(),
                "registered_at": T0.isoformat(), "recorded_by": "rtt.home", "status": "open", "follow_ups": "[]",
                "resolution": None, "closed_by": None, "closed_at": None, "attempt": None, "position": i,
            }, INCIDENT_COLUMNS))
        if status == "completed":
            done = date(2026, 11, 1 + i % 28).isoformat()
            conn.execute(INSERT_SPLIT, cells({
                "course_id": cid, "sequence": 1, "current": 1, "status": "settled", "home_centre": HOME,
                "billing_centre": HOME, "course_amount": "3150.00", "category": None, "first_fraction_on": "2026-10-01",
                "completed_on": done, "agreements": "[]", "reason": None, "cause": "completed",
                "recorded_at": T0.isoformat(), "recorded_by": "finance.home"}, SPLIT_COLUMNS))
            for centre, n, amount in ((HOME, planned - 5, "2520.00"), (PARTNER, 5, "630.00")):
                conn.execute(INSERT_SHARE, cells({"course_id": cid, "sequence": 1, "centre": centre, "fractions": n,
                                                  "amount": amount}, SHARE_COLUMNS))
    conn.execute("COMMIT")
    return first


def peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def signed_in(base: str, name: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT)
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    client.post("/", data={"token": token(name), "_csrf_token": csrf})
    return client


def timed(get, path: str, rounds: int) -> dict:
    get(path)  # warm
    samples = []
    size = 0
    for _ in range(rounds):
        t = time.perf_counter()
        r = get(path)
        samples.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
        size = len(r.content)
    samples.sort()
    return {"path": path, "median_ms": round(1000 * statistics.median(samples), 1),
            "p99_ms": round(1000 * samples[min(len(samples) - 1, int(0.99 * len(samples)))], 1), "bytes": size}


def run_size(folder: Path, courses: int, rounds: int) -> dict:
    from tools.serverproc import ROOT, free_port, stop_process, wait_up

    folder.mkdir()
    db, read_db = str(folder / "ledger.sqlite3"), str(folder / "read.sqlite3")
    os.environ["FRACTION_LEDGER_READ_DB"] = read_db
    t0 = time.perf_counter()
    try:
        with Ledger(db) as ledger:
            for name, role, centre in ACCOUNTS:
                add_account(ledger.app, {"name": name, "role": role, "centre": centre}, hash_token(token(name)),
                            Actor("bench", "-"))
            read = ledger.fresh()
            one = seed_rows(read, courses)
    finally:
        os.environ.pop("FRACTION_LEDGER_READ_DB", None)
    setup = time.perf_counter() - t0
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FRACTION_LEDGER_READ_DB": read_db, "FRACTION_LEDGER_CLOCK": NOW}
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "--db", db, "serve", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], env=env, cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(proc, base, 120)
        started = peak_kib(proc.pid)
        api = httpx.Client(base_url=base, timeout=REQUEST_TIMEOUT, headers={"Authorization": f"Bearer {token('rtt.home')}"})
        rtt, finance = signed_in(base, "rtt.home"), signed_in(base, "finance.home")
        out = {
            "baseline": timed(api.get, f"/api/courses/{one}", rounds),
            "worklist": timed(rtt.get, "/worklist", rounds),
            "worklist_sorted": timed(rtt.get, "/worklist?sort=patient&dir=desc&status=active&page=3", rounds),
            "api_courses": timed(api.get, "/api/courses?limit=50&offset=100", rounds),
            "incidents": timed(api.get, "/api/incidents?limit=50", rounds),
            "statement": timed(finance.get, f"/finance?from={PERIOD[0]}&to={PERIOD[1]}", rounds),
        }
        peak = peak_kib(proc.pid)
        for c in (api, rtt, finance):
            c.close()
    finally:
        stop_process(proc)
    return {"courses": courses, "setup_s": round(setup, 1), "timings": out,
            "server_start_mib": round(started / 1024, 1), "server_peak_mib": round(peak / 1024, 1)}


@click.command("lists")
@click.option("--courses", type=int, default=50_000, show_default=True)
@click.option("--small", type=int, default=5_000, show_default=True, help="the smaller size, for the memory comparison")
@click.option("--rounds", type=int, default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def main(courses: int, small: int, rounds: int, as_json: bool) -> None:
    """The worklist, /api/courses, incidents and statement pages at N courses over a real server."""
    with tempfile.TemporaryDirectory(prefix="fraction-ledger-bench-lists-") as tmp:
        results = [run_size(Path(tmp) / f"n{n}", n, rounds) for n in (small, courses)]
    if as_json:
        click.echo(json.dumps(results))
        return
    for r in results:
        base = r["timings"]["baseline"]["median_ms"]
        click.echo(f"{r['courses']} courses (read model seeded in {r['setup_s']} s); server peak memory "
                   f"{r['server_peak_mib']} MiB (at start {r['server_start_mib']} MiB)")
        for name, t in r["timings"].items():
            ratio = t["median_ms"] / base if base else 0
            click.echo(f"  {name:16} median {t['median_ms']:8.1f} ms  p99 {t['p99_ms']:8.1f} ms  "
                       f"{t['bytes']:>10} bytes  x{ratio:.1f} of one course read   {t['path']}")
    small_r, big_r = results
    click.echo(f"peak memory x{big_r['server_peak_mib'] / small_r['server_peak_mib']:.2f} for "
               f"x{big_r['courses'] / small_r['courses']:.0f} courses")


if __name__ == "__main__":
    main()
