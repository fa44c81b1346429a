"""`fraction-ledger pull`: C-FIND and C-GET from a real Orthanc holding the home OIS's plans and
records; what the ledger holds is never asked for again, and a pass resumes where one stopped."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydicom import dcmread

from adapters.dicom.plans import import_plan_file
from adapters.dicom.pull import PullError, Puller
from adapters.readmodel_receipts import RECEIPT_TOPIC
from adapters.runtime import Ledger
from tests.conftest import Clock
from tests.dicom_support import Orthanc
from ledger.service import Actor
from tools.dicom_samples import sample_plan, write_plan
from tools.partner_samples import scratch_records

HOME, ARCHIVE = "AZ-HOME", "OIS"
ZONE = ZoneInfo("Europe/Brussels")
FIRST_DAY = datetime(2027, 3, 1, 9, 0, tzinfo=ZONE)  # before the tests' clock (2027-03-28)


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    with Ledger(str(tmp_path / "ledger.sqlite3"), clock=Clock()) as opened:
        yield opened


@pytest.fixture
def orthanc(tmp_path):
    # The ledger is a known modality that may query and retrieve (C-GET) from the archive.
    server = Orthanc(tmp_path / "orthanc", config={
        "DicomModalities": {"ledger": {"AET": "LEDGER", "Host": "127.0.0.1", "Port": 1,
                                       "AllowFind": True, "AllowGet": True, "AllowMove": False}},
    })
    yield server
    server.stop()


def home_ois(folder: Path, patient: str, sessions: int, first_day: datetime = FIRST_DAY) -> tuple[Path, list[Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    plan = write_plan(sample_plan(patient, "DUPONT^MARIE", "Pelvis 70/35", groups=[(35, ["180.5", "175.2"])],
                                  machine="HOME-LINAC-1"), folder / "plan.dcm")
    days = [first_day + timedelta(days=k) for k in range(sessions)]
    return plan, sorted(scratch_records(folder / "ois", plan, HOME, "HOME-LINAC-1", days))


def delivered(ledger: Ledger, plan: Path) -> int:
    uid = str(dcmread(plan).SOPInstanceUID)
    rows = ledger.fresh().db.execute("SELECT plans, fractions_delivered FROM courses").fetchall()
    counts = [n for plans, n in rows if any(p["uid"] == uid for p in json.loads(plans))]
    assert len(counts) == 1, counts
    return counts[0]


def puller(ledger: Ledger, orthanc: Orthanc, **kw) -> Puller:
    return Puller(ledger, "127.0.0.1", orthanc.dicom_port, ARCHIVE, HOME, timeout=20, **kw)


def test_a_pass_imports_what_the_archive_holds_and_the_next_asks_for_nothing(ledger, orthanc, tmp_path):
    plan, records = home_ois(tmp_path / "a", "HOME-1", 3)
    # Records uploaded before their plan: the pass still takes the plan first.
    orthanc.upload(*records, plan)
    first = puller(ledger, orthanc).pass_once()
    assert (first["found"], first["held"], first["retrieved"], first["imported"], first["refused"]) == (4, 0, 4, 4, [])
    assert delivered(ledger, plan) == 3
    written = ledger.app.recorder.max_notification_id()

    again = puller(ledger, orthanc).pass_once()
    assert (again["found"], again["held"], again["retrieved"]) == (4, 4, 0)
    assert ledger.app.recorder.max_notification_id() == written  # nothing asked for, nothing written
    receipts = [n for n in ledger.app.recorder.select_notifications(0, 10_000) if n.topic == RECEIPT_TOPIC]
    assert len(receipts) == 4
    sources = {s["name"]: s for s in ledger.fresh().sources()}
    assert sources[ARCHIVE]["channel"] == "pull" and sources[ARCHIVE]["objects"] == 4


def test_a_pass_resumes_where_the_last_stopped_and_takes_only_the_new(ledger, orthanc, tmp_path):
    plan, records = home_ois(tmp_path / "b", "HOME-2", 5)
    orthanc.upload(plan, *records[:2])
    assert puller(ledger, orthanc).pass_once()["imported"] == 3
    orthanc.upload(*records[2:])  # the OIS went on treating
    second = puller(ledger, orthanc).pass_once()
    assert (second["found"], second["held"], second["imported"]) == (6, 3, 3)
    assert delivered(ledger, plan) == 5


def test_what_was_pushed_or_imported_is_not_pulled_and_a_refused_object_is_asked_again(ledger, orthanc, tmp_path):
    plan, records = home_ois(tmp_path / "c", "HOME-3", 2)
    assert import_plan_file(ledger.app, plan, Actor("physicist", HOME), HOME)["status"] == "registered"
    stranger, stranger_records = home_ois(tmp_path / "d", "HOME-4", 1)
    orthanc.upload(plan, *records, *stranger_records)  # a record whose plan the ledger does not know
    result = puller(ledger, orthanc).pass_once()
    assert (result["found"], result["held"], result["imported"]) == (4, 1, 2)
    assert [r["sop_instance_uid"] for r in result["refused"]] == [str(dcmread(stranger_records[0]).SOPInstanceUID)]
    assert "import the plan first" in result["refused"][0]["error"]
    assert puller(ledger, orthanc).pass_once()["retrieved"] == 1  # the refused one is asked again
    orthanc.upload(stranger)
    last = puller(ledger, orthanc).pass_once()
    assert (last["imported"], last["refused"]) == (2, [])
    assert delivered(ledger, stranger) == 1


def test_since_leaves_older_studies_and_a_wrong_called_aet_is_a_clear_error(ledger, orthanc, tmp_path):
    old_plan, old_records = home_ois(tmp_path / "old", "HOME-5", 1)
    orthanc.upload(old_plan, *old_records)
    study_date = dcmread(old_plan).get("StudyDate")
    assert study_date, "the sample plan carries a study date"
    after = date.fromisoformat(f"{study_date[:4]}-{study_date[4:6]}-{study_date[6:]}") + timedelta(days=1)
    assert puller(ledger, orthanc, since=after).pass_once()["found"] == 0
    with pytest.raises(PullError, match="did not accept an association"):
        Puller(ledger, "127.0.0.1", orthanc.dicom_port, "NOT-OIS", HOME, timeout=10).pass_once()


def test_the_pull_command_says_what_it_found_held_and_imported(orthanc, tmp_path):
    from tests.conftest import cli

    plan, records = home_ois(tmp_path / "e", "HOME-6", 2)
    orthanc.upload(plan, *records)
    db = str(tmp_path / "cli.sqlite3")
    args = ("pull", "--host", "127.0.0.1", "--port", str(orthanc.dicom_port), "--called-aet", ARCHIVE,
            "--centre", HOME, "--json")
    first = json.loads(cli(*args, db=db, check=True).stdout)
    assert (first["found"], first["imported"], first["refused"]) == (3, 3, [])
    second = json.loads(cli(*args, db=db, check=True).stdout)
    assert (second["held"], second["retrieved"]) == (3, 0)
