"""Benchmark: RT Beams Treatment Records exported per second from a log of N fractions, next
to pydicom's own rate of writing an already-built record (the ceiling), and the export's
peak memory at 5k and 50k fractions (each export runs in its own process, so its peak RSS is
the export's own).

    python -m tools.bench_dicom [--fractions 50000] [--small 5000] [--json]
"""

from __future__ import annotations

import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

FRACTIONS_PER_COURSE = 25
START = datetime(2026, 11, 2, 8, 0, tzinfo=timezone(timedelta(hours=1)))


def build_log(db: Path, fractions: int) -> None:
    """Courses of 25 fractions (2 beams, VMAT), each saved in one go: the log a long outage leaves."""
    from adapters.dicom.plans import read_plan
    from adapters.runtime import Ledger
    from ledger.course import Course, registration
    from schemas.course import LogFraction, RegisterCourse
    from tools.dicom_samples import sample_plan

    with Ledger(str(db)) as ledger:
        app = ledger.app
        at = datetime(2026, 12, 1, tzinfo=timezone.utc)
        for c in range((fractions + FRACTIONS_PER_COURSE - 1) // FRACTIONS_PER_COURSE):
            patient, plan = read_plan(sample_plan(f"BENCH-{c:06d}", label=f"VMAT {c}", arc=True, control_points=91,
                                                  groups=[(FRACTIONS_PER_COURSE, ["250.5", "248.1"])]), "HOME")
            meta = {"user": "bench", "centre": "HOME", "recorded_at": at, "request_id": None}
            course = Course(**registration(RegisterCourse(patient=patient, home_centre="HOME", plan=plan)), meta=meta)
            for k in range(1, min(FRACTIONS_PER_COURSE, fractions - c * FRACTIONS_PER_COURSE) + 1):
                cmd = LogFraction(number=k, centre="HOME", machine="LINAC-1", operator="rtt.bench",
                                  delivered_at=START + timedelta(days=k, minutes=c % 600))
                course.deliver(cmd, meta | {"recorded_at": at + timedelta(seconds=c * 100 + k)})
            app.save(course)
        ledger.fresh()


def export_child(db: Path) -> None:
    """Run in a fresh process: export every record, print rate and peak RSS as JSON."""
    from adapters.dicom.export import export_all
    from adapters.runtime import Ledger

    with Ledger(str(db)) as ledger, tempfile.TemporaryDirectory() as out:
        read = ledger.fresh()
        t0 = time.perf_counter()
        records = sum(1 for item in export_all(ledger.app, read, Path(out), kinds=("record",)))
        seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"records": records, "seconds": seconds, "peak_rss_mib": peak_kib / 1024}))


def pydicom_ceiling(db: Path, samples: int = 2000) -> float:
    """Records per second pydicom itself writes when the dataset is already built."""
    from adapters.dicom.export import encode
    from adapters.dicom.records import CourseView, beams_record
    from adapters.runtime import Ledger

    with Ledger(str(db)) as ledger:
        course_id = ledger.fresh().courses()[0]["id"]
        view = CourseView.of(ledger.app.get_course(course_id))
        ds = beams_record(view, view.records[0])
        encode(ds)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        for i in range(samples):
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
            (Path(out) / f"{i}.dcm").write_bytes(buffer.getvalue())
        return samples / (time.perf_counter() - t0)


def measure_export(db: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "tools.bench_dicom", "--child-export", str(db)],
                          capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@click.command()
@click.option("--fractions", "big", type=int, default=50000, show_default=True)
@click.option("--small", type=int, default=5000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--child-export", type=click.Path(), default=None, hidden=True)
def main(big: int, small: int, as_json: bool, child_export: str | None) -> None:
    if child_export:
        export_child(Path(child_export))
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (small, big):
            db = Path(tmp) / f"log-{n}.sqlite3"
            t0 = time.perf_counter()
            build_log(db, n)
            built = time.perf_counter() - t0
            run = measure_export(db)
            results[n] = run | {"build_seconds": built}
        ceiling = pydicom_ceiling(Path(tmp) / f"log-{small}.sqlite3")
    rate = results[big]["records"] / results[big]["seconds"]
    report = {
        "fractions": big,
        "records_exported": results[big]["records"],
        "export_records_per_second": round(rate, 1),
        "pydicom_write_records_per_second": round(ceiling, 1),
        "ratio_to_pydicom": round(rate / ceiling, 3),
        "peak_rss_mib": {str(n): round(r["peak_rss_mib"], 1) for n, r in results.items()},
        "export_seconds": {str(n): round(r["seconds"], 1) for n, r in results.items()},
    }
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"export: {report['records_exported']} RT Beams Treatment Records from a log of {big} fractions "
               f"in {results[big]['seconds']:.1f} s = {rate:.0f} records/s")
    click.echo(f"pydicom writing an already-built record: {ceiling:.0f} records/s")
    click.echo(f"ratio: {rate / ceiling:.2f} of pydicom's own write rate")
    for n, r in results.items():
        click.echo(f"peak memory of the export at {n} fractions: {r['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
