"""The bulk path keeps every message valid: a whole export of a varied log, every message
parsed by hl7apy (strict + validate(); the summary document tolerant + validate()) and by
python-hl7. The templates are proven once per shape; this proves the fills."""

from __future__ import annotations

import pytest

import hl7

from adapters.hl7.messages import MessageBuilder
from adapters.hl7.replay import course_messages, export_to
from adapters.runtime import Ledger
from tests.conftest import Clock
from tests.hl7_scenario import HARD_NAMES, HOME, PARTNER, PHYSICIST, deliver, hl7apy_verdict, read_folder, register


@pytest.mark.slow
def test_every_message_of_a_bulk_export_is_valid_for_both_parsers(tmp_path, monkeypatch):
    monkeypatch.delenv("FRACTION_LEDGER_READ_DB", raising=False)
    names = HARD_NAMES + ["PEETERS^AN^MARIA^DR^PHD", "SINGLE", "Ñúñez=山田^Ana"]
    with Ledger(str(tmp_path / "bulk.sqlite3"), clock=Clock()) as book:
        app = book.app
        for i, name in enumerate(names):
            course = register(app, f"BULK-{i}~&", name, fractions=8, dynamic=bool(i % 2),
                              birth_date=None if i % 3 == 0 else "1950-02-28", sex=None if i % 4 == 0 else "M")
            for n in range(1, 9):
                deliver(app, course, n, PARTNER if n % 3 == 0 else HOME, verify=n % 2 == 0,
                        note="séance | interrompue ^ & ~ \\ reprise")
            if i % 2 == 0:
                app.void_fraction(course, 8, "double entry\nafter restore", "rtt.x", PHYSICIST)
            if i % 3 == 0:
                app.complete_course(course, "done", PHYSICIST)
        export_to(book, course_messages(book, MessageBuilder()), tmp_path / "a", PHYSICIST)
        for i in range(1, len(names), 2):  # voided after the first export: credits appear
            app.void_fraction(_id(book, i), 7, "wrong\nday", "rtt.y", PHYSICIST)
        files = read_folder(_export(book, tmp_path / "b"))
    kinds: dict[str, int] = {}
    for text in files.values():
        hl7apy_verdict(text)
        parsed = hl7.parse(text)
        kind = str(parsed.segment("MSH")[9][0][0])
        kind += "-" + str(parsed.segment("FT1")[6]) if kind == "DFT" else ""
        kinds[kind] = kinds.get(kind, 0) + 1
    delivered = len(names) * 8
    assert kinds == {"DFT-CG": delivered - (len(names) + 1) // 2, "DFT-CD": len(names) // 2,
                     "MDM": (len(names) + 2) // 3, "ADT": (len(names) + 2) // 3}


def _id(book: Ledger, i: int) -> str:
    return next(c["id"] for c in book.fresh().courses() if c["patient_id"] == f"BULK-{i}~&")


def _export(book: Ledger, out):
    export_to(book, course_messages(book, MessageBuilder()), out, PHYSICIST)
    return out
