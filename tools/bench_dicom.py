"""Benchmark: RT Beams Treatment Records exported per second from a log of N fractions, next
to pydicom's own rate of writing an already-built record (the ceiling), and the export's
peak memory at 5k and 50k fractions (each export runs in its own process, so its peak RSS is
the export's own).

The import side (issue 3: "memory stays flat as the number of files grows"): the peak memory
of `fraction-ledger import records DIR`, run as the real command in a child process, over a
folder of 1,000 and of 10,000 exported records, into a ledger that holds their courses.

    fraction-ledger bench dicom [--part all|export|import] [--fractions 50000] [--small 5000]
                                [--import-files 10000] [--import-small 1000] [--json]
"""

from __future__ import annotations

import io
import json
import os
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


def build_log(db: Path, fractions: int, deliver: bool = True) -> None:
    """Courses of 25 fractions (2 beams, VMAT), each saved in one go: the log a long outage leaves.
    Without `deliver`, the same courses with no fraction yet (what an import of records needs)."""
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
            count = min(FRACTIONS_PER_COURSE, fractions - c * FRACTIONS_PER_COURSE) if deliver else 0
            for k in range(1, count + 1):
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


def measure_import(files: int, tmp: Path) -> dict:
    """`fraction-ledger import records DIR` over `files` exported records, as a child process:
    its peak RSS (from the kernel, via wait4), its time, and the progress line it printed."""
    from adapters.dicom.export import export_all
    from adapters.runtime import Ledger

    source, target, folder = tmp / f"source-{files}.sqlite3", tmp / f"target-{files}.sqlite3", tmp / f"records-{files}"
    build_log(source, files)
    with Ledger(str(source)) as ledger:
        exported = sum(1 for _ in export_all(ledger.app, ledger.fresh(), folder, kinds=("record",)))
    build_log(target, files, deliver=False)  # the same courses (same ids), no fraction yet
    stderr = tmp / f"import-{files}.stderr"
    command = [sys.executable, "-m", "tools.cli", "--db", str(target), "--user", "physicist", "import", "records",
               str(folder), "--utc-offset", "+01:00"]
    with stderr.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this child alone
        seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines = stderr.read_text(errors="replace").strip().splitlines()
    if proc.returncode:
        raise click.ClickException(f"import records failed ({proc.returncode}):\n" + "\n".join(lines[-20:]))
    with Ledger(str(target)) as ledger:
        logged = ledger.fresh().db["fractions"].count
    return {"files": exported, "fractions_logged": logged, "seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024,
            "progress": [line for line in lines if line.startswith("records")][-1:] or None,
            "summary": lines[-1] if lines else ""}


def import_report(small: int, big: int, tmp: Path) -> dict:
    runs = {n: measure_import(n, tmp) for n in (small, big)}
    a, b = runs[small], runs[big]
    return {"runs": {str(n): r for n, r in runs.items()},
            "files_ratio": b["files"] / a["files"], "peak_rss_ratio": b["peak_rss_mib"] / a["peak_rss_mib"]}


@click.command()
@click.option("--fractions", "big", type=int, default=50000, show_default=True)
@click.option("--small", type=int, default=5000, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--import-files", "import_big", type=int, default=10000, show_default=True,
              help="Record files in the larger import folder.")
@click.option("--import-small", type=int, default=1000, show_default=True, help="Record files in the smaller one.")
@click.option("--part", type=click.Choice(["all", "export", "import"]), default="all", show_default=True)
@click.option("--child-export", type=click.Path(), default=None, hidden=True)
def main(big: int, small: int, as_json: bool, import_big: int, import_small: int, part: str,
         child_export: str | None) -> None:
    """Export rate and memory; import memory at two folder sizes."""
    if child_export:
        export_child(Path(child_export))
        return
    report: dict = {}
    if part in ("all", "export"):
        report = export_report(big, small, as_json)
    if part in ("all", "import"):
        with tempfile.TemporaryDirectory() as tmp:
            imports = import_report(import_small, import_big, Path(tmp))
        report["import_records"] = imports
        if not as_json:
            for r in imports["runs"].values():
                click.echo(f"import records: {r['files']} files -> {r['fractions_logged']} fractions in "
                           f"{r['seconds']:.1f} s, peak memory {r['peak_rss_mib']:.0f} MiB")
                click.echo(f"  progress on stderr: {r['progress'][0] if r['progress'] else 'NONE'}")
            click.echo(f"import records: x{imports['files_ratio']:.0f} files -> peak memory "
                       f"x{imports['peak_rss_ratio']:.2f}")
    if as_json:
        click.echo(json.dumps(report))


def export_report(big: int, small: int, as_json: bool) -> dict:
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
        return report
    click.echo(f"export: {report['records_exported']} RT Beams Treatment Records from a log of {big} fractions "
               f"in {results[big]['seconds']:.1f} s = {rate:.0f} records/s")
    click.echo(f"pydicom writing an already-built record: {ceiling:.0f} records/s")
    click.echo(f"ratio: {rate / ceiling:.2f} of pydicom's own write rate")
    for n, r in results.items():
        click.echo(f"peak memory of the export at {n} fractions: {r['peak_rss_mib']:.0f} MiB")
    return report


if __name__ == "__main__":
    main()
