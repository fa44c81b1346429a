"""`fraction-ledger bench core` at a tiny size, on SQLite and on a PostgreSQL server it starts
itself: every fraction it logs is in the log, and it prints its same-run baselines. No figure
is asserted: speed targets live in the benchmarks, never in tests."""

from __future__ import annotations

import json

import pytest

from tests.conftest import _pg_bindir, cli, missing_peer


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_bench_core_measures_the_ledger_and_its_baselines_in_one_run(backend):
    if backend == "postgres" and _pg_bindir() is None:
        missing_peer("PostgreSQL (pg_ctl)")
    proc = cli("bench", "core", "--fractions", "60", "--clients", "4", "--rounds", "1", "--backend", backend,
               "--compare", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["backend"] == backend and result["clients"] == 4 and result["fractions"] == 60
    for key in ("ledger_per_s", "bare_eventsourcing_per_s", "bare_one_client_per_s", "ledger_no_cache_per_s",
                "ledger_one_save_per_transaction_per_s"):
        assert result[key] > 0, key
    assert result["store"].startswith("PostgreSQL" if backend == "postgres" else "SQLite wal/FULL")
