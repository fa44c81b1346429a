"""Benchmark: the read model (adapters/readmodel.py) next to what it cannot beat, each pair measured
in the same run, rounds interleaved so that a noisy neighbour hits both alike:

- rebuild: events projected per second by `rebuild`, next to reading the same notifications raw
  from the store (`select_notifications` in batches, nothing decoded); also the ratio of their
  CPU times (the thread's), which a busy machine changes less than the wall clock's;
- catch-up after one event: the reader's time in `Ledger.fresh()` after one fraction was logged,
  next to `fresh()` with nothing new (the floor: what every read pays), on a plain ledger (read
  model in a file) and an encrypted one (read model in memory);
- encrypted start: opening an encrypted ledger ready to serve (log, hash chain, read model), next to
  the same open with a full rebuild (what every start of an encrypted ledger did before its read
  model had an encrypted snapshot).

    fraction-ledger bench readmodel [--events 10000] [--rounds 5] [--catch-ups 200] [--json]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click
import msgspec

from adapters.keys import CIPHER_KEY_ENV, new_cipher_key
from adapters.runtime import Ledger
from ledger.service import Actor

FRACTIONS = 30
DAY1 = datetime(2026, 10, 5, 9, 0, tzinfo=timezone(timedelta(hours=2)))
CLOCK = lambda: DAY1 + timedelta(days=60)  # noqa: E731
PHYSICIST, RTT, CHECKER = Actor("physicist.home", "HOME"), Actor("rtt.partner", "PARTNER"), Actor("rtt.check", "PARTNER")


def course_data(n: int, planned: int = FRACTIONS) -> dict:
    return {"patient": {"id": f"P-{n:05d}", "name": "BENCH^PATIENT", "birth_date": "1958-04-01", "sex": "F"},
            "home_centre": "HOME", "assigned_centres": ["PARTNER"],
            "plan": {"uid": f"1.2.826.0.1.3680043.10.{n}", "label": "Pelvis 60Gy/30", "machine": "HOME-L1",
                     "centre": "HOME", "fraction_groups": [{"number": 1, "fractions_planned": planned, "beams": [
                         {"number": 1, "meterset": "120.0"}, {"number": 2, "meterset": "115.5"}]}]}}


def fraction(number: int) -> dict:
    return {"number": number, "centre": "PARTNER", "machine": "PARTNER-L1", "operator": "rtt.partner",
            "delivered_at": DAY1 + timedelta(days=number)}


def build(ledger: Ledger, events: int, clients: int = 8) -> int:
    """Courses of 30 fractions, each fraction verified, logged through the service by `clients`
    threads at once (their saves group-committed, to build the log quickly), until `events`."""
    app = ledger.app
    courses = max(1, -(-events // (2 * FRACTIONS + 2)))

    def client(k: int) -> None:
        for n in range(k, courses, clients):
            course = app.register_course(course_data(n), PHYSICIST)["id"]
            for f in range(1, FRACTIONS + 1):
                app.log_fraction(course, fraction(f), RTT)
                app.verify_fraction(course, f, CHECKER.user, CHECKER)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    ledger.fresh()  # current, as a running server leaves it
    return app.recorder.max_notification_id()


def raw_read(ledger: Ledger) -> tuple[float, float, int]:
    """Seconds (wall clock, and this thread's CPU) to read every notification from the store, in
    batches of 500."""
    start, cpu, count, at = time.perf_counter(), time.thread_time(), 0, 0
    while True:
        batch = ledger.app.recorder.select_notifications(at, 500, inclusive_of_start=False)
        count += len(batch)
        if len(batch) < 500:
            return time.perf_counter() - start, time.thread_time() - cpu, count
        at = batch[-1].id


def rebuild(ledger: Ledger) -> tuple[float, float, int]:
    start, cpu = time.perf_counter(), time.thread_time()
    count = ledger.read.rebuild(ledger.app)
    return time.perf_counter() - start, time.thread_time() - cpu, count


def snapshot_path(ledger: Ledger) -> Path | None:
    named = getattr(ledger.storage, "read_snapshot_path", None)  # absent before the encrypted snapshot
    return named() if named else None


def open_ready(db: Path, full: bool) -> float:
    """Seconds to open the ledger ready to serve; `full`: with no snapshot (a full rebuild)."""
    with Ledger(str(db), clock=CLOCK) as probe:
        snapshot = snapshot_path(probe)  # (the close writes it again when there is none)
    if full and snapshot is not None:
        snapshot.unlink(missing_ok=True)
    start = time.perf_counter()
    ledger = Ledger(str(db), clock=CLOCK)
    ledger.fresh()
    seconds = time.perf_counter() - start
    assert ledger.guard.problem is None
    ledger.close()
    return seconds


def catch_ups(ledger: Ledger, count: int, seed: int) -> dict[str, list[float]]:
    """fresh() after one fraction was logged (on courses of 30 fractions, as a department's are),
    interleaved with fresh() with nothing new."""
    app = ledger.app
    courses = [app.register_course(course_data(90_000 + 100 * seed + k), PHYSICIST)["id"]
               for k in range(-(-count // FRACTIONS))]
    ledger.fresh()
    out: dict[str, list[float]] = {"one": [], "none": []}
    for i in range(count):
        app.log_fraction(courses[i // FRACTIONS], fraction(i % FRACTIONS + 1), RTT)  # the writer's time, not measured
        start = time.perf_counter()
        ledger.fresh()
        out["one"].append(time.perf_counter() - start)
        start = time.perf_counter()
        ledger.fresh()
        out["none"].append(time.perf_counter() - start)
    return out


@contextmanager
def cipher_key(key: str | None):
    before = os.environ.get(CIPHER_KEY_ENV)
    if key is None:
        os.environ.pop(CIPHER_KEY_ENV, None)
    else:
        os.environ[CIPHER_KEY_ENV] = key
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(CIPHER_KEY_ENV, None)
        else:
            os.environ[CIPHER_KEY_ENV] = before


def ms(values: list[float], q: float = 0.5) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@click.command("readmodel")
@click.option("--events", type=int, default=10_000, show_default=True, help="Size of each log.")
@click.option("--rounds", type=int, default=5, show_default=True)
@click.option("--catch-ups", "catch_count", type=click.IntRange(1, 3000), default=200, show_default=True,
              help="Single events per ledger per round.")
@click.option("--json", "as_json", is_flag=True)
def main(events: int, rounds: int, catch_count: int, as_json: bool) -> None:
    """Read-model rebuild, catch-up and encrypted start, each next to its baseline."""
    times: dict[str, list[float]] = {"raw": [], "rebuild": [], "raw_cpu": [], "rebuild_cpu": [],
                                     "start_snapshot": [], "start_full": []}
    catch: dict[str, dict[str, list[float]]] = {"plain": {"one": [], "none": []}, "encrypted": {"one": [], "none": []}}
    key = new_cipher_key()
    with tempfile.TemporaryDirectory() as tmp:
        plain_db, secret_db = Path(tmp) / "plain.sqlite3", Path(tmp) / "secret.sqlite3"
        os.environ.pop("FRACTION_LEDGER_READ_DB", None)  # each read model where its ledger puts it
        built = time.perf_counter()
        with cipher_key(None), Ledger(str(plain_db), clock=CLOCK) as ledger:
            total = build(ledger, events)
        with cipher_key(key), Ledger(str(secret_db), clock=CLOCK) as ledger:
            build(ledger, events)
        built = time.perf_counter() - built
        counted = 0
        for r in range(rounds):
            with cipher_key(None), Ledger(str(plain_db), clock=CLOCK) as ledger:
                for name, step in (("raw", raw_read), ("rebuild", rebuild)) if r % 2 == 0 else (
                        ("rebuild", rebuild), ("raw", raw_read)):
                    seconds, cpu, counted = step(ledger)
                    times[name].append(seconds / counted)
                    times[name + "_cpu"].append(cpu / counted)
                for k, v in catch_ups(ledger, catch_count, 2 * r).items():
                    catch["plain"][k] += v
            with cipher_key(key):
                for name in ("start_snapshot", "start_full") if r % 2 == 0 else ("start_full", "start_snapshot"):
                    times[name].append(open_ready(secret_db, full=name == "start_full"))
                with Ledger(str(secret_db), clock=CLOCK) as ledger:
                    ledger.fresh()
                    for k, v in catch_ups(ledger, catch_count, 2 * r + 1).items():
                        catch["encrypted"][k] += v
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "events": total, "rounds": rounds, "build_s": round(built, 1),
        "raw_per_s": round(1 / med["raw"]), "rebuild_per_s": round(1 / med["rebuild"]),
        "rebuild_vs_raw": round(med["raw"] / med["rebuild"], 3),
        # the same in this thread's CPU time: what the machine's other work does not change much
        "rebuild_vs_raw_cpu": round(med["raw_cpu"] / med["rebuild_cpu"], 3),
        "catch_up_ms": {kind: {"one_event_median": round(ms(c["one"]), 3), "one_event_p99": round(ms(c["one"], 0.99), 3),
                               "nothing_new_median": round(ms(c["none"]), 3)} for kind, c in catch.items()},
        "encrypted_start_s": {"snapshot": round(med["start_snapshot"], 3), "full_rebuild": round(med["start_full"], 3)},
        "full_vs_snapshot": round(med["start_full"] / med["start_snapshot"], 1),
    }
    if as_json:
        print(msgspec.json.encode(result).decode())
        return
    print(f"read model of a log of {total} events (median of {rounds} interleaved rounds; build {built:.0f} s):")
    print(f"  rebuild                         {result['rebuild_per_s']:>9,} events/s")
    print(f"  raw notifications from store    {result['raw_per_s']:>9,} events/s   ratio rebuild/raw "
          f"{result['rebuild_vs_raw']} (CPU time: {result['rebuild_vs_raw_cpu']})")
    for kind, c in result["catch_up_ms"].items():
        print(f"  catch-up after one event ({kind:9}) median {c['one_event_median']:.3f} ms, p99 "
              f"{c['one_event_p99']:.3f} ms; nothing new: {c['nothing_new_median']:.3f} ms "
              f"({rounds * catch_count} each)")
    print(f"  encrypted start from snapshot   {result['encrypted_start_s']['snapshot']:.3f} s")
    print(f"  encrypted start, full rebuild   {result['encrypted_start_s']['full_rebuild']:.3f} s   ratio full/snapshot "
          f"{result['full_vs_snapshot']}")


if __name__ == "__main__":
    main()
