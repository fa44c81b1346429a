"""The recovery and DICOM-import benchmarks at a tiny size: they run as `fraction-ledger bench ...`,
measure in child processes, and check what they measure (the reconciliation finds exactly the
records removed from the OIS; the import logs every file). No figure is asserted: speed
targets live in the benchmarks, never in tests."""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli
from tools.bench_recovery import table


@pytest.mark.slow
def test_bench_recovery_finds_exactly_the_removed_records_at_both_sizes():
    proc = cli("bench", "recovery", "--fractions", "200", "--small", "100", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    small, big = report["sizes"]
    for row, fractions in ((small, 100), (big, 200)):
        removed = round(fractions * 0.05)
        assert row["fractions"] == fractions and row["courses"] == fractions // 20
        assert row["removed"] == removed and row["files"] == fractions - removed
        assert row["missing_in_ois"] == removed and row["missing_equals_removed"] is True
        assert row["unknown_to_ledger"] == row["conflicts"] == row["unreadable_files"] == 0
        assert row["seconds"] > 0 and row["peak_rss_mib"] >= row["base_rss_mib"] > 0
        # The reading phase lies within the run.
        assert 0 <= row["first_file_after"] <= row["last_file_after"] <= row["seconds"]
    assert report["exact"] is True
    assert report["growth"]["fractions"] == 2
    assert report["growth"]["time"] == big["seconds"] / small["seconds"]
    lines = table(report["sizes"]).splitlines()
    assert len(lines) == 4 and all(line.count("|") == 10 for line in lines)
    assert "5 / 5 exact" in lines[2] and "10 / 10 exact" in lines[3]


@pytest.mark.slow
def test_bench_dicom_import_logs_every_file_and_shows_progress():
    proc = cli("bench", "dicom", "--part", "import", "--import-small", "25", "--import-files", "50", "--json",
               timeout=300)
    assert proc.returncode == 0, proc.stderr
    imports = json.loads(proc.stdout)["import_records"]
    assert set(imports["runs"]) == {"25", "50"}
    for n, run in imports["runs"].items():
        assert run["files"] == run["fractions_logged"] == int(n)
        assert run["peak_rss_mib"] > 20  # the child's own peak (a Python process with pydicom loaded)
        assert run["progress"] and f"{n}/{n}" in run["progress"][0]
        assert run["summary"] == f"{n} imported"
    assert imports["files_ratio"] == 2


@pytest.mark.slow
def test_bench_reconcile_read_times_the_reader_and_dcmread_in_turns_over_the_same_files():
    proc = cli("bench", "reconcile-read", "--files", "40", "--rounds", "3", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["files"] == 38  # 40 records exported, 5% removed
    assert len(report["rounds"]) == 3
    for row in report["rounds"]:
        assert row["reconcile_files_per_s"] > 0 and row["dcmread_files_per_s"] > 0
        assert row["ratio"] == row["reconcile_files_per_s"] / row["dcmread_files_per_s"]
    assert report["median_ratio"] in [row["ratio"] for row in report["rounds"]]
