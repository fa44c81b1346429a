"""Benchmark (issue 7): reconciling a year of a large network against a restored OIS that lost
5% of its RT Beams Treatment Records; time and peak memory, and how both grow with the log.

    fraction-ledger bench recovery [--fractions 130000] [--small 13000] [--json]

For each size a synthetic year (courses of 20 fractions spread over 52 weeks, 8 hospitals,
every tenth course finished at a partner) is logged through `FractionLedger.register_course`
and `log_fraction`, one durable command at a time, with the ledger's clock following the
treatment days. The OIS folder is the ledger's own export (`export_all`, records only) with 5%
of the files removed (fixed seed). `adapters.recovery.run` then runs in a child process of its
own, so its peak RSS is the reconciliation's alone, and must find exactly the removed records
as missing in the OIS and nothing else. The smaller size is the baseline the growth is
measured against.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

FRACTIONS_PER_COURSE = 20
HOSPITALS = [f"HOSP-{i}" for i in range(1, 9)]
TZ = ZoneInfo("Europe/Brussels")  # a real year: the records cross both DST changes
FIRST_MONDAY = date(2026, 1, 5)
WORKING_DAYS = 52 * 5
MISSING_SHARE = 0.05
SEED = 7


class Clock:
    """The ledger's clock in the benchmark: each fraction is recorded shortly after delivery."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def working_day(index: int) -> date:
    weeks, weekday = divmod(index, 5)
    return FIRST_MONDAY + timedelta(weeks=weeks, days=weekday)


def course_data(c: int) -> dict:
    home = HOSPITALS[c % len(HOSPITALS)]
    partner = HOSPITALS[(c + 1) % len(HOSPITALS)]
    return {
        "patient": {"id": f"NET-{c:06d}", "name": f"NETWORK^PATIENT{c}", "sex": "FM"[c % 2]},
        "home_centre": home,
        "plan": {"uid": f"1.2.826.0.1.3680043.10.543.{c + 1}", "label": f"Course {c}", "machine": f"{home}-L1",
                 "fraction_groups": [{"number": 1, "fractions_planned": FRACTIONS_PER_COURSE, "beams": [
                     {"number": 1, "meterset": "132.4"}, {"number": 2, "meterset": "118.9"}]}]},
        "triage": c % 5 + 1,
        "assigned_centres": [partner],
    }


def schedule(courses: int) -> list[tuple[datetime, int, int]]:
    """(delivered at, course, fraction number) for the whole year, in the order they happen."""
    span = WORKING_DAYS - FRACTIONS_PER_COURSE
    out = []
    for c in range(courses):
        start = c * span // courses
        slot = timedelta(hours=7, minutes=30 + 12 * (c % 48))
        for k in range(1, FRACTIONS_PER_COURSE + 1):
            day = working_day(start + k - 1)
            out.append((datetime(day.year, day.month, day.day, tzinfo=TZ) + slot, c, k))
    out.sort()
    return out


def build_ledger(db: Path, courses: int) -> float:
    """Log the year through the application service; returns the seconds it took."""
    from adapters.runtime import Ledger
    from ledger.course import course_id_for
    from ledger.service import Actor

    clock = Clock(datetime(2025, 12, 29, 9, 0, tzinfo=TZ))
    t0 = time.perf_counter()
    with Ledger(str(db), clock=clock) as ledger:
        app = ledger.app
        ids = []
        for c in range(courses):
            data = course_data(c)
            ids.append(app.register_course(data, Actor("physicist", data["home_centre"]))["id"])
            assert ids[-1] == str(course_id_for(data["home_centre"], data["patient"]["id"], data["plan"]["uid"]))
        for at, c, k in schedule(courses):
            data = course_data(c)
            centre = data["assigned_centres"][0] if c % 10 == 9 and k > 10 else data["home_centre"]
            clock.now = at + timedelta(minutes=10)
            app.log_fraction(ids[c], {"number": k, "centre": centre, "machine": f"{centre}-L{c % 2 + 1}",
                                      "operator": f"rtt.{centre.lower()}", "delivered_at": at},
                             Actor(f"rtt.{centre.lower()}", centre))
        ledger.fresh()
    return time.perf_counter() - t0


def build_ois(db: Path, ois: Path) -> tuple[int, list[str], float]:
    """The restored OIS: the ledger's exported records minus 5% of the files (fixed seed).
    Returns the files left, the record ids whose file was removed, and the export's seconds."""
    from adapters.dicom.export import export_course
    from adapters.dicom.records import CourseView, beams_record_uid
    from adapters.runtime import Ledger

    t0 = time.perf_counter()
    exported: list[tuple[Path, str]] = []
    with Ledger(str(db)) as ledger:
        # What `export_all` does, course by course, keeping which record each file holds.
        for course in ledger.fresh().courses():
            view = CourseView.of(ledger.app.get_course(course["id"]))
            for record, item in zip(view.active(), export_course(ledger.app, view, ois, kinds=("record",)), strict=True):
                assert item.sop_instance_uid == beams_record_uid(record)
                exported.append((item.path, record.record_id))
    seconds = time.perf_counter() - t0
    removed = random.Random(SEED).sample(range(len(exported)), max(1, round(len(exported) * MISSING_SHARE)))
    for i in removed:
        exported[i][0].unlink()
    return len(exported) - len(removed), sorted(exported[i][1] for i in removed), seconds


def rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_mib() -> float:
    """This process's peak resident memory since it started (VmHWM). Not getrusage's ru_maxrss:
    Linux carries that over from the parent's size at the fork, so a child of a large parent
    would report the parent's size as its own peak."""
    return rss_mib("VmHWM")


def reconcile_child(db: Path, ois: Path, removed_file: Path) -> None:
    """In a fresh process: run the reconciliation once; print time, phases, memory, check."""
    from adapters.recovery import run
    from adapters.runtime import Ledger

    removed = set(json.loads(removed_file.read_text()))
    with Ledger(str(db)) as ledger:
        ledger.fresh()  # already caught up by the builder: this only opens the tables
        base = rss_mib()
        marks: list[float] = []

        def progress() -> None:  # one call per OIS file: first and last mark the reading phase
            now = time.perf_counter()
            if not marks:
                marks.append(now)
            marks[1:] = [now]

        t0 = time.perf_counter()
        result = run(ledger, [ois], TZ, progress=progress)
        seconds = time.perf_counter() - t0
    peak = peak_mib()
    found = [ref for item in result["missing_in_ois"] for ref in item["refs"]]
    t = result["totals"]
    print(json.dumps({
        "fractions": t["ledger_fractions"], "files": t["files_read"], "seconds": seconds,
        "first_file_after": marks[0] - t0 if marks else None, "last_file_after": marks[-1] - t0 if marks else None,
        "peak_rss_mib": peak, "base_rss_mib": base,
        "missing_in_ois": t["missing_in_ois"], "removed": len(removed),
        "missing_equals_removed": len(found) == len(removed) and set(found) == removed,
        "unknown_to_ledger": t["unknown_to_ledger"], "conflicts": t["conflicts"],
        "unreadable_files": t["unreadable_files"],
    }))


def measure(db: Path, ois: Path, removed: list[str], work: Path) -> dict:
    removed_file = work / "removed.json"
    removed_file.write_text(json.dumps(removed))
    proc = subprocess.run([sys.executable, "-m", "tools.bench_recovery", "--child", str(db), str(ois),
                           str(removed_file)], check=False, capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        raise click.ClickException(f"reconciliation child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def one_size(fractions: int, tmp: Path, log) -> dict:
    courses = max(1, fractions // FRACTIONS_PER_COURSE)
    work = tmp / f"n{courses}"
    db = work / "ledger.sqlite3"
    if (work / "removed.json").exists():  # kept from an earlier run (--keep): measured again as it is
        built = exported = 0.0
        removed = json.loads((work / "removed.json").read_text())
        log(f"{courses * FRACTIONS_PER_COURSE} fractions and their OIS kept in {work}")
    else:
        work.mkdir()
        built = build_ledger(db, courses)
        log(f"{courses * FRACTIONS_PER_COURSE} fractions logged in {built:.0f} s")
        files, removed, exported = build_ois(db, work / "ois")
        log(f"OIS: {files + len(removed)} records exported in {exported:.0f} s, {len(removed)} removed")
    run = measure(db, work / "ois", removed, work)
    log(f"reconciled in {run['seconds']:.1f} s, peak {run['peak_rss_mib']:.0f} MiB")
    return run | {"courses": courses, "build_seconds": built, "export_seconds": exported}


def table(rows: list[dict]) -> str:
    lines = [("| fractions | courses | OIS files | missing found / removed | time s | OIS records/s | reading files s "
              "| peak RSS MiB | RSS before run MiB |"),
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        reading = (r["last_file_after"] - r["first_file_after"]) if r["first_file_after"] is not None else 0
        lines.append(f"| {r['fractions']:,} | {r['courses']:,} | {r['files']:,} | {r['missing_in_ois']:,} / "
                     f"{r['removed']:,} {'exact' if r['missing_equals_removed'] else 'WRONG'} | {r['seconds']:.1f} | "
                     f"{r['files'] / r['seconds']:,.0f} | {reading:.1f} | {r['peak_rss_mib']:.0f} | "
                     f"{r['base_rss_mib']:.0f} |")
    return "\n".join(lines)


@click.command()
@click.option("--fractions", "big", type=int, default=130000, show_default=True)
@click.option("--small", type=int, default=13000, show_default=True)
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build the ledgers and OIS folders in this folder and keep them; a later run with the same "
                   "folder and sizes measures them again without building.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--child", nargs=3, type=click.Path(), default=None, hidden=True)
def main(big: int, small: int, keep: Path | None, as_json: bool, child: tuple[str, str, str] | None) -> None:
    """Reconcile a year of a network against an OIS missing 5% of its records: time, memory, growth."""
    if child:
        reconcile_child(*(Path(p) for p in child))
        return
    log = (lambda s: click.echo(s, err=True)) if as_json else click.echo
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        rows = [one_size(n, keep, log) for n in (small, big)]
    else:
        with tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp:
            rows = [one_size(n, Path(tmp), log) for n in (small, big)]
    a, b = rows
    report = {
        "sizes": rows,
        "growth": {
            "fractions": b["fractions"] / a["fractions"],
            "time": b["seconds"] / a["seconds"],
            "peak_rss": b["peak_rss_mib"] / a["peak_rss_mib"],
            "peak_rss_above_base": (b["peak_rss_mib"] - b["base_rss_mib"]) / max(a["peak_rss_mib"] - a["base_rss_mib"], 1e-9),
        },
        "exact": all(r["missing_equals_removed"] and not (r["unknown_to_ledger"] or r["conflicts"] or r["unreadable_files"])
                     for r in rows),
    }
    if as_json:
        click.echo(json.dumps(report))
    else:
        g = report["growth"]
        click.echo(table(rows))
        click.echo(f"growth {b['fractions']:,} / {a['fractions']:,} fractions (x{g['fractions']:.1f}): "
                   f"time x{g['time']:.2f}, peak RSS x{g['peak_rss']:.2f} "
                   f"(above the process's RSS before the run: x{g['peak_rss_above_base']:.2f})")
        click.echo("every removed record found missing, nothing else reported: "
                   + ("yes" if report["exact"] else "NO"))
    if not report["exact"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
