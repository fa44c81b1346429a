"""Roles x routes x centres, exhaustively, with the routes taken from the OpenAPI document.

EXPECTED is the specification written out by hand: for every operation, which centres of
each role may use it on a course whose home is HOME and which is assigned to PARTNER.
An operation in the OpenAPI document that is missing here fails the test, so a new route
cannot land without its rule.
"""

from __future__ import annotations

import pytest
from litestar import Router, get
from litestar.testing import TestClient

from adapters.http import create_app
from tests.http_support import (
    CENTRES, HOME, PARTNER, PATIENT_NAME, ROLES, account_name, auth, course_body, fraction_body, seed_accounts, seed_course,
)

ALL = {HOME, PARTNER, "OTHER"}
COURSE = {HOME, PARTNER}  # the course's home and assigned centres
ONLY_HOME = {HOME}
NONE: set[str] = set()


def rule(rtt=NONE, physicist=NONE, finance=NONE, admin=NONE, privacy=NONE, unseen=(), unseen_at=frozenset({"OTHER"}),
         oncologist=NONE) -> dict[str, set[str]]:
    """Which centres of each role may use the route; `unseen`: the roles whose accounts at the
    centres `unseen_at` (not the course's) get 404, exactly as for an unknown id, not 403
    (need to know: a refusal must not tell that the course exists)."""
    return {"rtt": rtt, "physicist": physicist, "finance": finance, "admin": admin, "privacy": privacy,
            "oncologist": oncologist, "unseen": {(role, centre) for role in unseen for centre in unseen_at}}


# the roles that look at a course at all (need to know: its home and assigned centres)
READERS = ("rtt", "physicist", "finance", "oncologist")

EXPECTED: dict[tuple[str, str], dict[str, set[str]]] = {
    ("GET", "/api/me"): rule(ALL, ALL, ALL, ALL, ALL, oncologist=ALL),
    # lists answer everyone with a role that reads, with only the courses of its centre
    # (tests/test_security_need_to_know.py checks what is in them)
    ("GET", "/api/courses"): rule(rtt=ALL, physicist=ALL, finance=ALL, oncologist=ALL),
    ("POST", "/api/courses"): rule(physicist=ONLY_HOME),
    ("GET", "/api/courses/{course_id}"): rule(rtt=COURSE, physicist=COURSE, finance=COURSE, oncologist=COURSE,
                                              unseen=READERS),
    ("GET", "/api/courses/{course_id}/events"): rule(rtt=COURSE, physicist=COURSE, finance=COURSE, oncologist=COURSE,
                                                     unseen=READERS),
    ("POST", "/api/courses/{course_id}/fractions"): rule(rtt=COURSE, unseen=("rtt",)),
    ("POST", "/api/courses/{course_id}/fractions/{number}/verify"): rule(rtt=COURSE, unseen=("rtt",)),
    # fraction 1 was recorded at HOME and is verified by the time void is walked (verify sorts first):
    # only a physicist of the home centre may void it (tests/test_void_rules.py: the whole rule)
    ("POST", "/api/courses/{course_id}/fractions/{number}/void"): rule(physicist=ONLY_HOME,
                                                                       unseen=("rtt", "physicist")),
    ("POST", "/api/courses/{course_id}/assign"): rule(physicist=ONLY_HOME, unseen=("physicist",)),
    ("POST", "/api/courses/{course_id}/triage"): rule(physicist=ONLY_HOME, unseen=("physicist",)),
    ("POST", "/api/courses/{course_id}/plans"): rule(physicist=COURSE, unseen=("physicist",)),
    ("POST", "/api/courses/{course_id}/identities"): rule(physicist=ONLY_HOME, unseen=("physicist",)),
    ("POST", "/api/courses/{course_id}/plans/approve"): rule(physicist=ONLY_HOME, unseen=("physicist",)),
    ("POST", "/api/courses/{course_id}/suspend"): rule(physicist=ONLY_HOME, unseen=("physicist",)),
    ("POST", "/api/courses/{course_id}/resume"): rule(physicist=ONLY_HOME, unseen=("physicist",)),
    ("POST", "/api/courses/{course_id}/complete"): rule(physicist=ONLY_HOME, unseen=("physicist",)),
    ("GET", "/api/events"): rule(physicist=ALL, finance=ALL),
    # accounts: an administrator manages its own centre's (the body's and the victim's centre is PARTNER);
    # another centre's account is unknown to it
    ("GET", "/api/accounts"): rule(admin=ALL),
    ("POST", "/api/accounts"): rule(admin={PARTNER}),
    ("POST", "/api/accounts/{name}/revoke"): rule(admin={PARTNER}, unseen=("admin",), unseen_at={HOME, "OTHER"}),
    ("POST", "/api/accounts/{name}/rotate"): rule(admin={PARTNER}, unseen=("admin",), unseen_at={HOME, "OTHER"}),
    # incidents: the seeded one happened at PARTNER on the course whose home is HOME
    ("GET", "/api/incidents"): rule(rtt=ALL, physicist=ALL, finance=ALL),
    ("POST", "/api/incidents"): rule(rtt=ALL, physicist=ALL),
    ("GET", "/api/incidents/export"): rule(physicist=ALL),
    ("GET", "/api/incidents/export.csv"): rule(physicist=ALL),
    ("POST", "/api/incidents/{incident_id}/follow-up"): rule(rtt=COURSE, physicist=COURSE, unseen=("rtt", "physicist")),
    ("POST", "/api/incidents/{incident_id}/close"): rule(physicist=ONLY_HOME, unseen=("physicist",)),
    # billing: finance reads its centre's, records only where its centre is a party (the body's pair is HOME/PARTNER)
    ("GET", "/api/billing/agreements"): rule(finance=ALL),
    ("POST", "/api/billing/agreements"): rule(finance=COURSE),
    ("GET", "/api/billing/statement"): rule(finance=ALL),
    ("GET", "/api/billing/statement.csv"): rule(finance=ALL),
    ("GET", "/api/courses/{course_id}/splits"): rule(finance=COURSE, unseen=("finance",)),
    ("POST", "/api/courses/{course_id}/settle"): rule(finance=COURSE, unseen=("finance",)),
    ("POST", "/api/courses/{course_id}/category"): rule(physicist=ONLY_HOME, finance=ONLY_HOME,
                                                        unseen=("physicist", "finance")),
    # exports and sends: each physicist for its own home courses; the status for everyone following the recovery
    ("GET", "/api/exports/hl7"): rule(physicist=ALL),
    ("POST", "/api/sends/hl7"): rule(physicist=ALL),
    ("GET", "/api/deliveries"): rule(physicist=ALL, finance=ALL),
    # DICOM: each physicist imports for its own home centre (what belongs to another centre is
    # refused per file or line inside), exports its home courses, sends to configured destinations
    ("POST", "/api/imports/plans"): rule(physicist=ALL),
    ("POST", "/api/imports/records"): rule(physicist=ALL),
    ("POST", "/api/imports/triage"): rule(physicist=ALL),
    ("GET", "/api/exports/dicom"): rule(physicist=ALL),
    ("POST", "/api/sends/dicom"): rule(physicist=ALL),
    # recovery: each physicist reconciles its own OIS against its home courses
    ("POST", "/api/reconcile"): rule(physicist=ALL),
    ("POST", "/api/reconcile/report"): rule(physicist=ALL),
    ("POST", "/api/reconcile/import-set"): rule(physicist=ALL),
    ("POST", "/api/reconcile/acknowledge"): rule(physicist=ONLY_HOME, unseen=("physicist",)),
    # the access log: the administrator and the privacy officer, each for what concerns its centre
    ("GET", "/api/access-log"): rule(admin=ALL, privacy=ALL),
    # issue 17: the gaps worklist for those who treat, plan and prescribe; the category by the
    # prescriber; amendments proposed by an oncologist (physicists only where configured: 403 here)
    # and countersigned by a second oncologist or a physicist
    ("GET", "/api/gaps"): rule(rtt=ALL, physicist=ALL, oncologist=ALL),
    ("POST", "/api/courses/{course_id}/gap-category"): rule(oncologist=COURSE, unseen=("oncologist",)),
    ("POST", "/api/courses/{course_id}/schedule"): rule(oncologist=COURSE, physicist=ONLY_HOME,
                                                        unseen=("oncologist", "physicist")),
    ("POST", "/api/courses/{course_id}/amendments"): rule(oncologist=COURSE, unseen=("oncologist", "physicist")),
    ("POST", "/api/courses/{course_id}/amendments/{amendment_id}/countersign"): rule(
        oncologist=COURSE, physicist=COURSE, unseen=("oncologist", "physicist")),
}
PUBLIC = {("GET", "/health"), ("GET", "/ready")}

BODIES = {
    "/api/courses": course_body(patient_id="P-777", uid="1.2.3.7.7"),
    "/api/courses/{course_id}/fractions": fraction_body(3),
    "/api/courses/{course_id}/fractions/{number}/void": {"reason": "entered twice"},
    "/api/courses/{course_id}/assign": {"centre": "EXTRA"},
    "/api/courses/{course_id}/triage": {"triage": 2},
    "/api/courses/{course_id}/plans": {"uid": "1.2.3.8", "label": "Fallback", "centre": PARTNER,
                                       "fraction_groups": [{"number": 1, "fractions_planned": 30}]},
    "/api/courses/{course_id}/identities": {"centre": PARTNER, "patient_id": "PRT-1", "name": PATIENT_NAME,
                                            "birth_date": "1960-01-02"},
    "/api/courses/{course_id}/plans/approve": {"plan_uid": "1.2.3.8"},
    "/api/courses/{course_id}/suspend": {"reason": "review"},
    "/api/courses/{course_id}/complete": {"reason": "done"},
    "/api/accounts": {"name": "someone.new", "role": "rtt", "centre": PARTNER},
    "/api/incidents": {"category": "equipment", "severity": "low", "description": "couch jammed"},
    "/api/incidents/{incident_id}/follow-up": {"text": "engineer called"},
    "/api/incidents/{incident_id}/close": {"resolution": "repaired"},
    "/api/billing/agreements": {"billing_centre": HOME, "partner": PARTNER, "rule": "pro-rata",
                                "course_amount": "3000.00", "valid_from": "2026-01-01"},
    "/api/courses/{course_id}/category": {"category": "complex"},
    "/api/courses/{course_id}/gap-category": {"category": 2},
    "/api/courses/{course_id}/schedule": {"site": "breast"},
    "/api/courses/{course_id}/amendments": {"kind": "extra_fractions", "fractions": 1, "reason": "outage"},
    "/api/sends/hl7": {},
    "/api/sends/dicom": {},
    # acknowledging a set with a fraction of the seeded course: only its home centre may
    "/api/reconcile/acknowledge": {"set_id": "abc", "items": [{"course_id": "{course_id}", "group": 1, "number": 1,
                                                               "record_ids": ["r1"]}]},
}
QUERIES = {"/api/billing/statement": "?from=2026-01-01&to=2026-12-31",
           "/api/billing/statement.csv": "?from=2026-01-01&to=2026-12-31"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One SQLite ledger for the whole table (policy does not depend on the backend)."""
    import os

    from adapters.runtime import Ledger

    tmp = tmp_path_factory.mktemp("roles")
    os.environ["FRACTION_LEDGER_READ_DB"] = str(tmp / "read.sqlite3")
    try:
        with Ledger(str(tmp / "ledger.sqlite3")) as ledger:
            seed_accounts(ledger.app)
            course_id = seed_course(ledger.app)
            from ledger.service import Actor

            incident = ledger.app.billing.register_incident(
                {"centre": PARTNER, "course_id": course_id, "category": "positioning", "severity": "low",
                 "description": "tattoo hard to see"}, Actor("rtt1.partner", PARTNER))["id"]
            amendment = ledger.app.gaps.amend_prescription(
                course_id, {"kind": "extra_fractions", "fractions": 1, "reason": "outage"},
                Actor("setup", HOME))["amendment"]["id"]
            with TestClient(create_app(ledger)) as client:
                yield client, ledger, course_id, (incident, amendment)
    finally:
        os.environ.pop("FRACTION_LEDGER_READ_DB", None)


def operations(client) -> set[tuple[str, str]]:
    doc = client.get("/schema/openapi.json").json()
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item
            if method in ("get", "post", "put", "patch", "delete")}


def test_every_documented_route_has_a_rule(world):
    client = world[0]
    found = operations(client)
    assert found - set(EXPECTED) - PUBLIC == set(), "routes without an expected rule in this table"
    assert set(EXPECTED) - found == set(), "rules for routes that no longer exist"


def url_of(path: str, course_id: str, incident_id: str = "", amendment_id: str = "") -> str:
    return (path.replace("{course_id}", course_id).replace("{number}", "1").replace("{name}", "victim")
            .replace("{incident_id}", incident_id).replace("{amendment_id}", amendment_id) + QUERIES.get(path, ""))


def test_roles_routes_centres(world):
    client, ledger, course_id, (incident_id, amendment_id) = world
    # fraction 1 exists (logged by a home RTT) so that verify and void have something to act on
    client.post(f"/api/courses/{course_id}/fractions", headers=auth(account_name("rtt", HOME, 2)),
                json=fraction_body(1))
    from ledger.accounts import add_account, hash_token
    from ledger.service import Actor

    add_account(ledger.app, {"name": "victim", "role": "rtt", "centre": PARTNER}, hash_token("v"), Actor("t", "-"))
    checked = 0
    for method, path in sorted(operations(client)):
        if (method, path) in PUBLIC:
            assert client.request(method, url_of(path, course_id)).status_code == 200
            continue
        url = url_of(path, course_id, incident_id, amendment_id)
        body = BODIES.get(path)
        if path == "/api/reconcile/acknowledge":
            body = {**body, "items": [{**body["items"][0], "course_id": course_id}]}
        no_token = client.request(method, url, json=body)
        assert no_token.status_code == 401, (method, path)
        for role in ROLES:
            for centre in CENTRES:
                name = account_name(role, centre)
                before = ledger.app.recorder.max_notification_id()
                r = client.request(method, url, json=body, headers=auth(name))
                allowed = centre in EXPECTED[(method, path)][role]
                if allowed:
                    assert r.status_code not in (401, 403, 404) and r.status_code < 500, (method, path, name, r.text)
                else:
                    unseen = (role, centre) in EXPECTED[(method, path)]["unseen"]
                    assert r.status_code == (404 if unseen else 403), (method, path, name, r.status_code, r.text)
                    assert r.json()["error"].endswith("not_found") if unseen else r.json()["error"] == "forbidden"
                    assert ledger.app.recorder.max_notification_id() == before, (method, path, name)
                checked += 1
    assert checked == len(EXPECTED) * len(ROLES) * len(CENTRES)


def test_the_table_is_consistent():
    """Every 404 of the table is a refusal (never an allowed centre)."""
    for key, spec in EXPECTED.items():
        for role, centre in spec["unseen"]:
            assert centre not in spec[role], key


def test_a_route_without_a_rule_stops_the_app(world):
    from adapters.http import app as app_module

    @get("/api/unguarded", sync_to_thread=False)
    def unguarded() -> str:
        return "oops"

    stray = type("Area", (), {"router": Router("/", route_handlers=[unguarded])})
    import sys

    sys.modules["tests._stray_area"] = stray
    app_module.AREAS.append("tests._stray_area")
    try:
        with pytest.raises(RuntimeError, match="no access rule"):
            create_app(world[1])
    finally:
        app_module.AREAS.remove("tests._stray_area")
        del sys.modules["tests._stray_area"]
