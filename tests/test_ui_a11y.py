"""Every page in a real browser (Debian's chromium, headless, Playwright), in English, Dutch and
French: axe-core (npm) finds no serious or critical accessibility violation; a screenshot of each
goes to test-artifacts/screenshots/; at 768 px nothing runs off the screen and Verify/Void stay
reachable; the print stylesheet leaves menus and forms out (PDFs in test-artifacts/print/); the
day is worked with the keyboard alone, from the focus the page sets on load.

axe-core is installed with npm into a cache folder on first use (FRACTION_LEDGER_AXE_DIR, default
~/.cache/fraction-ledger/axe); without npm or network the test skips, and under CI=true it fails."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.service import Actor
from tests.conftest import ROOT, free_port, missing_peer, require_module, require_tool
from tests.http_support import T0, UI_HOME, UI_PARTNER, course_body, running_server, seed_demo_site, token_of
from tests.test_ui_browser import browser  # noqa: F401 (browser: fixture, launched on this module's site)

SHOTS = ROOT / "test-artifacts" / "screenshots"
PRINTS = ROOT / "test-artifacts" / "print"
AXE_DIR = Path(os.environ.get("FRACTION_LEDGER_AXE_DIR", Path.home() / ".cache" / "fraction-ledger" / "axe"))
LANGS = {"en": "en-GB", "nl": "nl-BE", "fr": "fr-BE"}
SERIOUS = ("serious", "critical")


def axe_script() -> str:
    """axe-core's browser script, installed with npm into AXE_DIR when not there yet."""
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    AXE_DIR.mkdir(parents=True, exist_ok=True)
    with (AXE_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the suite's workers (pytest-xdist) install it once, not at once
        if not script.exists():
            npm = shutil.which("npm")
            if npm is None:
                missing_peer("npm (to install axe-core)")
            subprocess.run([npm, "install", "--prefix", str(AXE_DIR), "--no-audit", "--no-fund", "axe-core@4"],
                           capture_output=True, timeout=300, check=False)
    if not script.exists():
        missing_peer(f"axe-core (npm install --prefix {AXE_DIR} axe-core@4)")
    return script.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    chromium = require_tool("chromium")
    require_module("playwright")
    axe = axe_script()
    tmp = tmp_path_factory.mktemp("ui-a11y")

    def more(ledger, ids):
        app = ledger.app
        app.billing.agree({"billing_centre": UI_HOME, "partner": UI_PARTNER, "rule": "pro-rata", "course_amount": "3150.00",
                   "valid_from": "2026-01-01"}, Actor("finance.home", UI_HOME))
        done = app.register_course(course_body(patient_id="DONE-005", uid="1.2.3.5", fractions=5, assigned=(UI_PARTNER,),
                                               home=UI_HOME), Actor("setup", UI_HOME))["id"]
        for k in range(1, 6):
            centre = UI_HOME if k <= 3 else UI_PARTNER
            app.log_fraction(done, {"number": k, "centre": centre, "machine": "LINAC", "operator": "rtt.x",
                                    "delivered_at": T0 + timedelta(days=k - 30)}, Actor("rtt.x", centre))
        app.complete_course(done, "all fractions delivered", Actor("physicist.home", UI_HOME))
        return done

    db, env, ids, done = seed_demo_site(tmp, more)
    SHOTS.mkdir(parents=True, exist_ok=True)
    PRINTS.mkdir(parents=True, exist_ok=True)
    with running_server(db, free_port(), env=env, log=tmp / "server.log") as base:
        yield {"base": base, "chromium": chromium, "demo": ids, "done": done, "axe": axe}


def session(browser, site, name: str | None, lang: str = "en", width: int = 1280, **extra):
    # bypass_csp: the test injects axe-core's script, which the pages' own policy (scripts from the server only) refuses
    context = browser.new_context(locale=LANGS[lang], viewport={"width": width, "height": 900}, bypass_csp=True, **extra)
    page = context.new_page()
    page.set_default_timeout(60000)
    page.goto(site["base"] + "/")
    if name:
        page.fill("#token", token_of(name))
        page.press("#token", "Enter")
        page.wait_for_load_state()
    return context, page


def violations(page, axe: str) -> list[dict]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe)
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))""")
    return [v for v in found if v["impact"] in SERIOUS]


def pages_of(site) -> dict[str | None, list[tuple[str, str]]]:
    demo = site["demo"]
    return {
        None: [("sign-in", "/")],
        "rtt.partner.b": [("rtt-day", "/worklist"), ("rtt-day-filtered", "/worklist?q=peeters&sort=triage&dir=desc"),
                          ("rtt-course", f"/courses/{demo[1]}"), ("rtt-course-done", f"/courses/{site['done']}"),
                          ("rtt-not-found", "/courses/no-such-course"), ("rtt-day-list", "/day-list"),
                          ("rtt-calls", "/calls")],
        "physicist.home": [("physicist", "/physicist"), ("physicist-course", f"/courses/{demo[0]}"),
                           ("physicist-exports", "/physicist/exports"), ("physicist-recovery", "/physicist/recovery"),
                           ("physicist-plan", "/physicist/plan"), ("physicist-centres", "/centres")],
        "finance.home": [("finance", "/finance?from=2026-01-01&to=2027-12-31"),
                         ("finance-statement", "/finance/statement?from=2026-01-01&to=2027-12-31")],
        "admin": [("admin", "/admin"), ("admin-access-log", "/access-log")],
    }


@pytest.mark.slow
@pytest.mark.parametrize("lang", list(LANGS))
def test_every_page_has_no_serious_accessibility_violation_and_a_screenshot(browser, site, lang):
    found = {}
    for name, pages in pages_of(site).items():
        context, page = session(browser, site, name, lang)
        for label, path in pages:
            page.goto(site["base"] + path)
            page.wait_for_load_state()
            assert page.locator("html").get_attribute("lang") == lang
            page.screenshot(path=str(SHOTS / f"{label}-{lang}.png"), full_page=True)
            bad = violations(page, site["axe"])
            if bad:
                found[path] = bad
        context.close()
    # a refusal with a field error next to its field is a page too
    context, page = session(browser, site, "rtt.partner.b", lang)
    page.goto(f"{site['base']}/courses/{site['demo'][0]}")
    page.fill("#beam_1_mu", "abc")
    page.click("#log-submit")
    page.wait_for_selector(".field-error")
    assert page.evaluate("document.activeElement.id") == "beam_1_mu"  # the focus goes to the field to correct
    page.screenshot(path=str(SHOTS / f"rtt-field-error-{lang}.png"), full_page=True)
    bad = violations(page, site["axe"])
    if bad:
        found["field error"] = bad
    context.close()
    assert found == {}, found


@pytest.mark.slow
def test_768px_nothing_runs_off_screen_and_verify_and_void_are_reachable(browser, site):
    context, page = session(browser, site, "rtt.partner.b", width=768)
    for path in ("/worklist", f"/courses/{site['demo'][1]}"):
        page.goto(site["base"] + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 768, path
    row = page.locator("#fraction-11")
    for control in (row.locator("button.verify"), row.locator("details.void summary")):
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 768
    page.screenshot(path=str(SHOTS / "rtt-course-768.png"), full_page=True)
    context.close()
    context, page = session(browser, site, "physicist.home", width=1280)
    page.goto(site["base"] + "/physicist")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    context.close()


@pytest.mark.slow
def test_print_stylesheet_for_course_day_list_and_statement(browser, site):
    for name, label, path, kept in (
            ("rtt.partner.b", "course", f"/courses/{site['demo'][1]}", "table.history"),
            ("rtt.partner.b", "day-list", "/worklist", "table.courses"),
            ("finance.home", "statement", "/finance/statement?from=2026-01-01&to=2027-12-31", "table#statement")):
        context, page = session(browser, site, name)
        page.goto(site["base"] + path)
        page.emulate_media(media="print")
        assert page.locator("header").is_hidden() and page.locator(kept).is_visible()
        assert all(not f.is_visible() for f in page.locator("main form").all())
        page.pdf(path=str(PRINTS / f"{label}.pdf"), format="A4")
        context.close()


@pytest.mark.slow
def test_the_day_with_the_keyboard_only(browser, site):
    context, page = session(browser, site, "rtt.partner.b")
    assert page.evaluate("document.activeElement.id") == "q"  # focus on load: the search field
    page.keyboard.type("janssens")
    page.keyboard.press("Enter")
    page.wait_for_url("**/worklist?q=janssens*")
    assert page.locator("table.courses tbody tr").count() == 1
    # Tab to the course (past the filters), Enter opens it
    for _ in range(30):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('table.courses tbody') !== null"):
            break
    else:
        raise AssertionError("the course link was not reached with the keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url("**/courses/**")
    # the verify queue: reached from the menu, a colleague's fraction verified with Enter
    page.goto(site["base"] + "/worklist#verify-queue")
    button = page.locator("#verify-queue button.verify").first
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash")
    assert "verified" in page.inner_text(".flash")
    context.close()
