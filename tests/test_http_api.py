"""The HTTP API's contract, its errors (nothing written on any), and Idempotency-Key."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from adapters.http import create_app
from tests.http_support import (
    HOME, OTHER, PARTNER, account_name, auth, fraction_body, seed_accounts, seed_course,
)

RTT, RTT2 = account_name("rtt", PARTNER), account_name("rtt", PARTNER, 2)
PHYS = account_name("physicist", HOME)


@pytest.fixture
def api(ledger):
    seed_accounts(ledger.app)
    ledger.course_id = seed_course(ledger.app)
    ledger.other_course = seed_course(ledger.app, patient_id="P-002", uid="1.2.3.4.2", assigned=())
    with TestClient(create_app(ledger)) as client:
        client.ledger = ledger
        yield client


def log_position(api) -> int:
    return api.ledger.app.recorder.max_notification_id() or 0


def test_rtt_sees_only_courses_of_its_centre(api):
    seen = api.get("/api/courses", headers=auth(RTT)).json()
    assert [c["id"] for c in seen] == [api.ledger.course_id]
    assert {c["id"] for c in api.get("/api/courses", headers=auth(PHYS)).json()} == {
        api.ledger.course_id, api.ledger.other_course}
    assert api.get("/api/courses", headers=auth(account_name("rtt", OTHER))).json() == []


def test_log_fraction_takes_centre_and_operator_from_the_account(api):
    cid = api.ledger.course_id
    r = api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(1, note="first at partner"))
    assert r.status_code == 201, r.text
    stored = r.json()
    assert (stored["number"], stored["centre"], stored["operator"], stored["course_id"]) == (1, PARTNER, RTT, cid)
    assert [b["delivered_mu"] for b in stored["beams"]] == ["112.4", "109.8"]
    course = api.get(f"/api/courses/{cid}", headers=auth(RTT)).json()
    assert course["fractions_delivered"] == 1
    assert course["fractions"][0]["record_id"] == stored["record_id"]
    events = api.get(f"/api/courses/{cid}/events", headers=auth(RTT)).json()
    assert (events[-1]["type"], events[-1]["user"], events[-1]["centre"]) == ("Course.FractionDelivered", RTT, PARTNER)


def test_partial_beams_and_continuation(api):
    cid = api.ledger.course_id
    body = fraction_body(1, beams=[{"number": 1, "delivered_mu": "112.4"},
                                   {"number": 2, "delivered_mu": "40", "termination": "MACHINE"}])
    assert api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=body).status_code == 201
    rest = fraction_body(1, type="CONTINUATION", beams=[{"number": 2, "delivered_mu": "69.8"}])
    r = api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT2), json=rest)
    assert r.status_code == 201, r.text
    beam = r.json()["beams"][0]
    # the specified meterset stays the plan's (PS3.3 C.8.8.21.2.1); the session starts at what the first gave
    assert (r.json()["delivery_type"], beam["specified_mu"], beam["start_mu"], beam["delivered_mu"]) == (
        "CONTINUATION", "109.8", "40", "69.8")


def test_invalid_body_names_every_bad_field_and_writes_nothing(api):
    before = log_position(api)
    r = api.post(f"/api/courses/{api.ledger.course_id}/fractions", headers=auth(RTT),
                 json={"number": 0, "machine": "", "delivered_at": "2026-11-23T09:00:00", "centre": "X",
                       "beams": [{"number": 1, "delivered_mu": "-3"}]})
    assert r.status_code == 400
    fields = {f["field"]: f["reason"] for f in r.json()["fields"]}
    assert set(fields) == {"number", "machine", "delivered_at", "centre", "beams[0]"}
    assert "at least 1" in fields["number"] and "timezone" in fields["delivered_at"] and "account" in fields["centre"]
    assert "between 0 and 100000" in fields["beams[0]"]
    r = api.post(f"/api/courses/{api.ledger.course_id}/fractions", headers=auth(RTT), json={})
    assert {f["field"] for f in r.json()["fields"]} == {"number", "machine", "delivered_at"}
    r = api.post(f"/api/courses/{api.ledger.course_id}/fractions", headers=auth(RTT), content=b"{not json",
                 )
    assert r.status_code == 400 and r.json()["fields"][0]["field"] == "body"
    assert log_position(api) == before


def test_refusal_is_409_with_the_conflicting_record(api):
    cid = api.ledger.course_id
    first = api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(1)).json()
    before = log_position(api)
    r = api.post(f"/api/courses/{cid}/fractions", headers=auth(account_name("rtt", HOME)), json=fraction_body(1))
    assert r.status_code == 409
    body = r.json()
    assert body["error"] == "fraction_already_delivered"
    conflict = body["conflict"]
    assert (conflict["record_id"], conflict["number"], conflict["centre"], conflict["operator"]) == (
        first["record_id"], 1, PARTNER, RTT)
    assert conflict["delivered_at"] == first["delivered_at"]
    # The course is untouched; the one event written is the near-miss incident (issue 8).
    assert log_position(api) == before + 1
    assert [i["category"] for i in api.ledger.fresh().incidents()] == ["near-miss"]


def test_31st_fraction_of_30_is_refused(api):
    r = api.post(f"/api/courses/{api.ledger.course_id}/fractions", headers=auth(RTT), json=fraction_body(31))
    assert r.status_code == 409 and r.json()["error"] == "fraction_out_of_range"
    assert "30 fractions planned" in r.json()["message"]


def test_verify_by_a_colleague_never_by_the_operator(api):
    cid = api.ledger.course_id
    api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(1))
    own = api.post(f"/api/courses/{cid}/fractions/1/verify", headers=auth(RTT))
    assert own.status_code == 409 and own.json()["error"] == "verifier_is_operator"
    ok = api.post(f"/api/courses/{cid}/fractions/1/verify", headers=auth(RTT2), json={})
    assert ok.status_code == 200 and ok.json()[0]["verified_by"] == RTT2
    assert api.post(f"/api/courses/{cid}/fractions/7/verify", headers=auth(RTT2)).status_code == 404


def test_void_with_reason(api):
    cid = api.ledger.course_id
    api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(1))
    assert api.post(f"/api/courses/{cid}/fractions/1/void", headers=auth(RTT), json={}).status_code == 400
    r = api.post(f"/api/courses/{cid}/fractions/1/void", headers=auth(RTT), json={"reason": "wrong patient chart"})
    assert r.status_code == 200 and r.json()[0]["voided"] is True
    assert api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(1)).status_code == 201


def test_unknown_ids_are_404_and_tokens_401(api):
    assert api.get("/api/courses/00000000-0000-0000-0000-000000000000", headers=auth(RTT)).status_code == 404
    assert api.get("/api/courses/not-a-uuid", headers=auth(RTT)).status_code == 404
    assert api.post("/api/courses/nope/fractions", headers=auth(RTT), json=fraction_body(1)).status_code == 404
    assert api.get("/api/courses").status_code == 401
    r = api.get("/api/courses", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert api.get("/api/courses", headers={"Authorization": "Basic abc"}).status_code == 401


def test_wrong_centre_or_role_is_refused_and_writes_nothing(api):
    before = log_position(api)
    other_rtt = account_name("rtt", OTHER)
    # a centre that does not treat the course is answered as for an unknown id (need to know)
    r = api.post(f"/api/courses/{api.ledger.course_id}/fractions", headers=auth(other_rtt), json=fraction_body(1))
    assert r.status_code == 404 and r.json()["error"] == "course_not_found"
    r = api.post(f"/api/courses/{api.ledger.course_id}/fractions", headers=auth(PHYS), json=fraction_body(1))
    assert r.status_code == 403
    assert api.post(f"/api/courses/{api.ledger.other_course}/fractions", headers=auth(RTT),
                    json=fraction_body(1)).status_code == 404
    assert log_position(api) == before


def test_idempotency_key_returns_first_answer_and_refuses_other_body(api):
    cid = api.ledger.course_id
    key = {"Idempotency-Key": "linac2-0915-a", **auth(RTT)}
    first = api.post(f"/api/courses/{cid}/fractions", headers=key, json=fraction_body(1))
    position = log_position(api)
    again = api.post(f"/api/courses/{cid}/fractions", headers=key, json=fraction_body(1))
    assert (again.status_code, again.json()) == (201, first.json())
    assert log_position(api) == position
    other = api.post(f"/api/courses/{cid}/fractions", headers=key, json=fraction_body(2))
    assert other.status_code == 422 and other.json()["error"] == "request_id_reused"
    assert log_position(api) == position
    # Keys belong to a user: a colleague's identical key is a different request.
    mine = api.post(f"/api/courses/{cid}/fractions", headers={**key, **auth(RTT2)}, json=fraction_body(2))
    assert mine.status_code == 201


def test_physicist_assigns_triages_suspends_and_adds_fallback_plan(api):
    cid = api.ledger.other_course
    r = api.post(f"/api/courses/{cid}/assign", headers=auth(PHYS), json={"centre": PARTNER})
    assert r.status_code == 200 and r.json()["changed"] is True
    assert cid in {c["id"] for c in api.get("/api/courses", headers=auth(RTT)).json()}
    assert api.post(f"/api/courses/{cid}/triage", headers=auth(PHYS), json={"triage": 6}).status_code == 400
    assert api.post(f"/api/courses/{cid}/triage", headers=auth(PHYS), json={"triage": 1}).json()["triage"] == 1
    partner_phys = account_name("physicist", PARTNER)
    plan = {"uid": "1.2.3.4.2.9", "label": "Fallback TB2", "machine": "PARTNER-TB2", "centre": PARTNER,
            "fraction_groups": [{"number": 1, "fractions_planned": 30, "beams": [
                {"number": 1, "meterset": "120"}, {"number": 2, "meterset": "118"}]}]}
    assert api.post(f"/api/courses/{cid}/plans", headers=auth(partner_phys), json=plan).status_code == 200
    assert api.post(f"/api/courses/{cid}/suspend", headers=auth(PHYS), json={"reason": "skin reaction"}).json()[
        "status"] == "suspended"
    r = api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(1))
    assert r.status_code == 409 and r.json()["error"] == "course_not_active"
    assert r.json()["conflict"]["reason"] == "skin reaction"
    assert api.post(f"/api/courses/{cid}/resume", headers=auth(PHYS)).json()["status"] == "active"
    stored = api.post(f"/api/courses/{cid}/fractions", headers=auth(RTT), json=fraction_body(1)).json()
    assert stored["plan_uid"] == "1.2.3.4.2.9" and stored["beams"][0]["specified_mu"] == "120"


def test_register_course_only_for_own_home_centre(api):
    from tests.http_support import course_body

    body = course_body(patient_id="P-009", uid="1.2.3.9")
    assert api.post("/api/courses", headers=auth(account_name("physicist", PARTNER)), json=body).status_code == 403
    r = api.post("/api/courses", headers=auth(PHYS), json=body)
    assert r.status_code == 201 and r.json()["status"] == "registered"
    assert api.post("/api/courses", headers=auth(PHYS), json=body).json()["status"] == "unchanged"


def test_a_plan_with_two_fraction_groups_of_one_number_is_400(api):
    from tests.http_support import course_body

    body = course_body(patient_id="P-070", uid="1.2.3.70", fractions=35)
    group = body["plan"]["fraction_groups"][0]
    body["plan"]["fraction_groups"].append({**group, "beams": []})
    before = log_position(api)
    r = api.post("/api/courses", headers=auth(PHYS), json=body)
    assert r.status_code == 400, r.text
    [field] = r.json()["fields"]
    assert field["field"] == "plan" and "fraction group 1 appears twice" in field["reason"]
    assert log_position(api) == before


def test_accounts_by_admin_and_revocation_takes_effect(api):
    admin = auth(account_name("admin", PARTNER))  # an administrator manages its own centre's accounts
    r = api.post("/api/accounts", headers=admin, json={"name": "new.rtt", "role": "rtt", "centre": PARTNER})
    assert r.status_code == 201
    token = r.json()["token"]
    listed = api.get("/api/accounts", headers=admin).json()
    assert "new.rtt" in {a["name"] for a in listed} and all("token" not in a for a in listed)
    assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).json() == {
        "user": "new.rtt", "role": "rtt", "centre": PARTNER}
    assert api.post("/api/accounts/new.rtt/revoke", headers=admin).json()["active"] is False
    assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert api.post("/api/accounts/nobody/revoke", headers=admin).status_code == 404


def test_events_feed_has_no_accounts_or_token_hashes(api):
    r = api.get("/api/events?limit=1000", headers=auth(PHYS))
    assert r.status_code == 200
    assert {e["type"] for e in r.json()} == {"Course.Registered"}
    assert "token_hash" not in r.text


def test_health_ready_and_openapi(api):
    assert api.get("/health").json() == {"status": "ok", "detail": "", "sources": []}
    assert api.get("/ready").status_code == 200
    doc = api.get("/schema/openapi.json").json()
    op = doc["paths"]["/api/courses/{course_id}/fractions"]["post"]
    assert {"201", "400", "401", "403", "404", "409", "422"} <= set(op["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in op["parameters"])
    assert api.get("/schema/swagger").status_code == 200


def test_request_size_limit(api):
    r = api.post(f"/api/courses/{api.ledger.course_id}/fractions", headers=auth(RTT),
                 json=fraction_body(1, note="x" * 1_100_000))
    assert r.status_code == 413
