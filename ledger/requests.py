"""Idempotency: a command sent with a request id is recorded once, with its first result.

The `Request` aggregate is saved in the same transaction as the events the command
produced, so a retry either finds it (and gets the first answer back) or the command
never happened. The same id with other content is refused.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import msgspec
from eventsourcing.domain import Aggregate, event

from ledger.course import NAMESPACE


def request_aggregate_id(request_id: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"request/{request_id}")


def fingerprint(command: str, payload: Any) -> str:
    body = msgspec.json.encode({"command": command, "payload": payload}, order="sorted")
    return hashlib.sha256(body).hexdigest()


class Request(Aggregate):
    @staticmethod
    def create_id(request_id: str, **_: Any) -> uuid.UUID:
        return request_aggregate_id(request_id)

    @event("Recorded")
    def __init__(self, request_id: str, command: str, fingerprint: str, result: Any, meta: dict):
        self.request_id = request_id
        self.command = command
        self.fingerprint = fingerprint
        self.result = result
