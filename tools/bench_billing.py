"""Benchmark: a settlement statement read from the read-model tables, next to the same statement
built by loading every course's settlement stream (what it would cost without the read model).

    fraction-ledger bench billing [--courses 200] [--json]

Both are timed in the same run on the same log; the ratio is the figure to compare between machines.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click
import msgspec

from adapters.runtime import Ledger
from ledger.billing import settlement_id_for, statement
from ledger.service import Actor

HOME, PARTNERS = "AZ-HOME", ["PARTNER-RT", "THIRD-RT"]
START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))
FRACTIONS = 4


def build(ledger: Ledger, courses: int) -> None:
    app, finance = ledger.app, Actor("finance", HOME)
    for i, partner in enumerate(PARTNERS):
        app.billing.agree({"billing_centre": HOME, "partner": partner, "rule": ["pro-rata", "per-fraction"][i],
                   "course_amount": "3150.00", "fee_per_fraction": None if i == 0 else "118.75",
                   "valid_from": "2026-01-01"}, finance)
    for n in range(courses):
        cid = app.register_course({
            "patient": {"id": f"B-{n}", "name": "BENCH^PATIENT"}, "home_centre": HOME,
            "plan": {"uid": f"1.2.826.0.1.3680043.10.77.{n + 1}", "label": "Bench",
                     "fraction_groups": [{"number": 1, "fractions_planned": FRACTIONS,
                                          "beams": [{"number": 1, "meterset": "100"}]}]}}, finance)["id"]
        for k in range(1, FRACTIONS + 1):
            centre = HOME if k <= 2 else PARTNERS[n % 2]
            app.log_fraction(cid, {"number": k, "centre": centre, "machine": "L", "operator": "rtt",
                                   "delivered_at": START + timedelta(days=k)}, Actor("rtt", centre))
        app.complete_course(cid, "done", finance)
    ledger.fresh()


def from_streams(ledger: Ledger) -> dict:
    """The baseline: every course's settlement aggregate loaded from the event store."""
    lines = []
    for course in ledger.read.courses(status="completed"):
        split = ledger.app.repository.get(settlement_id_for(course["id"])).current
        lines += [{"course_id": split.course_id, "billing_centre": split.billing_centre, "centre": s.centre,
                   "fractions": s.fractions, "amount": s.amount} for s in split.shares]
    return statement(lines)


def timed(fn, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


@click.command("billing")
@click.option("--courses", type=int, default=200, show_default=True)
@click.option("--rounds", type=int, default=5, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def main(courses: int, rounds: int, as_json: bool) -> None:
    """A statement from the read-model tables next to one built from every settlement stream."""
    with tempfile.TemporaryDirectory() as tmp, Ledger(str(Path(tmp) / "bench.sqlite3")) as ledger:
        t0 = time.perf_counter()
        build(ledger, courses)
        built = time.perf_counter() - t0
        today = ledger.read.splits(ledger.read.courses()[0]["id"])[0]["completed_on"]
        period = (date.fromisoformat(today), date.fromisoformat(today))
        tables = ledger.read.statement(*period)
        streams = from_streams(ledger)
        assert tables["totals"]["amount"] == streams["totals"]["amount"]
        assert tables["balances"] == streams["balances"]
        t_tables = timed(lambda: ledger.read.statement(*period), rounds)
        t_streams = timed(lambda: from_streams(ledger), rounds)
    if as_json:
        click.echo(msgspec.json.encode({"courses": courses, "build_s": built, "statement_tables_ms": t_tables * 1000,
                                        "statement_streams_ms": t_streams * 1000, "ratio": t_streams / t_tables}))
        return
    click.echo(f"courses completed        {courses} ({FRACTIONS} fractions each, 2 centres), built in {built:.1f} s")
    click.echo(f"statement from tables    {t_tables * 1000:8.1f} ms  (median of {rounds})")
    click.echo(f"statement from streams   {t_streams * 1000:8.1f} ms  (every settlement aggregate loaded)")
    click.echo(f"ratio streams/tables     {t_streams / t_tables:8.1f}")


if __name__ == "__main__":
    main()
