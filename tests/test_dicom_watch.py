"""`fraction-ledger watch`: each new complete file of a watch folder imported once; what the ledger
refused moved aside with its reason; a file still being written waits."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydicom import dcmread

from adapters.dicom.watch import Watcher
from adapters.runtime import Ledger
from tests.conftest import Clock, cli
from tools.dicom_samples import sample_plan, write_plan
from tools.partner_samples import scratch_records

HOME = "AZ-HOME"
FIRST_DAY = datetime(2027, 3, 1, 9, 0, tzinfo=ZoneInfo("Europe/Brussels"))


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    with Ledger(str(tmp_path / "ledger.sqlite3"), clock=Clock()) as opened:
        yield opened


class Ticks:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def files(folder: Path, patient: str, sessions: int) -> tuple[Path, list[Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    plan = write_plan(sample_plan(patient, "DUPONT^MARIE", "Pelvis 70/35", groups=[(35, ["180.5", "175.2"])],
                                  machine="HOME-LINAC-1"), folder / "plan.dcm")
    days = [FIRST_DAY + timedelta(days=k) for k in range(sessions)]
    return plan, sorted(scratch_records(folder / "ois", plan, HOME, "HOME-LINAC-1", days))


def delivered(ledger: Ledger) -> int:
    return sum(n for (n,) in ledger.fresh().db.execute("SELECT fractions_delivered FROM courses"))


def test_a_file_is_taken_once_it_is_complete_and_moved_to_imported(ledger, tmp_path):
    plan, records = files(tmp_path / "made", "W-1", 2)
    box = tmp_path / "box"
    (box / "linac").mkdir(parents=True)
    ticks = Ticks()
    watcher = Watcher(ledger, box, HOME, source="LINAC-FILES", now=ticks)
    shutil.copy(plan, box / "plan.dcm")
    assert watcher.scan() == []  # first look: it may still be growing
    [taken] = watcher.scan()
    assert (taken["status"], Path(taken["moved_to"])) == ("registered", box / "imported" / "plan.dcm")
    # A record half written: short, and unchanged for less than the settling time, it waits.
    data = records[0].read_bytes()
    (box / "linac" / "r1.dcm").write_bytes(data[: len(data) // 2])
    assert watcher.scan() == [] and watcher.scan() == []
    (box / "linac" / "r1.dcm").write_bytes(data)  # the writer finished
    shutil.copy(records[1], box / "linac" / "r2.dcm")
    assert watcher.scan() == []
    taken = watcher.scan()
    assert sorted((a["status"], Path(a["moved_to"]).relative_to(box).as_posix()) for a in taken) == [
        ("imported", "imported/linac/r1.dcm"), ("imported", "imported/linac/r2.dcm")]
    assert delivered(ledger) == 2
    # The same record written again is taken, changes nothing and does not overwrite the first.
    shutil.copy(records[1], box / "linac" / "r2.dcm")
    watcher.scan()
    [again] = watcher.scan()
    assert again["status"] == "unchanged" and Path(again["moved_to"]).name == "r2.1.dcm"
    assert delivered(ledger) == 2
    sources = {s["name"]: s for s in ledger.fresh().sources()}
    assert (sources["LINAC-FILES"]["channel"], sources["LINAC-FILES"]["objects"]) == ("watch", 4)


def test_what_the_ledger_refuses_is_moved_aside_with_its_reason(ledger, tmp_path):
    plan, records = files(tmp_path / "made", "W-2", 1)
    box = tmp_path / "box"
    box.mkdir()
    ticks = Ticks()
    watcher = Watcher(ledger, box, HOME, now=ticks, settle=60)
    shutil.copy(records[0], box / "orphan.dcm")  # its plan is not in the ledger
    data = records[0].read_bytes()
    (box / "short.dcm").write_bytes(data[: len(data) // 2])
    (box / "notes.txt").write_text("not DICOM")
    (box / ".hidden.dcm").write_bytes(data)
    (box / "copying.part").write_bytes(data)
    watcher.scan()
    answers = {Path(a["file"]).name: a for a in watcher.scan()}
    assert set(answers) == {"orphan.dcm"}  # the short one and the text wait for the settling time
    assert "import the plan first" in (box / "refused" / "orphan.dcm.reason.txt").read_text()
    ticks.t += 61
    answers = {Path(a["file"]).name: a for a in watcher.scan()}
    assert set(answers) == {"short.dcm", "notes.txt"}
    assert "truncated" in (box / "refused" / "short.dcm.reason.txt").read_text()
    assert sorted(p.name for p in box.iterdir()) == [".hidden.dcm", "copying.part", "refused"]
    assert delivered(ledger) == 0


def test_the_watch_command_once_takes_a_copied_folder_and_reports(tmp_path):
    plan, records = files(tmp_path / "made", "W-3", 3)
    box = tmp_path / "box"
    box.mkdir()
    for k, path in enumerate((*records, plan)):  # named so that the records sort before their plan
        shutil.copy(path, box / f"{k:02d}.dcm")
    db = str(tmp_path / "cli.sqlite3")
    proc = cli("watch", str(box), "--centre", HOME, "--once", "--json", db=db, check=True)
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(a["status"] for a in answers) == ["imported"] * 3 + ["registered"]
    assert "4 imported" in proc.stderr and "0 refused" in proc.stderr
    assert len(list((box / "imported").iterdir())) == 4
    uids = {str(dcmread(p).SOPInstanceUID) for p in (box / "imported").iterdir()}
    assert uids == {str(dcmread(p).SOPInstanceUID) for p in (plan, *records)}
