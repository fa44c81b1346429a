"""Who may void which fraction (`ledger.access.may_void`), on the API and on the pages.

A void frees the fraction number for another delivery, so one person must not undo a double
check or another centre's record: an RTT voids only an unverified fraction recorded at its own
centre; anything else needs a physicist of the course's home centre. Issue 12 reported a partner
RTT voiding a verified home fraction alone and logging it again.
"""

from __future__ import annotations

import re

import pytest
from litestar.testing import TestClient

from adapters.http import create_app
from tests.http_support import HOME, PARTNER, account_name, auth, fraction_body, seed_accounts, seed_course, token_of

RTT, RTT2 = account_name("rtt", PARTNER), account_name("rtt", PARTNER, 2)
HOME_RTT, HOME_RTT2 = account_name("rtt", HOME), account_name("rtt", HOME, 2)
PHYS, PARTNER_PHYS = account_name("physicist", HOME), account_name("physicist", PARTNER)


@pytest.fixture
def api(ledger):
    seed_accounts(ledger.app)
    ledger.course_id = seed_course(ledger.app)  # home HOME, assigned PARTNER
    with TestClient(create_app(ledger)) as client:
        client.ledger = ledger
        yield client


def log(api, number: int, who: str) -> None:
    r = api.post(f"/api/courses/{api.ledger.course_id}/fractions", headers=auth(who), json=fraction_body(number))
    assert r.status_code == 201, r.text


def verify(api, number: int, who: str) -> None:
    r = api.post(f"/api/courses/{api.ledger.course_id}/fractions/{number}/verify", headers=auth(who))
    assert r.status_code == 200, r.text


def void(api, number: int, who: str):
    return api.post(f"/api/courses/{api.ledger.course_id}/fractions/{number}/void", headers=auth(who),
                    json={"reason": "logged on the wrong chart"})


def position(api) -> int:
    return api.ledger.app.recorder.max_notification_id() or 0


def test_an_rtt_voids_an_unverified_fraction_of_its_own_centre(api):
    log(api, 1, RTT)
    r = void(api, 1, RTT2)  # a colleague of the same centre, or the operator: both may
    assert r.status_code == 200 and r.json()[0]["voided"] is True


def test_a_verified_home_fraction_needs_a_home_physicist(api):
    """The reported case: a partner RTT voided a verified home fraction alone and logged it again."""
    log(api, 1, HOME_RTT)
    verify(api, 1, HOME_RTT2)
    before = position(api)
    r = void(api, 1, RTT)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    assert "verified by rtt2.home" in r.json()["message"] and "physicist of HOME" in r.json()["message"]
    assert position(api) == before
    relog = api.post(f"/api/courses/{api.ledger.course_id}/fractions", headers=auth(RTT), json=fraction_body(1))
    assert relog.status_code == 409 and relog.json()["error"] == "fraction_already_delivered"
    assert void(api, 1, HOME_RTT).status_code == 403  # verified: not even the home centre's RTTs
    assert void(api, 1, PARTNER_PHYS).status_code == 403  # a physicist, but not of the home centre
    assert void(api, 1, PHYS).status_code == 200


def test_another_centres_fraction_needs_a_home_physicist_even_unverified(api):
    log(api, 1, RTT)
    log(api, 2, HOME_RTT)
    r = void(api, 1, HOME_RTT)
    assert r.status_code == 403 and "recorded at PARTNER" in r.json()["message"]
    assert void(api, 2, RTT).status_code == 403
    assert void(api, 1, PHYS).status_code == 200


def test_an_already_voided_fraction_is_judged_the_same(api):
    log(api, 1, HOME_RTT)
    assert void(api, 1, PHYS).status_code == 200
    assert void(api, 1, RTT).status_code == 403  # not "already voided": it was never the partner's to void
    assert void(api, 1, HOME_RTT2).json()["error"] == "already_voided"


# ---- the pages: the button only where the rule allows, and a confirmation ----------------------


def signed_in(client, name: str) -> str:
    """Sign in on the pages; returns the CSRF token for the forms."""
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', client.get("/").text).group(1)
    assert client.post("/", data={"token": token_of(name), "_csrf_token": csrf}).status_code == 200
    return csrf


def void_forms(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'action="/courses/[^/]+/fractions/(\d+)/void"', html)}


def test_the_page_offers_void_only_where_allowed_and_asks_for_a_confirmation(api):
    cid = api.ledger.course_id
    log(api, 1, HOME_RTT)  # another centre's, for the partner
    log(api, 2, RTT)
    log(api, 3, RTT)
    verify(api, 3, RTT2)  # verified
    csrf = signed_in(api, RTT)
    assert void_forms(api.get(f"/courses/{cid}").text) == {2}
    unconfirmed = api.post(f"/courses/{cid}/fractions/2/void", data={"reason": "wrong day", "_csrf_token": csrf})
    assert unconfirmed.status_code == 400 and "confirmation box was not ticked" in unconfirmed.text
    assert not api.ledger.app.get_course(cid).active_records(1, 2)[0].voided
    forbidden = api.post(f"/courses/{cid}/fractions/3/void",
                         data={"reason": "wrong day", "confirm": "yes", "_csrf_token": csrf})
    assert forbidden.status_code == 403 and "verified by" in forbidden.text
    done = api.post(f"/courses/{cid}/fractions/2/void", data={"reason": "wrong day", "confirm": "yes", "_csrf_token": csrf})
    assert done.status_code == 200 and "Fraction 2 voided" in done.text
    assert api.ledger.app.get_course(cid).active_records(1, 2) == []
    api.cookies.clear()
    signed_in(api, PHYS)
    assert void_forms(api.get(f"/courses/{cid}").text) == {1, 3}  # the home physicist: every fraction left
