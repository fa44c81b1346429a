"""Turning ledger results and read-model rows into the API's answer types."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from ledger.messages import english, is_message
from schemas.api import EventOut

T = TypeVar("T")


def as_(kind: type[T], value: Any) -> T:
    """Any ledger value (Structs, Decimals, datetimes) as an answer type; extra keys are dropped."""
    return msgspec.convert(msgspec.to_builtins(value), kind, strict=False)


def reasons_worded(value: Any) -> Any:
    """A split, a statement or a settle answer with each split's `reason` (a message) as its English
    text, and the message itself as `reason_said` (as the API gives refusals: `message` and `said`)."""
    value = msgspec.to_builtins(value)
    if isinstance(value, list):
        return [reasons_worded(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: reasons_worded(v) if isinstance(v, (dict, list)) else v for k, v in value.items()}
    if "reason" in value and is_message(value["reason"]):
        out["reason"], out["reason_said"] = english(value["reason"]), value["reason"]
    return out


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
