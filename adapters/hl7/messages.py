"""The HL7 messages a course yields: a charge per delivered fraction (DFT^P03, CG), a credit
for a charged fraction that was voided (CD), and for a completed course the treatment
summary document (MDM^T02) and the purge at the cloud PACS (ADT^A23).

Everything in a message comes from the events: control ids and transaction ids are hashes
of the event identity, times are the events' times, so the same log gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from adapters.hl7.codes import ProcedureCodes
from adapters.hl7.config import Hl7Config
from adapters.hl7.er7 import CHARSET, VERSION, Template
from ledger.billable import charge_and_credit, technique, to_charge
from schemas.course import Plan, from_event


@dataclass(frozen=True)
class Hl7Message:
    control_id: str
    kind: str  # DFT-CG, DFT-CD, MDM, ADT
    destination: str | None
    course_id: str
    at: datetime  # when the fact it reports was recorded
    er7: str


def stable_id(prefix: str, *parts: str, length: int = 20) -> str:
    """A short id from the identity of an event: the same event always gives the same id."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return prefix + base64.b32encode(digest).decode()[: length - len(prefix)]


def seg(name: str, fields: dict[int, str]) -> str:
    """A segment from {field number: text}; MSH-1 and MSH-2 are written by the caller."""
    last = max(fields)
    first = 3 if name == "MSH" else 1
    head = "MSH|^~\\&" if name == "MSH" else name
    return "|".join([head] + [fields.get(i, "") for i in range(first, last + 1)])


def msh(message_type: str) -> str:
    return seg("MSH", {
        3: "{sending_application}", 4: "{sending_facility}", 5: "{receiving_application}",
        6: "{receiving_facility}", 7: "{time}", 9: message_type, 10: "{control_id}", 11: "P",
        12: VERSION, 18: CHARSET,
    })


PID = seg("PID", {1: "1", 3: "{patient_id}^^^{home}^MR", 5: "{family}^{given}^{middle}^{suffix}^{prefix}",
                  7: "{birth_date}", 8: "{sex}"})
PV1 = seg("PV1", {1: "1", 2: "O"})
HEADER_SLOTS = {"sending_application", "sending_facility", "receiving_application", "time", "control_id",
                "patient_id", "home", "family"}


def ft1(kind: str) -> str:
    code = "{code}^{code_text}^{coding_system}"
    return seg("FT1", {
        1: "1", 2: "{transaction_id}", 4: "{delivered_at}", 5: "{posted_at}", 6: kind, 7: code, 10: "1",
        16: "^^^{centre}^^^^^{machine}", 20: "{operator}", 25: code,
    })


CHARGE = Template("DFT_P03", [msh("DFT^P03^DFT_P03"), seg("EVN", {1: "P03", 2: "{time}"}), PID, PV1, ft1("CG")],
                  required=HEADER_SLOTS | {"transaction_id", "delivered_at", "code", "coding_system", "centre"})
CREDIT = Template("DFT_P03", [msh("DFT^P03^DFT_P03"), seg("EVN", {1: "P03", 2: "{time}"}), PID, PV1, ft1("CD"),
                              seg("NTE", {1: "1", 3: "{comment}"})],
                  required=HEADER_SLOTS | {"transaction_id", "delivered_at", "code", "coding_system", "centre", "comment"})
PURGE = Template("ADT_A21", [msh("ADT^A23^ADT_A21"), seg("EVN", {1: "A23", 2: "{time}"}), PID, PV1],
                 required=HEADER_SLOTS)
# hl7apy's strict parser refuses an OBX-5 this large, so this shape is proven by a tolerant
# parse and validate() (see er7.Template); the PDF is base64, which needs no escaping.
SUMMARY = Template("MDM_T02", [
    msh("MDM^T02^MDM_T02"), seg("EVN", {1: "T02", 2: "{time}"}), PID, PV1,
    seg("TXA", {1: "1", 2: "RTSUMMARY", 3: "AP", 4: "{time}", 12: "{document_id}", 16: "{file_name}",
                17: "DO", 19: "AV"}),
    seg("OBX", {1: "1", 2: "ED", 3: "RTSUMMARY^Radiotherapy treatment summary^99RTL",
                5: "{source_application}^AP^PDF^Base64^{pdf}", 11: "F", 14: "{time}"}),
], required=HEADER_SLOTS | {"document_id", "pdf"}, strict=False, types={"pdf": "ED-DATA", "source_application": "IS"})


def name_parts(person_name: str) -> dict[str, str]:
    """A DICOM person name FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX as HL7 XPN slots (the
    alphabetic group only; ideographic and phonetic groups follow a '=')."""
    family, given, middle, prefix, suffix = (person_name.split("=")[0].split("^") + [""] * 5)[:5]
    return {"family": family.strip() or person_name, "given": given, "middle": middle, "prefix": prefix, "suffix": suffix}


def when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def birth(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value else value


class MessageBuilder:
    """Turns a course (as the read model gives it) into its messages."""

    def __init__(self, config: Hl7Config | None = None, codes: ProcedureCodes | None = None):
        self.config = config or Hl7Config()
        self.codes = codes or ProcedureCodes.load(self.config.procedure_codes)

    def header(self, course: dict, kind: str, control_id: str, time: datetime) -> dict[str, Any]:
        destination = self.config.destination_of(kind)
        target = self.config.destinations[destination] if destination else None
        home = self.config.centre_code(course["home_centre"])
        return {
            "sending_application": self.config.sending_application,
            "sending_facility": home,
            "receiving_application": target.application if target else kind,
            "receiving_facility": (target.facility if target and target.facility else home),
            "time": time,
            "control_id": control_id,
            "patient_id": course["patient_id"],
            "home": home,
            "birth_date": birth(course.get("birth_date")),
            "sex": course.get("sex"),
            **name_parts(course["patient_name"]),
        }

    def charges(self, course: dict, may_hold: Callable[[str], bool] = lambda _: False) -> Iterable[Hl7Message]:
        """A charge per fraction the ledger charges (`ledger.billing.to_charge`), and for a voided
        one whose charge may be held by billing, the charge and its credit (`charge_and_credit`)."""
        plans = {p["uid"]: from_event(p, Plan) for p in course["plans"]}  # converted once per course
        destination = self.config.destination_of("DFT")
        for f in course["fractions"]:
            if not to_charge(f["delivery_type"], f.get("part_of"), f["source"]):
                continue
            charge_id = stable_id("CG", f["record_id"], "charge")
            charge, credit = charge_and_credit(bool(f["voided"]), may_hold(charge_id))
            if not charge:
                continue
            values = self.charge_values(course, f, plans)
            recorded = values["posted_at"]
            yield Hl7Message(charge_id, "DFT-CG", destination, course["id"], recorded,
                             CHARGE.fill(**self.header(course, "DFT", charge_id, recorded), **values))
            if credit:
                credit_id = stable_id("CD", f["record_id"], "credit")
                voided = when(f["voided_at"])
                comment = (f"Credit for charge {values['transaction_id']}: fraction {f['number']} delivered "
                           f"{values['delivered_at'].date().isoformat()} at {f['centre']} was voided by "
                           f"{f['voided_by']}: {f['void_reason']}")
                credit = values | {"transaction_id": stable_id("", f["record_id"], "credit", length=12), "posted_at": voided}
                yield Hl7Message(credit_id, "DFT-CD", destination, course["id"], voided, CREDIT.fill(
                    **self.header(course, "DFT", credit_id, voided), **credit, comment=comment))

    def charge_values(self, course: dict, f: dict, plans: dict[str, Plan | dict]) -> dict[str, Any]:
        """The FT1 values of a fraction's charge: what was done, where, by whom, and its code."""
        plan = plans.get(f["plan_uid"])
        plan = from_event(plan, Plan) if isinstance(plan, dict) else plan
        code = self.codes.code_for(technique(plan, f["group"]), f["centre"])
        return {
            "transaction_id": stable_id("", f["record_id"], "charge", length=12),
            "delivered_at": when(f["delivered_at"]),
            "posted_at": when(f["recorded_at"]),
            "code": code.code, "code_text": code.text, "coding_system": self.codes.coding_system,
            "centre": self.config.centre_code(f["centre"]), "machine": f["machine"], "operator": f["operator"],
        }

    def summary(self, course: dict, completed_at: datetime, pdf: bytes) -> Hl7Message:
        control_id = stable_id("MD", course["id"], "summary")
        document_id = stable_id("RTS", course["id"], "summary")
        return Hl7Message(control_id, "MDM", self.config.destination_of("MDM"), course["id"], completed_at, SUMMARY.fill(
            **self.header(course, "MDM", control_id, completed_at), document_id=document_id,
            source_application=self.config.sending_application,
            file_name=f"{document_id}.pdf", pdf=base64.b64encode(pdf).decode("ascii")))

    def purge(self, course: dict, completed_at: datetime) -> Hl7Message:
        control_id = stable_id("PG", course["id"], "purge")
        return Hl7Message(control_id, "ADT", self.config.destination_of("ADT"), course["id"], completed_at,
                          PURGE.fill(**self.header(course, "ADT", control_id, completed_at)))
