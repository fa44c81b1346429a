"""A centre of the network, and the public key its bundles are signed with.

The public key is part of the log so that every site checks a partner's bundles against
the same key and a change of key is itself a recorded, attributable event. The private
key is never given to the ledger (see adapters/keys.py).
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger import errors
from ledger.course import NAMESPACE
from ledger.origin import normalized_name as normalized  # case and spacing do not tell two centres apart


def centre_id_for(name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"centre/{name}")


class Centre(Aggregate):
    @staticmethod
    def create_id(name: str, **_: Any) -> uuid.UUID:
        return centre_id_for(name)

    @event("Registered")
    def __init__(self, *, name: str, public_key: str | None, meta: dict):
        self.name = name
        self.public_key = public_key
        self.previous_keys: list[str] = []
        self.aliases: list[dict] = []  # {"kind", "value"}: what partners' systems call this centre
        self.zone: str | None = None  # IANA zone of times its records give without an offset

    def check_key_change(self, public_key: str, replace: bool) -> None:
        if self.public_key is not None and not replace:
            raise errors.CentreConflict(
                "centre_conflict.centre_already_has_public", name=self.name
            )

    def set_key(self, public_key: str | None, replace: bool, meta: dict) -> bool:
        """Record a (new) key; the same key again changes nothing."""
        if public_key is None or public_key == self.public_key:
            return False
        self.check_key_change(public_key, replace)
        self._key_set(public_key=public_key, meta=meta)
        return True

    @event("KeySet")
    def _key_set(self, public_key: str, meta: dict) -> None:
        if self.public_key is not None:
            self.previous_keys.append(self.public_key)
        self.public_key = public_key

    # ---- what a partner's systems call this centre, and its time zone ------------------------

    def add_alias(self, kind: str, value: str, meta: dict) -> bool:
        if {"kind": kind, "value": value} in self.aliases:
            return False
        self._alias_added(kind=kind, value=value, meta=meta)
        return True

    def set_zone(self, zone: str, meta: dict) -> bool:
        check_zone(zone)
        if zone == self.zone:
            return False
        self._zone_set(zone=zone, meta=meta)
        return True

    @event("AliasAdded")
    def _alias_added(self, kind: str, value: str, meta: dict) -> None:
        self.aliases.append({"kind": kind, "value": value})

    @event("ZoneSet")
    def _zone_set(self, zone: str, meta: dict) -> None:
        self.zone = zone


# What a partner's DICOM says where it was made: an institution name, a station name, an AE title.
ALIAS_KINDS: tuple[str, ...] = ("institution", "station", "aet")


def alias_id_for(kind: str, value: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"centre-alias/{kind}/{normalized(value)}")


def check_alias(kind: str, value: str) -> None:
    if kind not in ALIAS_KINDS:
        raise errors.InvalidCommand("kind", "invalid.alias_one_not", alias_kinds=', '.join(ALIAS_KINDS), kind=repr(kind))
    limit = 16 if kind == "aet" else 64
    if not normalized(value) or len(value) > limit or any(ord(c) < 32 for c in value) or "\\" in value:
        raise errors.InvalidCommand(kind, "invalid.not_dicom_name_characters", value=repr(value), kind=kind, limit=limit)


def check_zone(zone: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.InvalidCommand("zone", "invalid.not_iana_time_zone", zone=repr(zone)) from None


class CentreAlias(Aggregate):
    """One name a partner's systems use, and the centre it means: one stream per name, so that a
    name can never mean two centres, even when two physicists declare it at the same moment."""

    @staticmethod
    def create_id(kind: str, value: str, **_: Any) -> uuid.UUID:
        return alias_id_for(kind, value)

    @event("Registered")
    def __init__(self, *, kind: str, value: str, centre: str, meta: dict):
        self.kind = kind
        self.value = value
        self.centre = centre


def get_centre(uow: Any, name: str) -> Centre:
    """A centre this ledger knows (its key, aliases, zone), loaded in `uow` (a `UnitOfWork`);
    refused when it knows none of that name."""
    found = uow.get(centre_id_for(name))
    if found is None:
        raise errors.CentreNotFound("centre_not_found.centre_not_known_here", name=name, name2=name)
    return found


def centre_or_new(uow: Any, name: str, meta: dict) -> tuple[Centre, bool]:
    """(the centre, False), or (a new centre of that name, True) when the ledger knows none."""
    try:
        return get_centre(uow, name), False
    except errors.CentreNotFound:
        return Centre(name=name, public_key=None, meta=meta), True
