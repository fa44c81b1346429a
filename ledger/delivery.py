"""Deliveries to a destination (the billing system, the HIS, the cloud PACS): what was
handed over, and what the receiver accepted or refused with its reason.

The ledger knows no HL7: a message is an id. Keeping this in the log means an interrupted
send resumes where it stopped after a restart, nothing accepted is sent twice, and every
acknowledgement appears in `fraction-ledger events` beside the facts it reports on.
Ids are recorded in batches: one event per batch keeps a long replay cheap to load.
"""

from __future__ import annotations

import uuid
from typing import Any

from collections.abc import Callable

from eventsourcing.domain import Aggregate, event

from ledger import errors
from ledger.course import NAMESPACE
from ledger.unit_of_work import Actor, UnitOfWork

BATCH = 1000


def destination_id(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"destination/{name}")


def batches(items: list[Any], size: int = BATCH) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class Destination(Aggregate):
    @staticmethod
    def create_id(name: str, **_: Any) -> uuid.UUID:
        return destination_id(name)

    @event("Opened")
    def __init__(self, name: str, meta: dict):
        self.name = name
        self.exported: set[str] = set()  # written to a file drop: the receiver's answer is unknown
        self.accepted: dict[str, str] = {}  # id -> when (ISO) the receiver accepted it
        self.refused: dict[str, dict] = {}  # id -> {code, text, at}: the receiver's last refusal

    def is_accepted(self, message_id: str) -> bool:
        return message_id in self.accepted

    def may_hold(self, message_id: str) -> bool:
        """The receiver accepted it, or may have taken it from a file drop: anything that
        must be undone (a charge for a voided fraction) needs an explicit correction."""
        return message_id in self.accepted or message_id in self.exported

    def record_export(self, message_ids: list[str], where: str, meta: dict) -> int:
        """Messages written for this destination (e.g. to a folder); only new ids are recorded."""
        new = sorted(set(message_ids) - self.exported)
        for chunk in batches(new):
            self._exported(message_ids=chunk, where=where, meta=meta)
        return len(new)

    def record_answers(self, accepted: list[str], refused: list[dict], meta: dict) -> None:
        """The receiver's answers: accepted ids, and refusals as {id, code, text}."""
        for chunk in batches(accepted):
            self._acknowledged(accepted=chunk, refused=[], meta=meta)
        for chunk in batches(refused):
            self._acknowledged(accepted=[], refused=chunk, meta=meta)

    @event("MessagesExported")
    def _exported(self, message_ids: list[str], where: str, meta: dict) -> None:
        self.exported.update(message_ids)

    @event("MessagesAcknowledged")
    def _acknowledged(self, accepted: list[str], refused: list[dict], meta: dict) -> None:
        at = meta["recorded_at"].isoformat()
        for message_id in accepted:
            self.accepted[message_id] = at
            self.refused.pop(message_id, None)
        for r in refused:
            if r["id"] not in self.accepted:
                # the course, so that a refusal (the receiver's text names the patient) is shown
                # only to those who see that course; answers recorded before it lack it
                self.refused[r["id"]] = {"code": r["code"], "text": r["text"], "at": at, "course": r.get("course")}


class DestinationCommands:
    """What was handed to each destination and what it answered (`FractionLedger.destinations`)."""

    def __init__(self, uow: UnitOfWork):
        self.uow = uow

    def destination(self, name: str) -> Destination | None:
        """What a destination was given and answered, or None if nothing was ever sent there."""
        found = self.uow.get(destination_id(name))
        return found if isinstance(found, Destination) else None

    def on_destination(self, command: str, name: str, payload: Any, actor: Actor,
                       change: Callable[[Destination, dict], Any]) -> Any:
        if not name.strip():
            raise errors.InvalidCommand("destination", "invalid.destination_needs_name")

        def act(meta: dict) -> tuple[list[Any], Any]:
            found = self.destination(name) or Destination(name=name, meta=meta)
            return [found], change(found, meta)

        return self.uow.run(command, {"destination": name, **payload}, actor, None, act)

    def record_export(self, name: str, message_ids: list[str], where: str, actor: Actor) -> int:
        """Messages written for a destination; returns how many were new."""
        return self.on_destination(
            "record_export", name, {"ids": message_ids, "where": where}, actor,
            lambda d, meta: d.record_export(message_ids, where, meta),
        )

    def record_answers(self, name: str, accepted: list[str], refused: list[dict], actor: Actor) -> None:
        """A receiver's acknowledgements: accepted ids, refusals as {id, code, text}."""
        self.on_destination(
            "record_answers", name, {"accepted": accepted, "refused": refused}, actor,
            lambda d, meta: d.record_answers(accepted, refused, meta),
        )
