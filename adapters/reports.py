"""Incident and settlement reports as CSV, shared by the command line and the HTTP API,
so that a file downloaded from the pages is the file `fraction-ledger ... --csv` prints.

Amounts are written as their exact decimal strings, never as floats.

These files are opened in spreadsheets by others: a cell that starts with `= + - @`, a tab or a
CR would be run as a formula there (CSV injection), so such a cell is written with a leading `'`
(`neutral`), which spreadsheets show as text. A plain number (a negative amount) stays a number.
"""

from __future__ import annotations

import csv
import io
import re

from adapters.runtime import local_text

INCIDENT_CSV = [
    "id", "registered_at", "occurred_at", "centre", "home_centre", "course_id", "fraction", "category",
    "severity", "status", "description", "registered_by", "follow_ups", "resolution", "closed_by", "closed_at",
    "refusal",
]
STATEMENT_CSV = ["record", "course_id", "patient_id", "completed_on", "billing_centre", "centre", "fractions",
                 "amount", "debtor", "creditor", "agreement"]


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def neutral(value: object) -> object:
    """A cell a spreadsheet will not run as a formula. A CR becomes a line feed, which the writer
    quotes (it would leave a CR unquoted, and a reader would start a new row there)."""
    if not isinstance(value, str):
        return value
    if value.startswith(FORMULA_START) and not NUMBER.fullmatch(value):
        value = "'" + value
    return value.replace("\r\n", "\n").replace("\r", "\n")


def to_csv(columns: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: neutral(v) for k, v in row.items()} for row in rows)
    return out.getvalue()


def incidents_csv(incidents: list[dict]) -> str:
    """Read-model incidents, follow-ups on one line, a near-miss with the rule that refused it."""
    return to_csv(INCIDENT_CSV, [
        i | {
            "follow_ups": " | ".join(f"{local_text(f['at'])} {f['by']}: {f['text']}" for f in i["follow_ups"]),
            "refusal": (i["attempt"] or {}).get("refusal"),
        }
        for i in incidents
    ])


def statement_csv(statement: dict) -> str:
    """A statement's lines, then who owes whom, then the total: one record type per row."""
    totals = statement["totals"]
    return to_csv(STATEMENT_CSV, [
        *({"record": "line", **line} for line in statement["lines"]),
        *({"record": "balance", **b} for b in statement["balances"]),
        {"record": "total", "fractions": totals["fractions"], "amount": totals["amount"]},
    ])
