"""Turning ledger results and read-model rows into the API's answer types."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from schemas.api import EventOut

T = TypeVar("T")


def as_(kind: type[T], value: Any) -> T:
    """Any ledger value (Structs, Decimals, datetimes) as an answer type; extra keys are dropped."""
    return msgspec.convert(msgspec.to_builtins(value), kind, strict=False)


def event_out(event: Any, position: int | None, topic: str) -> EventOut:
    data = {k: v for k, v in event.__dict__.items() if k not in ("originator_id", "originator_version", "timestamp", "meta")}
    meta = getattr(event, "meta", None) or {}
    return EventOut(
        position=position or 0,
        stream=str(event.originator_id),
        version=event.originator_version,
        type=topic.split(":", 1)[1],
        timestamp=event.timestamp,
        user=meta.get("user"),
        centre=meta.get("centre"),
        data=msgspec.to_builtins(data),
    )
