"""Encryption at rest: with a cipher key the database holds no patient name or id in clear,
the chain still verifies without the key, and a missing or wrong key is a clear refusal."""

from __future__ import annotations

import json
import stat

import psycopg
import pytest

from adapters.keys import new_cipher_key
from adapters.runtime import Ledger
from tests.conftest import cli
from tests.test_core_rules import log, plan
from ledger.service import Actor

NAME, FAMILY, PATIENT_ID = "VERMEULEN^GEERTRUI", "VERMEULEN", "P-SECRET-4711"
REGISTER = ("course", "register", "--patient-id", PATIENT_ID, "--patient-name", NAME, "--plan-uid",
            "1.2.826.0.1.3680043.10.7", "--plan-label", "Breast 40Gy/15", "--fractions", "15",
            "--home-centre", "HOME", "--beam", "1=110.5", "--json")


def files_of(db) -> bytes:
    """Every byte the ledger left beside its file (log, WAL, shared memory, read model)."""
    return b"".join(p.read_bytes() for p in sorted(db.parent.iterdir()) if p.name.startswith(db.stem))


def treat(db, env, *extra):
    cid = json.loads(cli(*extra, *REGISTER, db=db, env=env, check=True).stdout)["id"]
    for n in (1, 2):
        cli(*extra, "fraction", "log", cid, "--number", str(n), "--centre", "HOME", "--machine", "L1",
            "--operator", "anna", "--at", f"2026-11-0{n + 1}T09:00:00+01:00", db=db, env=env, check=True)
    return cid


def test_with_a_cipher_key_no_patient_name_or_id_reaches_the_database_file(tmp_path):
    env = {"FRACTION_LEDGER_READ_DB": ""}
    plain = tmp_path / "plain" / "ledger.sqlite3"
    plain.parent.mkdir()
    treat(plain, env)
    cli("course", "list", db=plain, env=env, check=True)
    assert FAMILY.encode() in files_of(plain) and PATIENT_ID.encode() in files_of(plain)  # what the test would catch

    key = tmp_path / "ledger.key"
    made = cli("keygen-cipher", "--out", str(key), check=True)
    assert made.stdout.startswith(f"wrote {key} (mode 0600)")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cli("keygen-cipher", "--out", str(key)).returncode == 1  # never overwritten

    secret = tmp_path / "secret" / "ledger.sqlite3"
    secret.parent.mkdir()
    with_key = ("--cipher-key-file", str(key))
    cid = treat(secret, env, *with_key)
    shown = json.loads(cli(*with_key, "course", "show", cid, "--json", db=secret, env=env, check=True).stdout)
    assert (shown["patient_name"], shown["patient_id"], shown["fractions_delivered"]) == (NAME, PATIENT_ID, 2)
    stored = files_of(secret)
    for clear in (FAMILY, "GEERTRUI", PATIENT_ID, "4711", "anna"):
        assert clear.encode() not in stored, clear
    assert sorted(p.name for p in secret.parent.iterdir() if "read" in p.name) == []  # the read model stayed in memory

    # The chain covers the stored ciphertext: an auditor verifies without the key.
    assert cli("verify", db=secret, env=env).stdout.startswith("ok: ")
    no_key = cli("course", "list", db=secret, env=env)
    assert no_key.returncode == 1 and "this ledger is encrypted: give its key" in no_key.stderr
    wrong = cli("course", "list", db=secret, env=env | {"FRACTION_LEDGER_CIPHER_KEY": new_cipher_key()})
    assert wrong.returncode == 1 and "the cipher key does not decrypt this ledger" in wrong.stderr
    late = cli(*with_key, "course", "list", db=plain, env=env)
    assert late.returncode == 1 and "created without encryption" in late.stderr
    key.chmod(0o644)
    loose = cli(*with_key, "course", "list", db=secret, env=env)
    assert loose.returncode == 1 and "readable by others" in loose.stderr


@pytest.mark.slow
def test_encrypted_events_on_postgresql_hold_no_patient_name(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setenv("FRACTION_LEDGER_CIPHER_KEY", new_cipher_key())
    monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "never-used.sqlite3"))
    with Ledger(postgres_url) as ledger:
        cid = ledger.app.register_course(
            {"patient": {"id": PATIENT_ID, "name": NAME}, "home_centre": "HOME", "plan": plan()}, Actor("ph", "HOME"))["id"]
        log(ledger, cid, 1)
        assert ledger.fresh().course(cid)["patient_name"] == NAME
    assert not (tmp_path / "never-used.sqlite3").exists()
    with psycopg.connect(postgres_url) as conn:
        states = [bytes(r[0]) for r in conn.execute("SELECT state FROM fractionledger_events")]
    assert len(states) == 3  # the course, its plan's claim (`PlanCourse`), the fraction
    assert not any(FAMILY.encode() in s or PATIENT_ID.encode() in s for s in states)
