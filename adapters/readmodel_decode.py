"""Decoding the notifications a read model is mostly made of, without building event objects.

A rebuild is mostly fractions delivered and verified. eventsourcing's mapper decodes each stored
event with Python's `json` module, calling its transcoder on every object, and builds the aggregate
event; the projection needs a dozen of the values. Here msgspec decodes the stored state (after the
application's own cipher and compressor, when the ledger has them) straight into a small Struct per
topic: the values the projection reads, typed as they are stored. A datetime is stored as its ISO
text (eventsourcing's `DatetimeAsISO`, written by `isoformat()`), which is what the read model stores
(`isoformat()` of the datetime parsed from it gives the same text), so it is taken as is.

Whatever does not fit its Struct exactly (a missing or differently typed value, JSON msgspec
refuses, an event class with upcasters, a transcoder other than the library's) is not decoded here:
`decode` returns None and the projection takes the mapper's event, as for every other topic. So a
row is the same whichever decoded its event (tests/test_readmodel_rebuild.py compares them).
"""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder
from eventsourcing.utils import resolve_topic

FRACTION_DELIVERED = "ledger.course:Course.FractionDelivered"
FRACTION_VERIFIED = "ledger.course:Course.FractionVerified"
FRACTION_VOIDED = "ledger.course:Course.FractionVoided"


class Stamp(msgspec.Struct, tag_field="_type_", tag="datetime_iso", forbid_unknown_fields=True):
    """A stored datetime: {"_type_": "datetime_iso", "_data_": its isoformat()} (nothing else, or the
    transcoder would not decode it as one)."""

    iso: str = msgspec.field(name="_data_")


class Meta(msgspec.Struct):
    recorded_at: Stamp


class Record(msgspec.Struct):
    """The fields of a delivered fraction's record that the fractions row takes."""

    record_id: str
    group: int
    number: int
    centre: str | None
    machine: str | None
    plan_uid: str | None
    delivered_at: Stamp | None
    delivery_type: str | None
    operator: str | None
    note: str | None
    beams: msgspec.Raw  # stored as JSON in the row, as the mapper's objects would be (`Decoder.json`)
    warnings: msgspec.Raw
    source: str | None
    source_uid: str | None
    recorded_at: Stamp | None
    recorded_by: str | None
    part_of: str | None = None


class Delivered(msgspec.Struct):
    record: Record


class Verified(msgspec.Struct):
    record_ids: list[str]
    by: str | None
    meta: Meta


class Voided(msgspec.Struct):
    record_ids: list[str]
    reason: str | None
    by: str | None
    meta: Meta


STRUCTS: dict[str, type] = {FRACTION_DELIVERED: Delivered, FRACTION_VERIFIED: Verified, FRACTION_VOIDED: Voided}
EMPTY_LIST = b"[]"
NESTED = frozenset({list, dict})
MEMO = 4096  # stored JSON values remembered with their row text
TAG, ESCAPE = b"_type_", b"\\u"  # (a key can be written with escapes: then it is untagged to be sure)


def dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


class Decoder:
    """The fast decoder of one application's notifications (its mapper's cipher and compressor)."""

    def __init__(self, mapper: Any):
        self.mapper = mapper
        self.cipher = mapper.cipher
        self.compressor = mapper.compressor
        transcoder = mapper.transcoder
        self.names = getattr(transcoder, "names", {})
        usable = (isinstance(transcoder, JSONTranscoder)
                  and isinstance(self.names.get("datetime_iso"), DatetimeAsISO))
        self.decoders = {topic: msgspec.json.Decoder(struct) for topic, struct in STRUCTS.items()
                         if usable and not upcast(topic)}
        self.any = msgspec.json.Decoder()
        # stored JSON -> its row text: a course's fractions mostly repeat the plan's beams, MU for MU
        self.texts: dict[bytes, str] = {}

    def handles(self, topic: str) -> bool:
        return topic in self.decoders

    def decode(self, notification: Any) -> Any:
        """The notification's event as its topic's Struct, or None (then the mapper decodes it)."""
        try:
            state = notification.state
            if self.cipher is not None:
                state = self.cipher.decrypt(state)
            if self.compressor is not None:
                state = self.compressor.decompress(state)
            return self.decoders[notification.topic].decode(state)
        except Exception:  # noqa: BLE001 - the mapper decodes it again, and says what is wrong
            return None

    def json(self, raw: msgspec.Raw) -> str:
        """A stored JSON value (list or object) as the read model stores what the mapper decodes:
        msgspec's JSON of it, the transcoder's objects (a Decimal, a datetime) made first."""
        data = bytes(raw)
        if data == EMPTY_LIST:
            return "[]"
        text = self.texts.get(data)
        if text is None:
            value = self.any.decode(data)
            text = dumps(untag(value, self.names) if TAG in data or ESCAPE in data else value)
            if len(self.texts) >= MEMO:
                self.texts.clear()
            self.texts[data] = text
        return text


def untag(value: Any, names: dict) -> Any:
    """What `JSONTranscoder.decode` makes of a decoded JSON list or object: each object of exactly
    the keys `_type_` and `_data_`, innermost first, becomes what its registered transcoding decodes."""
    if value.__class__ is list:
        return [untag(v, names) if v.__class__ in NESTED else v for v in value]
    if len(value) == 2 and "_type_" in value and "_data_" in value and value["_data_"].__class__ not in NESTED:
        return names[value["_type_"]].decode(value["_data_"])  # (its values are what they decode to already)
    d = {k: (untag(v, names) if v.__class__ in NESTED else v) for k, v in value.items()}
    if len(d) == 2 and "_type_" in d and "_data_" in d:
        return names[d["_type_"]].decode(d["_data_"])
    return d


def upcast(topic: str) -> bool:
    """Whether the topic's event class has a class version (its old events are upcast on decoding)."""
    try:
        return hasattr(resolve_topic(topic), "class_version")
    except Exception:  # noqa: BLE001 - not resolvable here: leave it to the mapper
        return True
