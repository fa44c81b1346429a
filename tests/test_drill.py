"""The drill (issue 19): one command rehearses a whole outage through the product's interfaces
(the DICOM listener, the HTTP API of a `serve` process, the command line) and reports what held.

A small drill passes with every check and writes its report; the same seed gives the same checks
and counts; and a ledger whose duplicate-fraction rule is broken makes the drill fail. The rule is
broken without touching the product: a `sitecustomize` module on PYTHONPATH, which Python imports
at the start of every process (the drill, and the server and listener it starts), replaces
`Course.check_not_delivered` with a no-op.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import cli, require_tool

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
SMALL = ("--courses", "6", "--partners", "2", "--seed", "7")


def run_drill(out: Path, *extra: str, env: dict | None = None):
    proc = cli("drill", *SMALL, "--out", str(out), *extra, env=env, timeout=900)
    summary = json.loads((out / "summary.json").read_text())
    return proc, summary


def facts(summary: dict) -> tuple:
    """What a seed decides: every check with its expected and found values, and the counts."""
    return ([(c["phase"], c["check"], c["expected"], c["found"], c["ok"]) for c in summary["checks"]],
            summary["counts"])


@pytest.fixture(scope="module")
def small_drill(tmp_path_factory):
    require_tool("storescp")  # the drill sends to a real storescp (a failure under CI when missing)
    out = tmp_path_factory.mktemp("drill") / "run"
    return (out, *run_drill(out))


def test_a_small_drill_passes_every_check_and_writes_its_report(small_drill):
    from pypdf import PdfReader

    out, proc, summary = small_drill
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert summary["passed"] and all(c["ok"] for c in summary["checks"])
    names = [c["check"] for c in summary["checks"]]
    for story in ("REX 3 late re-registration", "REX 3 extra fraction beyond the prescription is refused",
                  "REX 3: the lost day's fractions listed", "St. Luc: every session lost",
                  "two centres racing", "re-plan", "continuation count once",
                  "DICOM send to storescp", "HL7 send over MLLP", "billing", "near-miss", "hash chain is intact"):
        assert any(story in n for n in names), story
    assert summary["skipped"] == []
    assert summary["counts"]["live attempts refused by the rules"] == 6
    assert "live attempts wrongly accepted" not in summary["counts"]
    assert [t["phase"][:2] for t in summary["timeline"]] == ["0 ", "1 ", "2a", "2b", "2c", "2d", "3 ", "4a", "4b",
                                                             "4c", "4d", "4e", "5 "]
    assert f"PASS: {len(names)} of {len(names)} checks passed" in proc.stdout

    page = (out / "report.html").read_text()
    assert page.count("<tr class=ok>") == len(names) and "<tr class=fail>" not in page
    text = " ".join(p.extract_text() for p in PdfReader(out / "report.pdf").pages)
    flat = " ".join(text.split())
    assert f"PASS: {len(names)} of {len(names)} checks passed" in flat
    for name in ("an RTT verifying its own fraction is refused", "the hash chain is intact", "Timeline", "Counts"):
        assert name in flat, name


def test_the_same_seed_gives_the_same_checks_and_counts(small_drill, tmp_path):
    _, _, first = small_drill
    proc, again = run_drill(tmp_path / "again")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert facts(again) == facts(first)


def test_a_broken_duplicate_rule_makes_the_drill_fail(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import ledger.course\n"
        "ledger.course.Course.check_not_delivered = lambda self, group, number: None\n")
    proc, summary = run_drill(tmp_path / "broken", "--peers", "none", "--lang", "nl",
                              env={"PYTHONPATH": f"{hook}:{ROOT}"})
    assert proc.returncode == 1
    failed = {c["check"] for c in summary["checks"] if not c["ok"]}
    assert any("a fraction logged twice is refused" in n for n in failed)
    assert any("two centres racing" in n for n in failed)
    assert summary["counts"]["live attempts wrongly accepted"] >= 2
    assert "FAIL:" in proc.stdout and (tmp_path / "broken" / "report.pdf").exists()
    page = (tmp_path / "broken" / "report.html").read_text()  # the report in Dutch, as asked
    assert "Uitvaloefening" in page and "<td>MISLUKT</td>" in page and "controles geslaagd" in page
    # the checks, phases and counts too: "a fraction logged twice is refused", "fractions logged over HTTP"
    assert "een twee keer geregistreerde fractie wordt geweigerd" in page and "fracties geregistreerd via HTTP" in page
    assert "2b partners registreren en controleren (API), fouten geweigerd" in page
    assert "overgeslagen (--peers none)" in page
    assert any(s["text"].endswith("(--peers none)") for s in summary["skipped"])
