"""Fractions the ledger knows only from an OIS treatment summary, and the session record that
replaces them.

A treatment summary states that a fraction was delivered and when, nothing else: no MU per
beam, no machine, no operator, and the ledger records it at the home centre with the plan's
beams in full. The fraction's RT Beams Treatment Record is the richer source and wins whatever
the order they are imported in: a session record arriving for a fraction known only from a
summary voids the summary's entry ("replaced by its session record <SOP UID>") and records the
session, in one transaction. Part of the `Course` aggregate (a mixin, like `ReceivedFractions`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.origin import UNKNOWN_MACHINE
from schemas.course import FractionRecord, LogFraction

# Shown as the operator of a fraction known only from a summary (which names none); what marks
# such a fraction is its `source="summary"`. Before that source existed, a summary's fraction was
# stored with source "baseline" and this operator name; such stored events still read as summary-only.
SUMMARY_OPERATOR = LEGACY_SUMMARY_OPERATOR = "OIS treatment summary"


def counts_from_summary(termination: str) -> bool:
    """Whether a summary's line is a delivered fraction: only one that ended NORMAL. A summary
    holds no MU, so an interrupted fraction needs its session record."""
    return termination == "NORMAL"


def summary_only(source: str | None, operator: str | None) -> bool:
    """Whether a stored record (its `source` and `operator`, e.g. a read-model row) came from a
    treatment summary alone, old events included."""
    return source == "summary" or (source == "baseline" and operator == LEGACY_SUMMARY_OPERATOR)


def is_summary_only(record: FractionRecord) -> bool:
    return summary_only(record.source, record.operator)


class SummaryFractions:
    """Needs the Course's `active_records`, `group`, `only_group`, `deliver`, `_voided`."""

    records: list[FractionRecord]

    def summary_fraction(self, group: int, number: int, delivered_at: datetime, source_uid: str) -> dict[str, Any]:
        """What a summary's line records: the fraction at the home centre (the summary is the home
        OIS's), on the prescription and its machine, every beam in full."""
        plan = self.plan  # type: ignore[attr-defined]
        return {"number": number, "group": group, "centre": self.home_centre,  # type: ignore[attr-defined]
                "machine": plan.machine or UNKNOWN_MACHINE, "operator": SUMMARY_OPERATOR,
                "delivered_at": delivered_at, "plan_uid": plan.uid, "source": "summary", "source_uid": source_uid}

    def known_only_from_summary(self, group: int, number: int) -> bool:
        """The fraction is recorded, and only from a treatment summary."""
        active = self.active_records(group, number)  # type: ignore[attr-defined]
        return bool(active) and all(is_summary_only(r) for r in active)

    def deliver_record(self, cmd: LogFraction, meta: dict) -> FractionRecord:
        """`deliver`, except that the OIS's session record of a fraction the ledger knows only
        from a treatment summary replaces the summary's entry. Only a record imported from the
        OIS (`source="baseline"`, a first session) replaces: a live log of such a fraction is a
        second delivery and is refused like any other."""
        if cmd.source == "baseline" and cmd.delivery_type == "TREATMENT":
            group = self.group(cmd.group) if cmd.group is not None else self.only_group()  # type: ignore[attr-defined]
            cmd = self.in_course_numbering(cmd, group)  # type: ignore[attr-defined]  (a re-plan's own numbering)
            if self.known_only_from_summary(group.number, cmd.number):
                replaced = self.active_records(group.number, cmd.number)  # type: ignore[attr-defined]
                what = cmd.source_uid or "without a SOP Instance UID"
                self._voided(record_ids=[r.record_id for r in replaced],  # type: ignore[attr-defined]
                             reason=f"replaced by its session record {what}", by=meta["user"], meta=meta)
                # If the session is refused, the aggregate is discarded unsaved: the void goes with it.
                return self.deliver(cmd, meta)  # type: ignore[attr-defined]
        return self.deliver(cmd, meta)  # type: ignore[attr-defined]
