"""Issue 17's page forms in a real browser (Debian's chromium, headless, Playwright): the alarm on
the gaps worklist and the physicist's page, an oncologist proposes a twice-daily day, a second
one countersigns it and the prolongation falls from 4 to 3. Screenshots in test-artifacts/screenshots/.

The server's clock starts at the suite's (Sunday 28 March 2027): the category 1 head and neck
course, Monday to Friday from 1 March, was treated until Monday 22 March and missed Tuesday 23 to
Friday 26 (4 working days)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ledger.accounts import add_account, hash_token
from ledger.service import Actor
from tests.conftest import free_port, require_module, require_tool
from tests.http_support import UI_HOME, UI_PARTNER, course_body, running_server, seed_demo_site, token_of
from tests.test_ui_browser import SHOTS, browser, shot, signed_in  # noqa: F401 (browser: fixture)

BXL = ZoneInfo("Europe/Brussels")
START = date(2027, 3, 1)


def treated_days() -> list[date]:
    days, d = [], START
    while d <= date(2027, 3, 22):
        if d.isoweekday() <= 5:
            days.append(d)
        d += timedelta(days=1)
    return days


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    chromium = require_tool("chromium")
    require_module("playwright")
    tmp = tmp_path_factory.mktemp("ui-gaps")

    def more(ledger, _):
        for name in ("onc.home.a", "onc.home.b"):
            add_account(ledger.app, {"name": name, "role": "oncologist", "centre": UI_HOME},
                        hash_token(token_of(name)), Actor("setup", "-"))
        body = course_body(patient_id="HN-UI", uid="1.2.3.17.1", fractions=35, assigned=(UI_PARTNER,), home=UI_HOME)
        body |= {"schedule": {"start": START.isoformat()}, "site": "head_and_neck"}
        cid = ledger.app.register_course(body, Actor("setup", UI_HOME))["id"]
        for n, day in enumerate(treated_days(), start=1):
            ledger.app.log_fraction(cid, {"number": n, "centre": UI_HOME, "machine": "L1", "operator": "rtt.home",
                                          "delivered_at": datetime(day.year, day.month, day.day, 9, tzinfo=BXL)},
                                    Actor("rtt.home", UI_HOME))
        return cid

    db, env, _, course = seed_demo_site(tmp, more)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_server(db, free_port(), env=env, log=tmp / "server.log") as base:
        yield {"base": base, "chromium": chromium, "course": course}


@pytest.mark.slow
def test_the_gap_alarm_then_an_amendment_proposed_and_countersigned_in_the_browser(browser, site):
    context, page = signed_in(browser, site, "onc.home.a")
    assert page.url.endswith("/gaps")
    assert "is 4 treatment days behind its schedule" in page.inner_text("#gap-alarms")
    shot(page, "gaps-worklist")
    page.click(f"#gap-{site['course']} a")
    assert page.inner_text("#gap-prolongation") == "4"
    page.select_option("#amend-kind", "twice_daily")
    page.fill("#amend-day", "2027-03-29")
    page.fill("#amend-reason", "compensate the outage")
    page.click("#amend-submit")
    page.wait_for_load_state()
    assert "changes nothing until countersigned" in page.inner_text("main")
    assert page.inner_text("#gap-prolongation") == "4", "not countersigned: nothing changes"
    assert page.locator("button.countersign").count() == 0, "never one's own"
    shot(page, "course-amendment-proposed")
    context.close()

    context, page = signed_in(browser, site, "onc.home.b", locale="nl-BE")
    page.goto(f"{site['base']}/courses/{site['course']}")
    page.click("button.countersign")
    page.wait_for_load_state()
    assert "Wijziging medeondertekend" in page.inner_text("main")
    assert page.inner_text("#gap-prolongation") == "3"
    assert "onc.home.b" in page.inner_text("#amendments")
    shot(page, "course-amendment-countersigned-nl")
    context.close()

    context, page = signed_in(browser, site, "physicist.home")
    assert "is 3 treatment days behind its schedule" in page.inner_text("#gap-alarms")
    shot(page, "physicist-gap-alarm")
    context.close()
