"""The pages in a real browser (Debian's chromium, headless, driven by Playwright):
an RTT logs a fraction with the keyboard and a colleague verifies it; no Verify on one's own
fraction; a completed course says "do not treat" instead of the form; a void is confirmed; the
31st fraction shows why; a physicist uploads a course file;
the Dutch page. A screenshot of each page goes to test-artifacts/screenshots/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ledger.service import Actor
from tests.conftest import ROOT, free_port, require_module, require_tool
from tests.http_support import UI_ACCOUNTS, UI_HOME, UI_PARTNER, course_body, running_server, seed_demo_site, token_of

SHOTS = ROOT / "test-artifacts" / "screenshots"
HOME, PARTNER, ACCOUNTS = UI_HOME, UI_PARTNER, UI_ACCOUNTS
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    chromium = require_tool("chromium")
    require_module("playwright")
    tmp = tmp_path_factory.mktemp("ui")

    def more(ledger, _):
        full, done = (ledger.app.register_course(
            course_body(patient_id=pid, uid=uid, fractions=30, assigned=(PARTNER,), home=HOME), Actor("setup", HOME))["id"]
            for pid, uid in (("FULL-030", "1.2.3.30"), ("DONE-030", "1.2.3.31")))
        ledger.app.complete_course(done, "stopped early: toxicity", Actor("physicist.home", HOME))
        return full, done

    db, env, ids, (full, done) = seed_demo_site(tmp, more)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with running_server(db, free_port(), env=env, log=tmp / "server.log") as base:
        yield {"base": base, "chromium": chromium, "demo": ids, "full": full, "done": done, "tmp": tmp}


@pytest.fixture(scope="module")
def browser(site):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=site["chromium"], args=LAUNCH_ARGS, headless=True)
        yield b
        b.close()


def signed_in(browser, site, name: str, locale: str = "en-GB"):
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    # Bounded, but long enough for an upload on a busy 2-core CI machine (15 s timed out there).
    page.set_default_timeout(60000)
    page.goto(site["base"] + "/")
    page.fill("#token", token_of(name))
    page.press("#token", "Enter")
    page.wait_for_load_state()
    return context, page


def tab_to(page, element_id: str, limit: int = 15) -> None:
    """Press Tab until the element has the focus (keyboard only), within a bounded number of presses."""
    for _ in range(limit):
        if page.evaluate("document.activeElement.id") == element_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{element_id} not reached with {limit} Tab presses")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
def test_rtt_logs_with_keyboard_and_colleague_verifies(browser, site):
    course = site["demo"][0]  # DEMO-001: 16 of 25 delivered, assigned to the partner
    context, page = signed_in(browser, site, "rtt.partner.a")
    assert page.url.endswith("/worklist")
    assert page.locator("table.courses").get_by_text("DEMO-001").is_visible()
    assert page.locator("table.courses").get_by_text("DEMO-003").count() == 0  # not assigned to the partner
    shot(page, "rtt-worklist")
    page.click(f"a[href='/courses/{course}']")
    # pre-filled: the next fraction number and the plan's beams with their MU
    assert page.input_value("#number") == "17"
    assert page.input_value("#beam_1_mu") == "112.4" and page.input_value("#beam_2_mu") == "109.8"
    shot(page, "rtt-course")
    # keyboard only: focus the machine field, type, tab through to the submit button, press Enter
    page.focus("#machine")
    page.keyboard.press("Control+A")
    page.keyboard.type("PARTNER-TB2")
    # Tab on through the pre-filled date/time (several stops inside a datetime field) to beam 1's MU
    tab_to(page, "beam_1_mu")
    page.keyboard.press("Control+A")
    page.keyboard.type("112.0")
    tab_to(page, "note")
    page.keyboard.type("keyboard only")
    tab_to(page, "log-submit")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash")
    assert "Fraction 17 recorded" in page.inner_text(".flash")
    row = page.locator("#fraction-17")
    cells = [c.strip() for c in row.locator("td").all_inner_texts()]
    assert (cells[2], cells[3], cells[5]) == ("PARTNER-RT", "PARTNER-TB2", "rtt.partner.a")
    assert cells[6].startswith("1: 112.0, 2: 109.8")
    shot(page, "rtt-logged")
    context.close()

    context, page = signed_in(browser, site, "rtt.partner.b")
    page.goto(f"{site['base']}/courses/{course}")
    page.locator("#fraction-17 button.verify").click()
    page.wait_for_selector(".flash")
    assert "✔ rtt.partner.b" in page.locator("#fraction-17").inner_text()
    shot(page, "rtt-verified")
    context.close()


@pytest.mark.slow
def test_no_verify_button_on_ones_own_fraction(browser, site):
    course = site["demo"][1]  # DEMO-002: its last fraction (11) was logged by rtt.partner.a, not yet verified
    context, page = signed_in(browser, site, "rtt.partner.a")
    page.goto(f"{site['base']}/courses/{course}")
    assert "not verified" in page.locator("#fraction-11").inner_text()
    assert page.locator("#fraction-11 button.verify").count() == 0  # the ledger would refuse it: a colleague verifies
    shot(page, "rtt-own-fraction-no-verify")
    context.close()


@pytest.mark.slow
def test_completed_course_shows_do_not_treat_instead_of_the_form(browser, site):
    context, page = signed_in(browser, site, "rtt.partner.a", locale="fr-BE")
    page.goto(f"{site['base']}/courses/{site['done']}")
    banner = page.locator("#do-not-treat").inner_text()
    assert "Ne pas traiter" in banner and "terminé par physicist.home (AZ-HOME)" in banner
    assert "stopped early: toxicity" in banner
    assert page.locator("#log-form").count() == 0
    shot(page, "rtt-completed-do-not-treat-fr")
    context.close()


@pytest.mark.slow
def test_void_asks_for_a_confirmation_and_only_where_allowed(browser, site):
    course = site["demo"][1]  # DEMO-002: 1-8 at home (verified), 9-11 at the partner, 11 not yet verified
    context, page = signed_in(browser, site, "rtt.partner.b")
    page.goto(f"{site['base']}/courses/{course}")
    assert page.locator("#fraction-1 details.void").count() == 0  # a verified home fraction: not the partner's
    assert page.locator("#fraction-10 details.void").count() == 0  # verified: a home physicist's
    row = page.locator("#fraction-11")
    row.locator("details.void summary").click()
    row.locator("input[name=reason]").fill("logged on the wrong patient")
    row.locator("form.void button").click()  # the box is not ticked: the browser does not send it
    assert "VOIDED" not in row.inner_text()
    row.locator("input[name=confirm]").check()
    shot(page, "rtt-void-confirm")
    row.locator("form.void button").click()
    page.wait_for_selector(".flash")
    assert "Fraction 11 voided" in page.inner_text(".flash")
    assert "VOIDED" in page.locator("#fraction-11").inner_text()
    context.close()


@pytest.mark.slow
def test_31st_fraction_shows_the_reason(browser, site):
    context, page = signed_in(browser, site, "rtt.partner.a")
    page.goto(f"{site['base']}/courses/{site['full']}")
    page.fill("#number", "31")
    page.fill("#machine", "PARTNER-TB2")
    page.click("#log-submit")
    refusal = page.locator("#refusal")
    refusal.wait_for()
    text = refusal.inner_text()
    assert "outside the prescription" in text and "30 fractions planned" in text and "Do not treat" in text
    shot(page, "rtt-31st-fraction-refused")
    context.close()


@pytest.mark.slow
def test_physicist_uploads_a_course_file(browser, site):
    path = Path(site["tmp"]) / "backup-P-555.json"
    path.write_text(json.dumps(course_body(patient_id="P-555", uid="1.2.3.555", home=HOME, assigned=(PARTNER,))))
    bad = Path(site["tmp"]) / "broken.json"
    bad.write_text("{not json")
    context, page = signed_in(browser, site, "physicist.home")
    assert page.url.endswith("/physicist")
    page.set_input_files("#files", [str(path), str(bad)])
    page.click("#upload")
    results = page.locator("ul.results")
    results.wait_for()
    assert re.search(r"backup-P-555.json: registered", results.inner_text())
    assert "broken.json: not a JSON course file" in results.inner_text()
    assert page.locator("table.courses").get_by_text("P-555").is_visible()
    shot(page, "physicist-upload")
    context.close()


@pytest.mark.slow
def test_dutch_page_and_language_switch(browser, site):
    context, page = signed_in(browser, site, "rtt.partner.b", locale="nl-BE")
    assert page.locator("h1").inner_text() == "Behandelingen van PARTNER-RT"
    assert page.locator("html").get_attribute("lang") == "nl"
    shot(page, "rtt-worklist-nl")
    page.click("a[hreflang='fr']")
    assert page.locator("h1").inner_text() == "Traitements de PARTNER-RT"
    shot(page, "rtt-worklist-fr")
    context.close()


@pytest.mark.slow
def test_finance_and_admin_pages(browser, site):
    context, page = signed_in(browser, site, "finance.home")
    assert page.url.endswith("/finance") and page.locator("table.courses").is_visible()
    shot(page, "finance")
    page.goto(site["base"] + "/admin")
    assert "may not" in page.inner_text("main")
    context.close()
    context, page = signed_in(browser, site, "admin")
    page.fill("input[name=name]", "rtt.home.d")
    page.select_option("select[name=role]", "rtt")
    # an administrator adds accounts of its own centre only: the field holds it
    assert page.input_value("input[name=centre]") == HOME
    page.click("form.card button")
    assert page.locator("#new-token").inner_text().startswith("fl_")
    shot(page, "admin")
    context.close()


@pytest.mark.slow
def test_session_cookie_is_httponly_and_samesite(browser, site):
    context, page = signed_in(browser, site, "rtt.partner.b")
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["session"]["httpOnly"] and cookies["session"]["sameSite"] == "Strict"
    assert cookies["csrftoken"]["httpOnly"]
    context.close()
