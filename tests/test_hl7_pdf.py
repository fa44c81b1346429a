"""The treatment summary PDF: readable text with everything a person needs, deterministic."""

from __future__ import annotations

from datetime import datetime, timezone
from io import BytesIO

import pytest
from pypdf import PdfReader

from adapters.hl7.pdf import treatment_summary
from adapters.runtime import Ledger
from tests.conftest import Clock
from tests.hl7_scenario import HOME, PARTNER, PHYSICIST, deliver, register

DONE = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)


@pytest.fixture
def course(tmp_path, monkeypatch):
    monkeypatch.delenv("FRACTION_LEDGER_READ_DB", raising=False)
    with Ledger(str(tmp_path / "l.sqlite3"), clock=Clock()) as book:
        app = book.app
        cid = register(app, "PDF-1", "MÜLLER-LEFÈVRE^ZOË", fractions=3)
        deliver(app, cid, 1, HOME)
        deliver(app, cid, 2, PARTNER)
        deliver(app, cid, 3, PARTNER, verify=False)
        app.void_fraction(cid, 3, "logged on the wrong day", "rtt.x", PHYSICIST)
        yield book.fresh().course(cid)


def text_of(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)


def test_summary_names_patient_plans_every_fraction_and_verifications(course):
    pdf = treatment_summary(course, DONE)
    text = text_of(pdf)
    assert "MÜLLER-LEFÈVRE ZOË" in text and "PDF-1" in text and HOME in text
    squeezed = "".join(text.split())  # table cells wrap long values over lines
    assert "PlanPDF-1" in squeezed and course["plan_uid"] in squeezed
    for day, centre in (("2026-11-02", HOME), ("2026-11-03", PARTNER), ("2026-11-04", PARTNER)):
        assert day in text
    assert "TB2|bunker3" in squeezed and "HOME-LINAC-1" in squeezed
    assert "191.4" in text  # MU delivered per fraction: 95.1 + 96.3
    assert "verifiedbyrtt.az-home.checker" in squeezed and "verifiedbyrtt.partner-rt.checker" in squeezed
    assert "VOID:loggedonthewrongday" in squeezed
    assert "No incident recorded" in text


def test_incidents_given_by_the_hook_are_listed(course):
    incidents = [{"at": "2026-11-03T10:00:00+01:00", "centre": PARTNER, "severity": 2,
                  "summary": "Couch shift of 5 mm corrected before beam-on"}]
    text = text_of(treatment_summary(course, DONE, incidents))
    assert "Couch shift of 5 mm" in text and "No incident recorded" not in text


def test_same_course_gives_the_same_bytes(course):
    assert treatment_summary(course, DONE) == treatment_summary(course, DONE)
    assert treatment_summary(course, DONE) != treatment_summary(course, DONE.replace(day=2))


def test_summary_is_written_in_its_readers_language(course):
    """The document's words, dates and numbers in French or Dutch; the values themselves unchanged."""
    french = text_of(treatment_summary(course, DONE, lang="fr"))
    assert "Résumé du traitement de radiothérapie" in french and "MÜLLER-LEFÈVRE ZOË" in french
    assert "Aucun incident enregistré" in french and "No incident recorded" not in french
    assert "191,4" in french and "02/11/2026" in french or "2/11/2026" in french
    squeezed = "".join(french.split())
    assert "ANNULÉE:loggedonthewrongday" in squeezed and "vérifiéeparrtt.az-home.checker" in squeezed
    dutch = text_of(treatment_summary(course, DONE, lang="nl"))
    assert "Samenvatting van de radiotherapiebehandeling" in dutch and "Geen incident geregistreerd" in dutch
    assert "191,4" in dutch and "ONGELDIG" in dutch
    assert treatment_summary(course, DONE) == treatment_summary(course, DONE, lang="en")


def test_the_amendments_are_written_in_the_readers_language(ledger):
    from datetime import timedelta

    from tests.test_gaps_exports import DAY1, HOME, ONC_A, amended, log, register

    cid = register(ledger)
    log(ledger, cid, 1, HOME)
    amended(ledger, cid)
    ledger.app.gaps.amend_prescription(cid, {"kind": "twice_daily", "day": (DAY1 + timedelta(days=7)).date().isoformat(),
                                        "reason": "compensation day"}, ONC_A)
    course = ledger.fresh().course(cid)
    french = text_of(treatment_summary(course, DAY1 + timedelta(days=30), lang="fr"))
    assert "6 fractions prévues (modifiée ; initialement 5)" in french
    assert "Modifications de la prescription" in french and "groupe 1 : 5 -> 6 fractions" in french
    assert "non contresignée : pas en vigueur" in french and "deux fractions le" in french
    dutch = text_of(treatment_summary(course, DAY1 + timedelta(days=30), lang="nl"))
    assert "Wijzigingen van het voorschrift" in dutch and "twee fracties op" in dutch
