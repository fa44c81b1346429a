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

    def check_key_change(self, public_key: str, replace: bool) -> None:
        if self.public_key is not None and not replace:
            raise errors.CentreConflict(
                f"Centre {self.name} already has a public key; replacing it needs --replace-key "
                "(bundles signed with the old key will then be refused)."
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
