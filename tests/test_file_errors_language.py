"""Why a DICOM or triage file is refused, in the reader's language: `adapters.dicom.BadFile`
carries a message code and its values (`said`) like the ledger's refusals; its English text
(`str(exc)`, the results' `error`) stays what programs read, and the pages and the command line
say `error_said` in the reader's language."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from litestar.testing import TestClient
from pydicom.data import get_testdata_file

from adapters.dicom import BadFile
from adapters.http import create_app
from tests.conftest import cli
from tests.http_support import HOME, account_name, auth, seed_accounts, token_of

DOSE = Path(get_testdata_file("rtdose.dcm"))  # an RT Dose: a DICOM object, but no RT Plan
ENGLISH = "not an RT Plan: it is a RT Dose (Modality RTDOSE)"
FRENCH = "pas un RT Plan : c'est un RT Dose (Modality RTDOSE)"
PHYS = account_name("physicist", HOME)


def test_a_bad_file_carries_its_code_and_values_and_its_english_text():
    exc = BadFile("bad_file.not_an_rt_plan", kind="RT Dose", modality="RTDOSE")
    assert str(exc) == exc.message == ENGLISH
    assert exc.said == {"code": "bad_file.not_an_rt_plan", "params": {"kind": "RT Dose", "modality": "RTDOSE"}}
    wrapped = BadFile("bad_file.unreadable", detail="pydicom's own words")
    assert str(wrapped) == "not a readable DICOM file (truncated or corrupt): pydicom's own words"
    plain = BadFile("a text that is no code")  # kept as it is, with nothing to translate
    assert str(plain) == "a text that is no code" and plain.said is None


def test_the_command_line_says_why_in_french_and_its_json_keeps_the_english_text(tmp_path):
    db = tmp_path / "ledger.sqlite3"
    fr = {"FRACTION_LEDGER_LANG": "fr"}
    said = cli("import", "plan", str(DOSE), "--centre", HOME, db=db, env=fr)
    assert said.returncode == 1
    assert FRENCH in said.stdout and ENGLISH not in said.stdout
    as_json = cli("import", "plan", str(DOSE), "--centre", HOME, "--json", db=db, env=fr)
    (answer,) = json.loads(as_json.stdout)
    assert answer["status"] == "error" and answer["error"] == ENGLISH
    assert answer["error_said"]["code"] == "bad_file.not_an_rt_plan"
    english = cli("import", "plan", str(DOSE), "--centre", HOME, db=db, env={"FRACTION_LEDGER_LANG": "en"})
    assert ENGLISH in english.stdout


def signed_in_french(site) -> str:
    """Sign the physicist in on the pages, in French; the form token for the next posts."""
    site.cookies["lang"] = "fr"
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', site.get("/").text).group(1)
    assert site.post("/", data={"token": token_of(PHYS), "_csrf_token": csrf}).status_code == 200
    return csrf


def test_the_import_page_says_why_in_french_and_the_api_keeps_the_english_text(ledger):
    seed_accounts(ledger.app)
    files = [("files", (DOSE.name, DOSE.read_bytes(), "application/dicom"))]
    with TestClient(create_app(ledger)) as site:
        csrf = signed_in_french(site)
        page = site.post("/physicist/dicom/plans", data={"_csrf_token": csrf}, files=files)
        assert page.status_code == 200, page.text[:500]
        results = html.unescape(page.text.split('id="file-results"')[1].split("</ul>")[0])
        assert FRENCH in results and ENGLISH not in results

        site.cookies.clear()
        api = site.post("/api/imports/plans", headers={**auth(PHYS), "Accept-Language": "fr"}, files=files)
        assert api.status_code == 200, api.text
        (answer,) = api.json()
        assert answer["error"] == ENGLISH and answer["error_said"]["code"] == "bad_file.not_an_rt_plan"


def test_the_recovery_page_says_why_a_file_is_unreadable_in_french(ledger):
    seed_accounts(ledger.app)
    files = [("files", (DOSE.name, DOSE.read_bytes(), "application/dicom"))]
    with TestClient(create_app(ledger)) as site:
        csrf = signed_in_french(site)
        page = site.post("/physicist/recovery", data={"_csrf_token": csrf, "output": "page"}, files=files)
        assert page.status_code == 200, page.text[:500]
        text = html.unescape(page.text)
        assert "pas un enregistrement de traitement RT : c'est un RT Dose" in text
        assert "not an RT treatment record" not in text
