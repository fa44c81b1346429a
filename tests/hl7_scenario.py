"""Shared by the HL7 tests: a small recovery scenario, and the two independent verdicts
on a message (hl7apy strict parse + validate(), and python-hl7's parser)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import zlib
from pathlib import Path

import hl7
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from ledger.service import Actor

HOME, PARTNER = "AZ-HOME", "PARTNER-RT"
T0 = datetime(2026, 11, 2, 8, 30, tzinfo=timezone(timedelta(hours=1)))
PHYSICIST = Actor("physicist.home", HOME)
# Names a billing system must get back exactly: delimiters, an apostrophe, non-ASCII.
# Every HL7 delimiter a DICOM PN may hold (a backslash may not: it is refused at registration).
HARD_NAMES = ["MÜLLER-LEFÈVRE^ZOË", "D'HONDT^JAN", "PIPE|AND&AMP^TILDE~HASH#"]


def register(app, pid: str, name: str, fractions: int = 5, dynamic: bool = False, uid_suffix: str = "1",
             birth_date: str | None = "1979-11-30", sex: str | None = "F") -> str:
    kind = "DYNAMIC" if dynamic else "STATIC"
    return app.register_course({
        "patient": {"id": pid, "name": name, "birth_date": birth_date, "sex": sex},
        "home_centre": HOME,
        "plan": {"uid": f"1.2.826.0.1.3680043.10.99.{zlib.crc32(pid.encode()) % 10**6}.{uid_suffix}", "label": f"Plan {pid}",
                 "machine": "HOME-LINAC-1", "centre": HOME,
                 "fraction_groups": [{"number": 1, "fractions_planned": fractions, "beams": [
                     {"number": 1, "name": "AP", "meterset": "95.1", "beam_type": kind},
                     {"number": 2, "name": "PA", "meterset": "96.3", "beam_type": kind}]}]},
        "assigned_centres": [PARTNER],
    }, PHYSICIST)["id"]


def deliver(app, course_id: str, number: int, centre: str = HOME, verify: bool = True, **extra) -> dict:
    machine = "HOME-LINAC-1" if centre == HOME else "TB2 | bunker 3"
    rtt = f"rtt.{centre.lower()}"
    record = app.log_fraction(course_id, {
        "number": number, "centre": centre, "machine": machine, "operator": rtt,
        "delivered_at": T0 + timedelta(days=number - 1), **extra}, Actor(rtt, centre))
    if verify:
        app.verify_fraction(course_id, number, f"{rtt}.checker", Actor(f"{rtt}.checker", centre))
    return record


def hl7apy_verdict(er7: str):
    """hl7apy: strict parse then validate(); the summary document (a large OBX-5, which the
    strict parser refuses by size) is parsed tolerantly, then validate()."""
    strict = "|MDM^T02^" not in er7.split("\r", 1)[0]
    parsed = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT if strict else VALIDATION_LEVEL.TOLERANT)
    assert parsed.validate() is True
    return parsed


def check_everywhere(er7: str) -> hl7.Message:
    """Both parsers accept the message; returns python-hl7's view of it."""
    assert er7.endswith("\r") and "\n" not in er7
    hl7apy_verdict(er7)
    return hl7.parse(er7)


def read_folder(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_bytes().decode("utf-8") for p in sorted(out.rglob("*.hl7"))}
