"""What a fraction bills: one definition, used by the split (`ledger.billing`) and by the HL7
charges (`adapters/hl7/messages.py`) alike.

A course's *billable fractions* are its delivered fractions, each once, by the record of its first
session (a continuation completes the same fraction; a further record of one session, a file per
beam, is the same session), counted for the centre of that session on its local day. Every
billable fraction counts in the split: the course is paid once, and the home centre's fractions
before the outage are part of it. A billable fraction the ledger imported from the OIS's backup (a
session record or a summary) was already charged by the OIS before the outage: the replay does not
charge it again (`to_charge`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.course import Plan

CHARGED_BY_OIS = ("baseline", "summary")


def bills_its_fraction(delivery_type: str, part_of: str | None) -> bool:
    """Whether a record is the one that bills its fraction: the first session's first record."""
    return delivery_type == "TREATMENT" and part_of is None


def charged_by_ois(source: str | None) -> bool:
    """A record imported from the home OIS: the OIS posted its charge before the outage."""
    return source in CHARGED_BY_OIS


def to_charge(delivery_type: str, part_of: str | None, source: str | None) -> bool:
    """Whether the ledger charges this record (and credits it, once voided): a billable fraction
    that the OIS did not charge already."""
    return bills_its_fraction(delivery_type, part_of) and not charged_by_ois(source)


def charge_and_credit(voided: bool, charge_may_be_held: bool) -> tuple[bool, bool]:
    """For a record the ledger charges: (send its charge, send its credit). A voided fraction whose
    charge billing may hold is charged (the same charge again, which the receiver de-duplicates)
    and credited; one whose charge never left is neither: there is nothing to undo."""
    if not voided:
        return True, False
    return charge_may_be_held, charge_may_be_held


def billable_fractions(records: Iterable[Any]) -> list[Any]:
    """The record that bills each delivered (not voided) fraction: its first session, the earliest
    when two centres' records of one fraction collided."""
    first: dict[tuple[int, int], Any] = {}
    for r in records:
        if r.voided or not bills_its_fraction(r.delivery_type, r.part_of):
            continue
        key = (r.group, r.number)
        if key not in first or r.delivered_at < first[key].delivered_at:
            first[key] = r
    return list(first.values())


def technique(plan: Plan | None, group: int) -> str:
    """The technique a fraction is billed as, from the beams of its fraction group in the plan its
    record names: RADIATION/KIND, e.g. PHOTON/DYNAMIC (any dynamic beam makes it dynamic; the
    radiation is the first beam's). A plan or group without beams: UNKNOWN/UNKNOWN."""
    beams = [b for g in (plan.fraction_groups if plan else []) if g.number == group for b in g.beams]
    if not beams:
        return "UNKNOWN/UNKNOWN"
    kind = "DYNAMIC" if any(b.beam_type == "DYNAMIC" for b in beams) else "STATIC"
    return f"{beams[0].radiation_type or 'PHOTON'}/{kind}"
