"""The command line as a user and a script use it. The commands run in-process through click's
CliRunner (`cli`); the smoke tests at the end run the real `fraction-ledger` process (`cli_process`)
for what only a process shows: the entry point, the environment, exit statuses and streams."""

from __future__ import annotations

import pytest

import json

from tests.conftest import cli, cli_process


def register(db, *extra):
    proc = cli("course", "register", "--patient-id", "P-001", "--patient-name", "PEETERS^AN",
               "--plan-uid", "1.2.826.0.1.3680043.10.7", "--plan-label", "Breast 40Gy/15", "--fractions", "15",
               "--home-centre", "HOME", "--beam", "1=110.5", "--beam", "2=98", "--triage", "2", *extra,
               "--json", db=db, check=True)
    return json.loads(proc.stdout)


def test_course_lifecycle_from_the_command_line(tmp_path):
    db = tmp_path / "ledger.sqlite3"
    course = register(db)
    assert course["status"] == "registered"
    assert register(db) == {"id": course["id"], "status": "unchanged"}
    cid = course["id"]

    cli("course", "assign", cid, "--centre", "PARTNER", db=db, check=True)
    for n, centre in ((1, "HOME"), (2, "PARTNER")):
        cli("fraction", "log", cid, "--number", str(n), "--centre", centre, "--machine", f"{centre}-L1",
            "--operator", f"rtt.{centre.lower()}", "--at", f"2026-11-0{n + 1}T09:00:00+01:00", db=db, check=True)
    partial = json.loads(cli("fraction", "log", cid, "--number", "3", "--centre", "PARTNER", "--machine", "TB2",
                             "--operator", "anna", "--at", "2026-11-04T09:00+01:00", "--beam", "1=110.5",
                             "--beam", "2=40:MACHINE", "--json", db=db, check=True).stdout)
    assert partial["beams"][1] == {"number": 2, "specified_mu": "98", "delivered_mu": "40", "termination": "MACHINE",
                                  "start_mu": "0"}
    cli("fraction", "log", cid, "--number", "3", "--centre", "PARTNER", "--machine", "TB2", "--operator", "anna",
        "--at", "2026-11-04T09:20+01:00", "--type", "CONTINUATION", "--beam", "2=58", db=db, check=True)
    cli("fraction", "verify", cid, "--number", "2", "--by", "bert", db=db, check=True)

    refused = cli("fraction", "verify", cid, "--number", "3", "--by", "anna", db=db)
    assert refused.returncode == 1 and "cannot verify" in refused.stderr

    twice = cli("fraction", "log", cid, "--number", "2", "--centre", "HOME", "--machine", "HOME-L1",
                "--operator", "rtt.home", "--at", "2026-11-10T09:00:00+01:00", db=db)
    assert twice.returncode == 1
    assert "already delivered at PARTNER" in twice.stderr and twice.stdout == ""

    cli("fraction", "void", cid, "--number", "1", "--reason", "wrong day", "--by", "physicist", db=db, check=True)

    shown = json.loads(cli("course", "show", cid, "--json", db=db, check=True).stdout)
    assert shown["id"] == cid and shown["patient_id"] == "P-001"
    assert shown["fractions_planned"] == 15 and shown["fractions_delivered"] == 2
    assert [(f["number"], f["centre"], f["machine"]) for f in shown["fractions"]] == [
        (1, "HOME", "HOME-L1"), (2, "PARTNER", "PARTNER-L1"), (3, "PARTNER", "TB2"), (3, "PARTNER", "TB2")]
    assert shown["fractions"][0]["voided"] is True
    assert shown["fractions"][1]["verified_by"] == "bert"
    assert shown["fractions"][1]["delivered_at"] == "2026-11-03T09:00:00+01:00"

    listed = json.loads(cli("course", "list", "--json", db=db, check=True).stdout)
    assert [c["id"] for c in listed] == [cid]
    assert json.loads(cli("course", "list", "--for-centre", "ELSEWHERE", "--json", db=db, check=True).stdout) == []

    cli("course", "suspend", cid, "--reason", "review", db=db, check=True)
    suspended = cli("fraction", "log", cid, "--number", "4", "--centre", "HOME", "--machine", "L1", "--operator", "x",
                    "--at", "2026-11-12T09:00:00+01:00", db=db)
    assert suspended.returncode == 1 and "suspended" in suspended.stderr
    cli("course", "resume", cid, db=db, check=True)
    cli("course", "complete", cid, db=db, check=True)

    events = json.loads(cli("events", "--json", db=db, check=True).stdout)
    types = [e["type"] for e in events]
    assert types[0] == "Course.Registered" and types.count("Course.FractionDelivered") == 4
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)

    before = json.loads(cli("course", "show", cid, "--json", db=db, check=True).stdout)
    # every read is logged too (the access log): `events` lists its own entry, and each show moves the head
    logged = json.loads(cli("events", "--json", db=db, check=True).stdout)
    assert [(e["type"], e["action"]) for e in logged[-2:]] == [("AccessLogEntry.Recorded", "courses.read"),
                                                               ("AccessLogEntry.Recorded", "events.read")]
    assert json.loads(cli("rebuild", "--json", db=db, check=True).stdout)["events"] == len(logged)
    after = json.loads(cli("course", "show", cid, "--json", db=db, check=True).stdout)
    assert after.pop("log_head") != before.pop("log_head") and after == before


def test_bad_input_is_refused_with_the_field_and_nothing_written(tmp_path):
    db = tmp_path / "ledger.sqlite3"
    cid = register(db)["id"]
    naive = cli("fraction", "log", cid, "--number", "1", "--centre", "HOME", "--machine", "L1", "--operator", "x",
                "--at", "2026-11-02T09:00", db=db)
    assert naive.returncode == 2 and "--at" in naive.stderr and "timezone" in naive.stderr
    bad_beam = cli("fraction", "log", cid, "--number", "1", "--centre", "HOME", "--machine", "L1", "--operator", "x",
                   "--at", "2026-11-02T09:00+01:00", "--beam", "1=lots", db=db)
    assert bad_beam.returncode == 2 and "NUMBER=MU" in bad_beam.stderr
    triage = cli("course", "triage", cid, "--code", "9", db=db)
    assert triage.returncode == 1 and "triage" in triage.stderr
    bad_uid = cli("course", "register", "--patient-id", "P-2", "--patient-name", "X^Y", "--plan-uid", "not-a-uid",
                  "--plan-label", "x", "--fractions", "5", "--home-centre", "HOME", db=db)
    assert bad_uid.returncode == 1 and "plan.uid" in bad_uid.stderr
    events = json.loads(cli("events", "--json", db=db, check=True).stdout)
    written = [e["type"] for e in events if e["type"] != "AccessLogEntry.Recorded"]  # reads are logged
    assert written == ["Course.Registered", "PlanCourse.Registered"], "only the registration was written"


@pytest.mark.slow
def test_smoke_the_database_is_chosen_by_option_or_environment(tmp_path):
    via_env = tmp_path / "env.sqlite3"
    proc = cli_process("course", "register", "--patient-id", "P-9", "--patient-name", "A^B", "--plan-uid", "1.2.9",
               "--plan-label", "x", "--fractions", "3", "--home-centre", "HOME", "--beam", "1=100", "--json",
               env={"FRACTION_LEDGER_DB": str(via_env)}, check=True)
    assert via_env.exists()
    assert json.loads(cli_process("course", "list", "--json", db=via_env, check=True).stdout)[0]["id"] == json.loads(proc.stdout)["id"]
    missing = cli_process("course", "list", db=tmp_path / "no" / "such" / "dir.sqlite3")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_a_log_restored_from_a_backup_is_never_shown_through_a_stale_read_model(tmp_path):
    """The read model is rebuilt when the file at the same path holds another log, longer or shorter."""
    import shutil

    db = tmp_path / "ledger.sqlite3"
    first = register(db)["id"]
    cli("fraction", "log", first, "--number", "1", "--centre", "HOME", "--machine", "L1", "--operator", "a",
        "--at", "2026-11-02T09:00+01:00", db=db, check=True)
    assert [c["patient_id"] for c in json.loads(cli("course", "list", "--json", db=db, check=True).stdout)] == ["P-001"]
    other = tmp_path / "other.sqlite3"
    cli("course", "register", "--patient-id", "P-OTHER", "--patient-name", "X^Y", "--plan-uid", "1.2.99",
        "--plan-label", "other", "--fractions", "5", "--home-centre", "HOME", "--beam", "1=100", db=other, check=True)
    for n in range(1, 4):
        cli("course", "triage", json.loads(cli("course", "list", "--json", db=other, check=True).stdout)[0]["id"],
            "--code", str(n), db=other, check=True)
    assert len(json.loads(cli("events", "--json", db=other, check=True).stdout)) > 3
    for suffix in ("", "-wal", "-shm"):
        src = other.with_name(other.name + suffix)
        if src.exists():
            shutil.copy(src, db.with_name(db.name + suffix))
        else:
            db.with_name(db.name + suffix).unlink(missing_ok=True)
    listed = json.loads(cli("course", "list", "--json", db=db, check=True).stdout)
    assert [c["patient_id"] for c in listed] == ["P-OTHER"]


@pytest.mark.slow
def test_smoke_a_real_process_exits_0_1_and_2_with_its_streams(tmp_path):
    """The installed entry point as a shell script sees it: 0 and the answer on stdout, 1 and
    the refusal on stderr with nothing on stdout, 2 for an option it cannot parse."""
    db = tmp_path / "ledger.sqlite3"
    made = cli_process("course", "register", "--patient-id", "P-S", "--patient-name", "SMOKE^AN", "--plan-uid", "1.2.77",
                       "--plan-label", "smoke", "--fractions", "3", "--home-centre", "HOME", "--beam", "1=100",
                       "--json", db=db, check=True)
    cid = json.loads(made.stdout)["id"]
    log = ("fraction", "log", cid, "--number", "1", "--centre", "HOME", "--machine", "L1", "--operator", "rtt.a",
           "--at", "2026-11-02T09:00+01:00")
    assert cli_process(*log, db=db).returncode == 0
    twice = cli_process(*log, db=db)
    assert twice.returncode == 1 and twice.stdout == "" and twice.stderr.startswith("refused: Fraction 1")
    unparsable = cli_process("fraction", "log", cid, "--number", "one", db=db)
    assert unparsable.returncode == 2 and "--number" in unparsable.stderr
