"""Benchmark: HL7 messages per second on a bulk export, next to hl7apy's own
build-validate-serialise rate for the same charges, measured in the same run.

    PYTHONPATH=. python tools/bench_hl7.py [--fractions 50000] [--json]

The log is filled through the domain (each course's rules run on every fraction; one save
per course keeps the set-up short). Then `export hl7` runs as the CLI runs it: read model ->
messages (templates validated once per shape by hl7apy) -> one file per message. The
baseline builds each charge with hl7apy's object model in strict mode, validates it and
serialises it, on a sample of the same charges, checking it gives the same bytes. Every
`--check-every`th exported message is also parsed with hl7apy strict + validate().
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click  # noqa: E402

from adapters.hl7.er7 import validate  # noqa: E402
from adapters.hl7.messages import MessageBuilder  # noqa: E402
from adapters.hl7.reference import charge_with_hl7apy  # noqa: E402
from adapters.hl7.replay import course_messages, export_to  # noqa: E402
from adapters.runtime import Ledger  # noqa: E402
from ledger.course import Course, registration  # noqa: E402
from ledger.service import Actor, parse  # noqa: E402
from schemas.course import LogFraction, RegisterCourse  # noqa: E402

HOME, PARTNER = "AZ-HOME", "PARTNER-RT"
NAMES = ["MÜLLER-LEFÈVRE^ZOË", "D'HONDT^JAN", "PEETERS^AN", "JANSSENS^MARC", "O'NEILL & SONS^ÉMILE"]
START = datetime(2026, 11, 2, 8, 0, tzinfo=timezone(timedelta(hours=1)))
PER_COURSE = 25


def fill(ledger: Ledger, fractions: int, completed_share: float = 0.05) -> int:
    app = ledger.app
    rng = random.Random(7)
    courses = (fractions + PER_COURSE - 1) // PER_COURSE
    at = START
    for c in range(courses):
        at += timedelta(seconds=1)
        meta = {"user": "bench", "centre": HOME, "recorded_at": at, "request_id": None}
        cmd = parse(RegisterCourse, {
            "patient": {"id": f"B{c:06d}", "name": NAMES[c % len(NAMES)], "birth_date": "1960-01-01", "sex": "F"},
            "home_centre": HOME, "assigned_centres": [PARTNER],
            "plan": {"uid": f"1.2.826.0.1.3680043.10.77.{c + 1}", "label": f"Plan {c}", "machine": "HOME-LINAC-1",
                     "fraction_groups": [{"number": 1, "fractions_planned": PER_COURSE, "beams": [
                         {"number": 1, "meterset": "101.5", "beam_type": "DYNAMIC" if c % 2 else "STATIC"},
                         {"number": 2, "meterset": "99.0"}]}]}})
        course = Course(**registration(cmd), meta=meta)
        n = min(PER_COURSE, fractions - c * PER_COURSE)
        for k in range(1, n + 1):
            centre = HOME if rng.random() < 0.6 else PARTNER
            at += timedelta(seconds=1)
            course.deliver(parse(LogFraction, {
                "number": k, "centre": centre, "machine": "HOME-LINAC-1" if centre == HOME else "PARTNER TB2",
                "operator": f"rtt.{k % 7}", "delivered_at": START + timedelta(days=k)}),
                {"user": "bench", "centre": centre, "recorded_at": at, "request_id": None})
        if rng.random() < completed_share:
            course.complete("course done", {**meta, "recorded_at": at + timedelta(seconds=1)})
        app.save(course)
    return courses


def run(fractions: int, sample: int, check_every: int, as_json: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-hl7-"))
    try:
        with Ledger(str(work / "ledger.sqlite3")) as ledger:
            t = time.perf_counter()
            courses = fill(ledger, fractions)
            ledger.fresh()
            setup = time.perf_counter() - t

            builder = MessageBuilder()
            actor = Actor("bench", HOME)
            # The bulk: charges only (what billing gets), then everything (with the summary PDFs).
            t = time.perf_counter()
            charges = export_to(ledger, course_messages(ledger, builder, destinations={"billing"}), work / "charges", actor)
            charges_s = time.perf_counter() - t
            t = time.perf_counter()
            counts = export_to(ledger, course_messages(ledger, builder), work / "out", actor)
            export_s = time.perf_counter() - t
            total = sum(counts.values())

            # Baseline: hl7apy object model, strict, validate(), to_er7(), one charge at a time.
            read = ledger.read
            values, expected = [], []
            for row in read.courses()[: max(1, sample // PER_COURSE + 1)]:
                course = read.course(row["id"])
                plans = {p["uid"]: p for p in course["plans"]}
                for message, f in zip(builder.charges(course), course["fractions"]):
                    values.append(builder.header(course, "DFT", message.control_id, message.at)
                                  | builder.charge_values(course, f, plans))
                    expected.append(message.er7)
            values, expected = values[:sample], expected[:sample]
            t = time.perf_counter()
            built = [charge_with_hl7apy(v) for v in values]
            baseline_s = time.perf_counter() - t
            assert built == expected, "hl7apy and the templates disagree"

            t = time.perf_counter()
            files = sorted((work / "out").rglob("*.hl7"))
            for path in files[::check_every]:
                text = path.read_bytes().decode("utf-8")  # keep the \r segment ends
                validate(text, strict="|MDM^T02^" not in text.split("\r", 1)[0])
            check_s = time.perf_counter() - t
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours = total / export_s
    ours_charges = sum(charges.values()) / charges_s
    theirs = len(values) / baseline_s
    result = {
        "fractions": fractions, "courses": courses, "setup_s": round(setup, 1),
        "charges": sum(charges.values()), "charges_s": round(charges_s, 2), "charges_per_s": round(ours_charges),
        "charges_ratio": round(ours_charges / theirs, 1),
        "messages": total, "by_kind": counts, "export_s": round(export_s, 2),
        "export_msgs_per_s": round(ours), "hl7apy_sample": len(values),
        "hl7apy_msgs_per_s": round(theirs, 1), "hl7apy_ms_per_msg": round(1000 * baseline_s / len(values), 2),
        "ratio": round(ours / theirs, 1), "revalidated": len(files[::check_every]), "revalidate_s": round(check_s, 1),
    }
    if as_json:
        print(json.dumps(result))
    else:
        print(f"log: {fractions} fractions in {courses} courses (set-up {setup:.1f} s)")
        print(f"export hl7, charges (billing): {sum(charges.values())} DFT^P03 in {charges_s:.2f} s = "
              f"{ours_charges:,.0f} messages/s")
        print(f"export hl7, everything: {total} messages ({', '.join(f'{n} {k}' for k, n in sorted(counts.items()))}) "
              f"in {export_s:.2f} s = {ours:,.0f} messages/s (read model -> validated templates -> files)")
        print(f"hl7apy build+validate+serialise, strict, per message: {theirs:,.1f} messages/s "
              f"({1000 * baseline_s / len(values):.2f} ms each, {len(values)} charges, same bytes)")
        print(f"ratio, charges: {ours_charges / theirs:,.1f}x; everything (incl. summary PDFs): "
              f"{ours / theirs:,.1f}x (target >= 10x)")
        print(f"re-validated {len(files[::check_every])} exported messages with hl7apy: all valid ({check_s:.1f} s)")
    return result


@click.command("hl7")
@click.option("--fractions", type=int, default=50000, show_default=True)
@click.option("--sample", type=int, default=300, show_default=True, help="charges built by the hl7apy baseline")
@click.option("--check-every", type=int, default=100, show_default=True, help="re-validate every Nth exported message")
@click.option("--json", "as_json", is_flag=True)
def main(fractions: int, sample: int, check_every: int, as_json: bool) -> None:
    """HL7 export rate against hl7apy's build-validate-serialise per message."""
    run(fractions, sample, check_every, as_json)


if __name__ == "__main__":
    main()
