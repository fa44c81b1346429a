"""The listener killed with SIGKILL in the middle of a transfer: every object it answered with
Success is in the ledger after a restart, and nothing is there twice when the sender sends all
again (as a sender does after a broken association)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydicom import dcmread
from pynetdicom import AE
from pydicom.uid import RTBeamsTreatmentRecordStorage, RTPlanStorage

from adapters.runtime import Ledger
from tests.conftest import ROOT, free_port
from tests.test_dicom_listen import wait_for_port
from tools.dicom_samples import sample_plan, write_plan
from tools.partner_samples import scratch_records

HOME, OIS_AET = "AZ-HOME", "HOME-OIS"
FIRST_DAY = datetime(2027, 2, 1, 9, 0, tzinfo=ZoneInfo("Europe/Brussels"))
SESSIONS = 24
KILL_AFTER = 6  # successes before the kill


def start_listener(tmp: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FRACTION_LEDGER_READ_DB": str(tmp / "read.sqlite3")}
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "--db", str(tmp / "l.sqlite3"), "listen",
                             "--port", str(port), "--aet", "LEDGER", "--allow", f"{OIS_AET}={HOME}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
    wait_for_port(port, proc)
    return proc


def send(port: int, files: list[Path], on_success=None) -> dict[str, int]:
    """C-STORE each file on one association; the status the sender got per SOP Instance UID
    (absent when the association broke first)."""
    ae = AE(ae_title=OIS_AET)
    for name in ("acse_timeout", "dimse_timeout", "network_timeout"):
        setattr(ae, name, 20)
    ae.add_requested_context(RTPlanStorage)
    ae.add_requested_context(RTBeamsTreatmentRecordStorage)
    statuses: dict[str, int] = {}
    assoc = ae.associate("127.0.0.1", port, ae_title="LEDGER")
    assert assoc.is_established
    try:
        for path in files:
            if not assoc.is_established:
                break
            status = assoc.send_c_store(dcmread(path))
            if status is not None and "Status" in status:
                statuses[str(dcmread(path).SOPInstanceUID)] = int(status.Status)
                if int(status.Status) == 0 and on_success:
                    on_success(len([s for s in statuses.values() if s == 0]))
    finally:
        if assoc.is_established:
            assoc.release()
    return statuses


@pytest.mark.slow
def test_what_was_answered_success_survives_a_sigkill_and_nothing_is_there_twice(tmp_path):
    folder = tmp_path / "ois"
    folder.mkdir()
    plan = write_plan(sample_plan("HOME-99", "PEETERS^AN", "Prostate 60/20", groups=[(30, ["180.5", "175.2"])],
                                  machine="HOME-LINAC-1"), folder / "plan.dcm")
    days = [FIRST_DAY + timedelta(days=k) for k in range(SESSIONS)]
    records = sorted(scratch_records(folder / "records", plan, HOME, "HOME-LINAC-1", days))
    port = free_port()
    proc = start_listener(tmp_path, port)
    try:
        def kill(successes: int) -> None:
            if successes == KILL_AFTER:  # the next object is on its way when the process dies
                proc.send_signal(signal.SIGKILL)

        first = send(port, [plan, *records], on_success=kill)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    acknowledged = {uid for uid, code in first.items() if code == 0}
    assert len(acknowledged) >= KILL_AFTER and len(first) < SESSIONS + 1  # it died in the middle

    with Ledger(str(tmp_path / "l.sqlite3")) as ledger:  # what the restarted ledger holds
        held = {uid.split("/")[0] for (uid,) in ledger.fresh().db.execute(
            "SELECT source_uid FROM fractions WHERE source_uid IS NOT NULL")}
        plans = [row[0] for row in ledger.fresh().db.execute("SELECT plan_uid FROM courses")]
    record_uids = acknowledged - {str(dcmread(plan).SOPInstanceUID)}
    assert record_uids <= held  # every Success answered is durable
    assert plans == [str(dcmread(plan).SOPInstanceUID)]

    proc = start_listener(tmp_path, port)  # restarted; the sender sends everything again
    try:
        again = send(port, [plan, *records])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert set(again.values()) == {0}
    with Ledger(str(tmp_path / "l.sqlite3")) as ledger:
        rows = ledger.fresh().db.execute(
            "SELECT grp, number, COUNT(*) FROM fractions WHERE voided = 0 GROUP BY grp, number").fetchall()
        delivered = ledger.fresh().db.execute("SELECT fractions_delivered FROM courses").fetchone()[0]
    assert len(rows) == SESSIONS and all(n == 1 for _, _, n in rows)  # each fraction once
    assert delivered == SESSIONS
