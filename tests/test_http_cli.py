"""`fraction-ledger user ...` and `serve --demo` as a user runs them."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.conftest import cli, free_port
from tests.http_support import running_server


def test_user_add_list_revoke(tmp_path):
    db = tmp_path / "ledger.sqlite3"
    added = cli("user", "add", "rtt.a", "--role", "rtt", "--centre", "PARTNER", "--json", db=db, check=True)
    token = json.loads(added.stdout)["token"]
    assert len(token) > 40
    again = cli("user", "add", "rtt.a", "--role", "rtt", "--centre", "PARTNER", db=db)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = cli("user", "add", "x", "--role", "rtt", "--centre", "bad centre!", db=db)
    assert bad.returncode == 1 and "centre" in bad.stderr
    listed = cli("user", "list", "--json", db=db, check=True)
    assert json.loads(listed.stdout)[0] | {"created_at": None} == {
        "name": "rtt.a", "role": "rtt", "centre": "PARTNER", "active": True, "created_by": json.loads(
            listed.stdout)[0]["created_by"], "created_at": None, "revoked_by": None, "revoked_at": None}
    # only a hash is stored: the token appears nowhere in the event log
    assert token not in cli("events", "--json", db=db, check=True).stdout
    assert token.encode() not in db.read_bytes()
    cli("user", "revoke", "rtt.a", db=db, check=True)
    assert json.loads(cli("user", "list", "--json", db=db, check=True).stdout)[0]["active"] is False


@pytest.mark.slow
def test_serve_demo_prints_tokens_that_work(tmp_path):
    db = str(tmp_path / "ledger.sqlite3")
    log = tmp_path / "serve.log"
    env = {"FRACTION_LEDGER_READ_DB": str(tmp_path / "read.sqlite3")}
    with running_server(db, free_port(), env=env, log=log, extra=("--demo",)) as base:
        text = log.read_text()
        tokens = dict(re.findall(r"^\s+(\S+)\s+\w+\s+\S+\s+(fl_\S+)$", text, re.M))
        assert {"rtt.partner.a", "physicist.home", "admin"} <= set(tokens)
        me = httpx.get(base + "/api/me", headers={"Authorization": f"Bearer {tokens['rtt.partner.a']}"}).json()
        assert me == {"user": "rtt.partner.a", "role": "rtt", "centre": "PARTNER-RT"}
        courses = httpx.get(base + "/api/courses", headers={"Authorization": f"Bearer {tokens['physicist.home']}"})
        shown = {c["patient_id"]: c["status"] for c in courses.json()}
        # three under treatment, and two completed ones for finance's statement
        assert shown == {"DEMO-001": "active", "DEMO-002": "active", "DEMO-003": "active",
                         "DEMO-004": "completed", "DEMO-005": "completed"}
