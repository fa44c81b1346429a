"""Benchmark (issue 20, point 6): how fast the reconciliation reads the OIS's files, next to
`pydicom.dcmread` of the same files, measured in turns in one process.

    fraction-ledger bench reconcile-read [--files 2000] [--rounds 7] [--ois DIR] [--json]

The OIS folder is the ledger's own export of a synthetic network's records (as in `bench
recovery`: `build_ledger`, then `build_ois`, which removes 5% of them), or the folder given with
`--ois`. Each round reads every file twice, once with the reconciliation's reader
(`adapters.recovery.ois_side`: the checks, the facts, a `Session` per record) and once with a
bare `pydicom.dcmread` (which neither checks the file's structure nor decodes a value), in
alternating order, after one warm-up round (the files are then in the page cache for both).
Printed: each side's files per second per round, and the ratio reader / dcmread: its median is
the figure to quote (the machine is shared and noisy).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import click

from tools.bench_recovery import FRACTIONS_PER_COURSE, TZ, build_ledger, build_ois


def timed(fn, files: list[Path]) -> float:
    t0 = time.perf_counter()
    fn(files)
    return len(files) / (time.perf_counter() - t0)


def measure(ois: Path, rounds: int) -> dict:
    import pydicom

    from adapters.dicom import iter_files
    from adapters.recovery import ois_side

    files = list(iter_files([ois]))

    def reconcile_read(paths: list[Path]) -> None:
        sessions, problems, read = ois_side(paths, TZ)
        assert read == len(paths) and not problems, problems[:3]

    def dcmread(paths: list[Path]) -> None:
        for path in paths:
            pydicom.dcmread(path)

    reconcile_read(files), dcmread(files)  # warm-up: imports, caches, the page cache
    rows = []
    for r in range(rounds):
        if r % 2:
            b = timed(dcmread, files)
            a = timed(reconcile_read, files)
        else:
            a = timed(reconcile_read, files)
            b = timed(dcmread, files)
        rows.append({"reconcile_files_per_s": a, "dcmread_files_per_s": b, "ratio": a / b})
    return {
        "files": len(files),
        "rounds": rows,
        "median_reconcile_files_per_s": statistics.median(r["reconcile_files_per_s"] for r in rows),
        "median_dcmread_files_per_s": statistics.median(r["dcmread_files_per_s"] for r in rows),
        "median_ratio": statistics.median(r["ratio"] for r in rows),
    }


@click.command()
@click.option("--files", "n", type=int, default=2000, show_default=True, help="Records exported (5% are removed).")
@click.option("--rounds", type=int, default=7, show_default=True)
@click.option("--ois", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Read this folder of RT records instead of making one.")
@click.option("--json", "as_json", is_flag=True)
def main(n: int, rounds: int, ois: Path | None, as_json: bool) -> None:
    """The reconciliation's OIS file rate next to pydicom.dcmread of the same files, in turns."""
    log = (lambda s: click.echo(s, err=True)) if as_json else click.echo
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-read-") as tmp:
        if ois is None:
            work = Path(tmp)
            courses = max(1, n // FRACTIONS_PER_COURSE)
            built = build_ledger(work / "ledger.sqlite3", courses)
            files, removed, exported = build_ois(work / "ledger.sqlite3", work / "ois")
            log(f"{courses * FRACTIONS_PER_COURSE} fractions logged in {built:.0f} s, exported in {exported:.0f} s; "
                f"OIS of {files} files")
            ois = work / "ois"
        report = measure(ois, rounds)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo("| round | reconcile reader files/s | pydicom.dcmread files/s | ratio |")
    click.echo("|---|---|---|---|")
    for k, r in enumerate(report["rounds"], 1):
        click.echo(f"| {k} | {r['reconcile_files_per_s']:,.0f} | {r['dcmread_files_per_s']:,.0f} | {r['ratio']:.2f} |")
    click.echo(f"{report['files']:,} files; median: reconcile reader {report['median_reconcile_files_per_s']:,.0f} "
               f"files/s, pydicom.dcmread {report['median_dcmread_files_per_s']:,.0f} files/s, ratio "
               f"{report['median_ratio']:.2f}")


if __name__ == "__main__":
    main()
