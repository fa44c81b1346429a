"""Helpers for the HTTP tests: a seeded ledger with accounts, and a real server process."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path


from ledger.accounts import add_account, hash_token
from ledger.service import Actor

ROOT = Path(__file__).resolve().parent.parent
HOME, PARTNER, OTHER = "HOME", "PARTNER", "OTHER"
CENTRES = (HOME, PARTNER, OTHER)
ROLES = ("rtt", "physicist", "finance", "admin", "privacy", "oncologist")
PATIENT_NAME = "VANDENBROECK^JOZEFIEN"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=timezone(timedelta(hours=1)))


def token_of(name: str) -> str:
    return f"test-token-{name}"


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_of(name)}"}


def account_name(role: str, centre: str, n: int = 1) -> str:
    return f"{role}{n}.{centre.lower()}"


def seed_accounts(app) -> None:
    """One account per role and centre, plus a second RTT per centre (the colleague)."""
    admin = Actor("setup", "-")
    for centre in CENTRES:
        for role in ROLES:
            name = account_name(role, centre)
            add_account(app, {"name": name, "role": role, "centre": centre}, hash_token(token_of(name)), admin)
        name = account_name("rtt", centre, 2)
        add_account(app, {"name": name, "role": "rtt", "centre": centre}, hash_token(token_of(name)), admin)


def course_body(patient_id: str = "P-001", uid: str = "1.2.3.4.1", fractions: int = 30, assigned=(PARTNER,),
                home: str = HOME) -> dict:
    return {
        "patient": {"id": patient_id, "name": PATIENT_NAME, "birth_date": "1960-01-02", "sex": "F"},
        "home_centre": home,
        "plan": {"uid": uid, "label": "Breast 50Gy/25", "machine": "LINAC-1", "centre": home,
                 "fraction_groups": [{"number": 1, "fractions_planned": fractions, "beams": [
                     {"number": 1, "name": "TANG MED", "meterset": "112.4"},
                     {"number": 2, "name": "TANG LAT", "meterset": "109.8"}]}]},
        "triage": 3,
        "assigned_centres": list(assigned),
    }


def seed_course(app, **kw) -> str:
    return app.register_course(course_body(**kw), Actor("setup", HOME))["id"]


def fraction_body(number: int, days: int | None = None, **extra) -> dict:
    at = T0 + timedelta(days=number if days is None else days)
    return {"number": number, "machine": "PARTNER-TB2", "delivered_at": at.isoformat(), **extra}



from tools.serverproc import running_server  # noqa: E402,F401


UI_HOME, UI_PARTNER = "AZ-HOME", "PARTNER-RT"
UI_ACCOUNTS = [("rtt.partner.a", "rtt", UI_PARTNER), ("rtt.partner.b", "rtt", UI_PARTNER),
               ("physicist.home", "physicist", UI_HOME), ("finance.home", "finance", UI_HOME), ("admin", "admin", UI_HOME)]


def seed_demo_site(tmp: Path, more=None) -> tuple[str, dict[str, str], list[str], object]:
    """A ledger file with the demo data and the browser tests' accounts, for a server to open.
    `more(ledger, demo_ids)` seeds what a test module needs besides; its answer is returned.
    Returns (db, env for the server, demo course ids, more's answer)."""
    import os

    from adapters.runtime import Ledger
    from tools.demo import run_demo

    db = str(tmp / "ledger.sqlite3")
    env = {"FRACTION_LEDGER_READ_DB": str(tmp / "read.sqlite3")}
    os.environ.update(env)
    try:
        with Ledger(db) as ledger:
            ids = run_demo(ledger, echo=lambda s: None, billing=False)  # the tests seed their own billing
            for name, role, centre in UI_ACCOUNTS:
                add_account(ledger.app, {"name": name, "role": role, "centre": centre}, hash_token(token_of(name)),
                            Actor("setup", "-"))
            extra = more(ledger, ids) if more else None
    finally:
        for key in env:
            os.environ.pop(key, None)
    return db, env, ids, extra
