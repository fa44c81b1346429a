"""The finance, exports and incident pages in a real browser (Debian's chromium driven by
Playwright): finance downloads a statement CSV; a physicist downloads the HL7 zip, sends
to an MLLP receiver started here (python-hl7, 127.0.0.1) and sees per destination what was
accepted and what was refused with the receiver's reason; a partner RTT registers an
incident on the course page. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from ledger.service import Actor
from tests.conftest import CLOCK_MONTH, free_port, require_module, require_tool
from tools.hl7_receiver import Receiver
from tests.http_support import T0, course_body, running_server, seed_demo_site
from tests.test_ui_browser import ACCOUNTS, HOME, PARTNER, browser, shot, signed_in  # noqa: F401 (browser: fixture)

HIS_REFUSAL = "Patient unknown in HIS"


def refuse_summaries(message, seen):
    return ("AR", HIS_REFUSAL) if str(message.segment("MSH")[9]).startswith("MDM") else ("AA", "")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    chromium = require_tool("chromium")
    require_module("playwright")
    tmp = tmp_path_factory.mktemp("ui-ops")

    def more(ledger, ids):
        app = ledger.app
        app.billing.agree({"billing_centre": HOME, "partner": PARTNER, "rule": "pro-rata", "course_amount": "3000.00",
                   "valid_from": "2026-01-01"}, Actor("finance.home", HOME))
        done = app.register_course(course_body(patient_id="FIN-010", uid="1.2.3.10", fractions=10,
                                               assigned=(PARTNER,), home=HOME), Actor("setup", HOME))["id"]
        for k in range(1, 11):
            centre = HOME if k <= 6 else PARTNER
            app.log_fraction(done, {"number": k, "centre": centre, "machine": f"{centre}-LINAC", "operator": "rtt",
                                    "delivered_at": T0 + timedelta(days=k - 20)}, Actor("rtt", centre))
        app.complete_course(done, "course done", Actor("physicist.home", HOME))
        # the home OIS as restored: what the ledger held until now; then one more fraction is logged
        from adapters.dicom.export import export_all

        list(export_all(app, ledger.fresh(), tmp / "ois", kinds=("record", "summary")))
        app.log_fraction(ids[2], {"number": 3, "centre": HOME, "machine": "HOME-LINAC-1", "operator": "rtt.home.a",
                                  "delivered_at": T0 + timedelta(hours=2)}, Actor("rtt.home.a", HOME))
        return done

    db, env, ids, done = seed_demo_site(tmp, more)
    config = tmp / "hl7.toml"
    from tests.test_dicom_send import LoopbackStorescp

    ois = LoopbackStorescp(tmp / "ois-received")
    dicom = tmp / "dicom.toml"
    dicom.write_text(f'[destinations.ois]\nhost = "127.0.0.1"\nport = {ois.port}\ncalled_aet = "OIS"\ntimeout = 10\n')
    with Receiver(refuse_summaries) as receiver:
        config.write_text("".join(
            f'[destinations.{name}]\nmessages = ["{kind}"]\napplication = "{app_name}"\nhost = "127.0.0.1"\n'
            f"port = {receiver.port}\ntimeout = 5\nattempts = 2\n"
            for name, kind, app_name in (("billing", "DFT", "BILLING"), ("his", "MDM", "HIS"),
                                         ("pacs", "ADT", "CLOUD-PACS"))))
        try:
            with running_server(db, free_port(), env=env, log=tmp / "server.log",
                                extra=("--hl7-config", str(config), "--dicom-config", str(dicom))) as base:
                yield {"base": base, "chromium": chromium, "demo": ids, "done": done, "tmp": tmp, "receiver": receiver,
                       "ois": ois}
        finally:
            ois.close()


@pytest.mark.slow
def test_finance_downloads_a_statement_csv(browser, site):
    context, page = signed_in(browser, site, "finance.home")
    assert page.url.endswith("/finance")
    first, last = (d.isoformat() for d in CLOCK_MONTH)
    page.fill("#from", first)
    page.fill("#to", last)
    page.fill("#pair", f"{HOME}:{PARTNER}")
    page.click("#show-statement")
    page.wait_for_selector("table#statement")
    assert f"{HOME} owes {PARTNER} EUR 1200.00" in page.inner_text("#balances")
    assert "EUR 3000.00" in page.inner_text("#totals")
    shot(page, "finance-statement")
    with page.expect_download() as info:
        page.click("#statement-csv")
    download = info.value
    assert download.suggested_filename == f"statement-{first}-{last}-{HOME}-{PARTNER}.csv"
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert [(r["record"], r["centre"] or r["creditor"], r["amount"]) for r in rows] == [
        ("line", HOME, "1800.00"), ("line", PARTNER, "1200.00"), ("balance", PARTNER, "1200.00"), ("total", "", "3000.00")]
    # a wrong period is explained on the page, in the user's language
    page.goto(site["base"] + f"/finance?from={last}&to={first}")
    assert "is before" in page.inner_text("#refusal")
    context.close()


@pytest.mark.slow
def test_physicist_exports_hl7_and_sees_each_destinations_answer(browser, site):
    context, page = signed_in(browser, site, "physicist.home")
    page.click("a[href='/physicist/exports']")
    assert page.locator("#delivery-billing").is_visible()
    with page.expect_download() as info:
        page.click("#hl7-download")
    names = zipfile.ZipFile(info.value.path()).namelist()
    assert info.value.suggested_filename == f"hl7-{HOME}.zip"
    assert {n.split("/")[0] for n in names} == {"billing", "his", "pacs"}  # FIN-010 is completed: summary and purge
    page.select_option("#hl7-destination", "")
    page.click("#hl7-send")
    results = page.locator("#send-results")
    results.wait_for()
    text = results.inner_text()
    assert f"billing (127.0.0.1:{site['receiver'].port})" in text and HIS_REFUSAL in text
    billing = [c.strip() for c in page.locator("#delivery-billing td").all_inner_texts()]
    assert int(billing[3]) == sum(n.startswith("billing/") for n in names) and billing[4].startswith("0")
    his = page.locator("#delivery-his").inner_text()
    assert "AR" in his and HIS_REFUSAL in his
    shot(page, "physicist-hl7-send")
    # the receiver really got them, each once
    assert len(site["receiver"].received) == len(names) == len(set(site["receiver"].received))
    context.close()


@pytest.mark.slow
def test_partner_rtt_registers_an_incident_on_the_course_page(browser, site):
    course = site["demo"][0]
    context, page = signed_in(browser, site, "rtt.partner.a")
    page.goto(f"{site['base']}/courses/{course}")
    # the demo's refused re-registration of fraction 12 is there as a near-miss
    near_miss = page.locator("table.incidents tr", has_text="Near-miss").inner_text()
    assert "rtt.home.c" in near_miss and "12" in near_miss
    page.select_option("#incident-category", "positioning")
    page.select_option("#incident-severity", "medium")
    page.fill("#incident-fraction", "17")
    page.fill("#incident-description", "Mask too tight, remade before treatment")
    page.click("#incident-submit")
    page.wait_for_selector(".flash")
    row = page.locator("table.incidents tr", has_text="Mask too tight")
    assert "PARTNER-RT" in row.inner_text() and "rtt.partner.a" in row.inner_text() and "Positioning" in row.inner_text()
    shot(page, "rtt-incident")
    # an empty description is refused, naming the field, and the form keeps what was typed
    page.fill("#incident-fraction", "18")
    page.evaluate("document.querySelector('#incident-description').removeAttribute('required')")
    page.click("#incident-submit")
    assert "description" in page.inner_text("#refusal")
    assert page.input_value("#incident-fraction") == "18"
    context.close()


@pytest.mark.slow
def test_physicist_uploads_an_rt_plan_and_sees_the_course(browser, site):
    from pydicom.data import get_testdata_file

    plan = Path(get_testdata_file("rtplan.dcm"))
    broken = Path(site["tmp"]) / "truncated.dcm"
    broken.write_bytes(plan.read_bytes()[:600])
    context, page = signed_in(browser, site, "physicist.home")
    assert page.locator("table.courses").get_by_text("id00001").count() == 0
    page.set_input_files("#plan-files", [str(plan), str(broken)])
    page.select_option("#plan-triage", "2")
    page.click("#upload-plans")
    results = page.locator("#file-results")
    results.wait_for()
    text = results.inner_text()
    assert "rtplan.dcm: registered" in text
    assert "truncated" in page.locator("#file-results li.refusal", has_text="truncated.dcm").inner_text()
    row = page.locator("table.courses tr", has_text="id00001")
    assert row.is_visible() and f"{HOME}" in row.inner_text() and "0 / 30" in row.inner_text()
    shot(page, "physicist-rtplan-upload")
    # the course page opens from the list
    row.locator("a").first.click()
    assert "id00001" in page.locator("h1").inner_text()
    context.close()


@pytest.mark.slow
def test_physicist_sends_dicom_and_sees_the_ois_accept(browser, site):
    context, page = signed_in(browser, site, "physicist.home")
    page.goto(site["base"] + "/physicist/exports")
    with page.expect_download() as info:
        page.click("#dicom-download")
    names = zipfile.ZipFile(info.value.path()).namelist()
    assert any(n.endswith("summary.dcm") for n in names) and any("/record_" in n for n in names)
    page.select_option("#dicom-destination", "ois")
    page.click("#dicom-send")
    page.locator("#send-results").wait_for()
    assert f"ois (dicom://OIS@127.0.0.1:{site['ois'].port})" in page.inner_text("#send-results")
    cells = [c.strip() for c in page.locator("#delivery-ois td").all_inner_texts()]
    assert cells[1] == "DICOM" and int(cells[3]) == len(names) and cells[4].startswith("0")
    assert len(site["ois"].received()) == len(names)
    shot(page, "physicist-dicom-send")
    context.close()


@pytest.mark.slow
def test_physicist_reconciles_the_restored_ois_and_acknowledges_the_import_set(browser, site):
    import json

    ois = sorted(str(p) for p in (Path(site["tmp"]) / "ois").rglob("*.dcm"))
    context, page = signed_in(browser, site, "physicist.home")
    page.click("a[href='/physicist/recovery']")
    page.set_input_files("#ois-files", ois)
    page.click("#reconcile")
    page.locator("#reconcile-result").wait_for()
    assert "missing in the OIS 1" in page.inner_text("#reconcile-totals")
    row = page.locator("table.missing tr", has_text="DEMO-003").inner_text()
    assert "3" in row and HOME in row
    shot(page, "physicist-reconcile")
    # the same files, another button: the import set of exactly what the OIS lacks
    page.set_input_files("#ois-files", ois)
    with page.expect_download() as info:
        page.click("#reconcile-import-set")
    archive = zipfile.ZipFile(info.value.path())
    manifest = json.loads(archive.read("import-set.json"))
    assert [(i["number"], i["course_id"]) for i in manifest["items"]] == [(3, site["demo"][2])]
    path = Path(site["tmp"]) / "import-set.json"
    path.write_bytes(archive.read("import-set.json"))
    page.set_input_files("#manifest", str(path))
    page.click("#acknowledge")
    assert "acknowledged by physicist.home" in page.inner_text("#acknowledged")
    context.close()
