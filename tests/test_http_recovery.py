"""Recovery over HTTP: a physicist uploads the restored OIS's records and gets what the OIS
lacks (JSON and the printable report), downloads the import set, and acknowledges it; the
next reconciliation is clean once the OIS has the set. Only the caller's home courses count."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from litestar.testing import TestClient

from adapters.http import create_app
from tests.http_support import HOME, OTHER, PARTNER, account_name, auth, seed_accounts
from tests.test_recovery import PATIENTS, deliver, register, snapshot

PHYS_H, PHYS_P = account_name("physicist", HOME), account_name("physicist", PARTNER)


def upload(folder: Path) -> list:
    return [("files", (p.name, p.read_bytes(), "application/dicom")) for p in sorted(folder.rglob("*.dcm"))]


def test_reconcile_import_set_acknowledge_then_clean(ledger, tmp_path):
    seed_accounts(ledger.app)
    courses = {pid: register(ledger, pid) for pid in PATIENTS}
    for course in courses.values():
        deliver(ledger, course, 1, 0)
    ois = snapshot(ledger, tmp_path / "ois")
    lost = deliver(ledger, courses["P-B"], 2, 1, PARTNER)  # logged after the OIS's restore point
    with TestClient(create_app(ledger)) as api:
        r = api.post("/api/reconcile?restore_point=2026-11-02T12:00:00%2B01:00", headers=auth(PHYS_H),
                     files=upload(ois) + [("files", ("notes.txt", b"not dicom", "text/plain"))])
        assert r.status_code == 200, r.text
        result = r.json()
        assert [(m["patient_id"], m["fraction_number"]) for m in result["missing_in_ois"]] == [("P-B", 2)]
        assert result["totals"]["courses"] == 4 and result["unreadable_files"][0]["file"] == "notes.txt"
        # another centre has no home course here: nothing of HOME's is shown to it
        other = api.post("/api/reconcile", headers=auth(account_name("physicist", OTHER)), files=upload(ois)).json()
        assert other["totals"]["courses"] == 0 and other["missing_in_ois"] == []
        report = api.post("/api/reconcile/report", headers=auth(PHYS_H), files=upload(ois))
        assert report.headers["content-type"].startswith("text/html") and "P-B" in report.text
        r = api.post("/api/reconcile?mu_tolerance=lots", headers=auth(PHYS_H), files=upload(ois))
        assert r.status_code == 400 and r.json()["fields"][0]["field"] == "mu_tolerance"

        r = api.post("/api/reconcile/import-set", headers=auth(PHYS_H), files=upload(ois))
        archive = zipfile.ZipFile(io.BytesIO(r.content))
        manifest = json.loads(archive.read("import-set.json"))
        assert [(i["course_id"], i["number"], i["record_ids"]) for i in manifest["items"]] == [
            (courses["P-B"], 2, [lost["record_id"]])]
        # the OIS imports the set; the partner's physicist may not acknowledge for the home centre
        assert api.post("/api/reconcile/acknowledge", headers=auth(PHYS_P), json=manifest).status_code == 403
        r = api.post("/api/reconcile/acknowledge", headers=auth(PHYS_H), json=manifest)
        assert r.status_code == 200 and (r.json()["status"], r.json()["by"], r.json()["fractions"]) == (
            "acknowledged", PHYS_H, 1)
        assert api.post("/api/reconcile/acknowledge", headers=auth(PHYS_H), json=manifest).json()["status"] == "unchanged"
        restored = tmp_path / "ois-after"
        archive.extractall(restored)
        (restored / "import-set.json").unlink()
        for name in ("record", "summary"):
            for p in ois.rglob(f"{name}*.dcm"):
                target = restored / p.relative_to(ois)
                if not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(p.read_bytes())
        clean = api.post("/api/reconcile", headers=auth(PHYS_H), files=upload(restored)).json()
        assert clean["missing_in_ois"] == [] and clean["conflicts"] == [] and clean["unknown_to_ledger"] == []


def test_the_printable_report_is_in_the_language_the_client_reads(ledger, tmp_path):
    seed_accounts(ledger.app)
    course = register(ledger, "P-A")
    deliver(ledger, course, 1, 0)
    ois = snapshot(ledger, tmp_path / "ois")
    deliver(ledger, course, 2, 1)
    with TestClient(create_app(ledger)) as api:
        french = api.post("/api/reconcile/report", headers={**auth(PHYS_H), "Accept-Language": "fr-BE,fr;q=0.9"},
                          files=upload(ois)).text
        assert '<html lang="fr">' in french and "Manquantes dans l&#39;OIS" in french
        assert f"envoi par {PHYS_H}" in french and "Missing in the OIS" not in french
        dutch = api.post("/api/reconcile/report", headers={**auth(PHYS_H), "Accept-Language": "nl"}, files=upload(ois)).text
        assert "Ontbreekt in het OIS" in dutch and "Gecontroleerd door:" in dutch
        english = api.post("/api/reconcile/report", headers=auth(PHYS_H), files=upload(ois)).text
        assert "Missing in the OIS" in english and f"upload by {PHYS_H}" in english
