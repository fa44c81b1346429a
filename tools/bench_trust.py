"""Benchmark: what the hash chain and encryption at rest cost, and how fast `verify` reads.

Appends are one event per transaction on a SQLite file (durable), by the same tiny aggregate
through eventsourcing: the library's own recorder (baseline), the chained recorder, and the
chained recorder with AES-GCM. Rounds alternate so that a noisy neighbour hits all alike;
ratios of medians are the figures to compare between machines.

    fraction-ledger bench trust [--events 2000] [--rounds 3] [--json]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import click
import msgspec
from eventsourcing.application import Application

from adapters import chain
from adapters.keys import new_cipher_key
from adapters.storage import CHAINED_RECORDERS
from tools.bench import Bare, Tally


def env(path: Path, chained: bool, encrypted: bool) -> dict[str, str]:
    out = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    if chained:
        out["APPLICATION_RECORDER_TOPIC"] = CHAINED_RECORDERS["sqlite"]
    if encrypted:
        out |= {"CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher", "CIPHER_KEY": new_cipher_key()}
    return out


def append_rate(path: Path, n: int, chained: bool, encrypted: bool = False) -> tuple[float, Application]:
    app = Bare(env=env(path, chained, encrypted))
    tallies = [Tally() for _ in range(max(1, n // 30))]
    app.save(*tallies)
    start = time.perf_counter()
    for i in range(n):
        t = tallies[i % len(tallies)]
        t.tick()
        app.save(t)
    return n / (time.perf_counter() - start), app


@click.command("trust")
@click.option("--events", type=int, default=2000, show_default=True)
@click.option("--rounds", type=int, default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def main(events: int, rounds: int, as_json: bool) -> None:
    """Appends per second: baseline, hash-chained, hash-chained + AES-GCM; verify speed."""
    rates: dict[str, list[float]] = {"baseline": [], "chained": [], "chained+aes": [], "verify": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for name, chained, encrypted in (("baseline", False, False), ("chained", True, False), ("chained+aes", True, True)):
                rate, app = append_rate(Path(tmp) / f"{name}-{r}.sqlite3", events, chained, encrypted)
                rates[name].append(rate)
                if name == "chained":
                    start = time.perf_counter()
                    verdict = chain.verify(app)
                    assert verdict.ok
                    rates["verify"].append(verdict.events / (time.perf_counter() - start))
                app.close()
    medians = {k: statistics.median(v) for k, v in rates.items()}
    result = {
        "events": events, "rounds": rounds,
        "appends_per_s": {k: round(medians[k]) for k in ("baseline", "chained", "chained+aes")},
        "verify_events_per_s": round(medians["verify"]),
        "chained_vs_baseline": round(medians["chained"] / medians["baseline"], 3),
        "encrypted_vs_baseline": round(medians["chained+aes"] / medians["baseline"], 3),
    }
    if as_json:
        print(msgspec.json.encode(result).decode())
        return
    a = result["appends_per_s"]
    print(f"appends/s, one event per durable transaction ({events} events, median of {rounds} rounds):")
    print(f"  eventsourcing baseline  {a['baseline']:>8}")
    print(f"  hash-chained            {a['chained']:>8}   ratio {result['chained_vs_baseline']}")
    print(f"  hash-chained + AES-GCM  {a['chained+aes']:>8}   ratio {result['encrypted_vs_baseline']}")
    print(f"verify: {result['verify_events_per_s']} events/s")


if __name__ == "__main__":
    main()
