"""Benchmark: RT records received per second by the ledger's DICOM listener, over one association
and over 4 at once, next to dcmtk's storescp receiving the same files in the same run (the
ceiling: it only writes them to disk), as ratios; and the lag from a C-STORE's Success to the
course page showing the fraction.

    fraction-ledger bench listen [--records 40] [--lag-records 20] [--json]

Everything listens on 127.0.0.1. storescp cannot bind one address, so it is reached through a
loopback socket that hands each association to `storescp --inetd`.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from pydicom import dcmread
from pydicom.uid import RTBeamsTreatmentRecordStorage
from pynetdicom import AE

from tools.storescp import LoopbackStorescp

HOME, AET = "AZ-HOME", "HOME-OIS"
CONCURRENT = 4


def make_course(folder: Path, k: int, sessions: int) -> tuple[Path, list[Path]]:
    from tools.dicom_samples import sample_plan, write_plan
    from tools.partner_samples import scratch_records

    folder.mkdir(parents=True)
    plan = write_plan(sample_plan(f"BENCH-{k:03d}", "BENCH^PATIENT", f"VMAT {k}", arc=True, control_points=91,
                                  groups=[(sessions + 5, ["250.5", "248.1"])], machine="LINAC-1"), folder / "plan.dcm")
    first = (datetime.now(ZoneInfo("Europe/Brussels")) - timedelta(days=sessions + 2)).replace(hour=9, minute=0)
    days = [first + timedelta(days=d) for d in range(sessions)]
    return plan, sorted(scratch_records(folder / "records", plan, HOME, "LINAC-1", days))


def send(port: int, called: str, datasets: list) -> int:
    """C-STORE the datasets on one association; how many were answered Success."""
    ae = AE(ae_title=AET)
    ae.add_requested_context(RTBeamsTreatmentRecordStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        raise click.ClickException(f"{called} on port {port} refused the association")
    # Without it the sender's small command PDU waits on the receiver's delayed ACK (~40 ms an object),
    # and both receivers would measure the same TCP timer instead of their own work.
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ok = 0
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            ok += int(status is not None and "Status" in status and int(status.Status) == 0)
    finally:
        assoc.release()
    return ok


def rate(port: int, called: str, batches: list[list[Path]]) -> float:
    """Objects per second over len(batches) associations at once."""
    counts: list[int] = []
    batches = [[dcmread(p) for p in b] for b in batches]  # read before the clock starts
    threads = [threading.Thread(target=lambda b=b: counts.append(send(port, called, b))) for b in batches]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    total = sum(len(b) for b in batches)
    if sum(counts) != total:
        raise click.ClickException(f"{called}: {sum(counts)} of {total} objects answered Success")
    return total / elapsed


def measure(records: int, lag_records: int) -> dict:
    from litestar.testing import TestClient

    from adapters.dicom.listen import StorageSCP
    from adapters.dicom.plans import import_plan_file
    from adapters.http import create_app
    from adapters.runtime import Ledger
    from ledger.accounts import add_account, hash_token
    from ledger.service import Actor

    with tempfile.TemporaryDirectory(prefix="bench-listen-") as tmp_text:
        tmp = Path(tmp_text)
        courses = [make_course(tmp / f"c{k}", k, records) for k in range(1 + CONCURRENT)]
        lag_plan, lag_files = make_course(tmp / "lag", 99, lag_records)
        os.environ["FRACTION_LEDGER_READ_DB"] = str(tmp / "read.sqlite3")
        with Ledger(str(tmp / "ledger.sqlite3")) as ledger:
            physicist = Actor("physicist", HOME)
            ids = {}
            for plan, _ in [*courses, (lag_plan, lag_files)]:
                ids[plan] = import_plan_file(ledger.app, plan, physicist, HOME)["course_id"]
            scp = StorageSCP(ledger, {AET: HOME}, aet="LEDGER", port=0)
            scp.start()
            try:
                storescp = LoopbackStorescp(tmp / "storescp", aet="STORESCP")
            except FileNotFoundError as exc:
                raise click.ClickException(str(exc)) from None
            try:
                one = [courses[0][1]]
                many = [files for _, files in courses[1:]]
                figures = {
                    "ledger_1": rate(scp.port, "LEDGER", one),
                    "storescp_1": rate(storescp.port, "STORESCP", one),
                    "ledger_4": rate(scp.port, "LEDGER", many),
                    "storescp_4": rate(storescp.port, "STORESCP", many),
                }
                # Lag: Success answered -> the course page shows the fraction (as a signed-in RTT sees it).
                add_account(ledger.app, {"name": "bench.rtt", "role": "rtt", "centre": HOME},
                            hash_token("bench-token"), Actor("setup", "-"))
                lags = []
                with TestClient(create_app(ledger)) as client:
                    headers = {"Authorization": "Bearer bench-token"}
                    course_id = ids[lag_plan]
                    for k, path in enumerate(lag_files, start=1):
                        send(scp.port, "LEDGER", [dcmread(path)])
                        answered = time.perf_counter()
                        while True:
                            shown = client.get(f"/api/courses/{course_id}", headers=headers).json()
                            if shown["fractions_delivered"] == k:
                                break
                        lags.append((time.perf_counter() - answered) * 1000)
            finally:
                scp.stop()
                storescp.close()
    return {
        "records_per_association": records,
        "one_association_per_s": round(figures["ledger_1"], 1),
        "storescp_one_association_per_s": round(figures["storescp_1"], 1),
        "ratio_one": round(figures["ledger_1"] / figures["storescp_1"], 3),
        "four_associations_per_s": round(figures["ledger_4"], 1),
        "storescp_four_associations_per_s": round(figures["storescp_4"], 1),
        "ratio_four": round(figures["ledger_4"] / figures["storescp_4"], 3),
        "lag_ms_median": round(statistics.median(lags), 1),
        "lag_ms_max": round(max(lags), 1),
    }


@click.command()
@click.option("--records", default=40, show_default=True, help="Records per association.")
@click.option("--lag-records", default=20, show_default=True, help="Records sent one by one for the lag.")
@click.option("--json", "as_json", is_flag=True)
def main(records: int, lag_records: int, as_json: bool) -> None:
    import logging

    for name in ("pynetdicom", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    result = measure(records, lag_records)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"one association:   {result['one_association_per_s']:>8} records/s  "
               f"(storescp {result['storescp_one_association_per_s']}/s, ratio {result['ratio_one']})")
    click.echo(f"4 associations:    {result['four_associations_per_s']:>8} records/s  "
               f"(storescp {result['storescp_four_associations_per_s']}/s, ratio {result['ratio_four']})")
    click.echo(f"Success -> course shows it: median {result['lag_ms_median']} ms, max {result['lag_ms_max']} ms")
