"""The OIS's own word that it imported a set of records the ledger handed back.

After a reconciliation the physicist imports the set into the restored OIS and then
acknowledges it here: an `OisImport` stream per set, so that the next reconciliation and
the course pages can say which fractions the OIS was given, when, and on whose word.
Acknowledging the same set twice changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger import errors
from ledger.course import NAMESPACE
from schemas.results import ImportAcknowledged


def import_set_id_for(set_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"ois-import/{set_id}")


class OisImport(Aggregate):
    @staticmethod
    def create_id(set_id: str, **_: Any) -> uuid.UUID:
        return import_set_id_for(set_id)

    @event("Acknowledged")
    def __init__(self, set_id: str, items: list[dict], by: str, meta: dict):
        """`items`: one per fraction handed back: course_id, group, number, record_ids."""
        self.set_id = set_id
        self.items = items
        self.by = by
        self.acknowledged_at = meta["recorded_at"]


class OisImportCommands:
    """`FractionLedger.ois`: a physicist's acknowledgement that an import set is in the restored OIS."""

    def __init__(self, uow: Any):
        self.uow = uow

    def acknowledge_import(self, set_id: str, items: list[dict], by: str, actor: Any,
                           request_id: str | None = None) -> ImportAcknowledged:
        if not set_id or not by.strip():
            raise errors.InvalidCommand("set_id" if not set_id else "by", "invalid.required")
        for k, item in enumerate(items):
            for key in ("course_id", "group", "number", "record_ids"):
                if key not in item:
                    raise errors.InvalidCommand(f"items[{k}].{key}", "invalid.missing")

        def act(meta: dict) -> tuple[list[Any], Any]:
            known = self.uow.get(import_set_id_for(set_id))
            if known is not None:
                return [], ImportAcknowledged(set_id=set_id, status="unchanged", by=known.by,
                                              acknowledged_at=known.acknowledged_at, fractions=len(known.items))
            ack = OisImport(set_id=set_id, items=items, by=by, meta=meta)
            return [ack], ImportAcknowledged(set_id=set_id, status="acknowledged", by=by,
                                             acknowledged_at=meta["recorded_at"], fractions=len(items))

        return self.uow.run("acknowledge_import", {"set_id": set_id, "items": items, "by": by}, actor, request_id, act,
                            ImportAcknowledged)
