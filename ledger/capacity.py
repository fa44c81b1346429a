"""What a partner offers during an outage: its capacity declarations, one stream per centre.

"40 of our patients after hours for 1-2 months": a declaration says how many patients (or
treatment slots) a day, in which time window, from when until when, on which of its machines.
A declaration is never edited: an amendment is a new version. On a day, the version in force is
the newest one whose period holds that day (a newer version with another period does not hide
an older one outside it).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from eventsourcing.domain import Aggregate, event

from ledger import errors
from ledger.course import NAMESPACE


def capacity_id_for(centre: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"capacity/{centre}")


def check_declaration(offer: dict) -> None:
    if offer["valid_until"] is not None and offer["valid_until"] < offer["valid_from"]:
        raise errors.InvalidCommand("valid_until", "invalid.until_before_from",
                                    valid_from=offer["valid_from"], valid_until=offer["valid_until"])
    if offer["window_end"] <= offer["window_start"]:
        raise errors.InvalidCommand("window_end", "invalid.window_end_before_start",
                                    window_start=offer["window_start"], window_end=offer["window_end"])


class Capacity(Aggregate):
    @staticmethod
    def create_id(centre: str, **_: Any) -> uuid.UUID:
        return capacity_id_for(centre)

    @event("Opened")
    def __init__(self, *, centre: str, meta: dict):
        self.centre = centre
        self.versions: list[dict] = []
        self.taken: list[str] = []  # courses accepted for this partner (their assignments are on the courses)

    def declare(self, offer: dict, meta: dict) -> dict:
        """Record a declaration (or amendment) as the next version; the same as the newest changes nothing."""
        check_declaration(offer)
        if self.versions and {k: v for k, v in self.versions[-1].items() if k not in ("version", "by", "at")} == offer:
            return self.versions[-1]
        self._declared(offer=offer, version=len(self.versions) + 1, meta=meta)
        return self.versions[-1]

    def in_force(self, day: date) -> dict | None:
        for version in reversed(self.versions):
            until = version["valid_until"]
            if version["valid_from"] <= day and (until is None or day <= until):
                return version
        return None

    def take(self, course_ids: list[str], meta: dict) -> None:
        """Accepted assignments to this partner, recorded on its stream too: two physicists accepting
        at the same moment append to the same stream, so one of them decides again on the other's
        result and a partner is never filled beyond its capacity by a race."""
        self._taken(course_ids=list(course_ids), meta=meta)

    @event("PlacesTaken")
    def _taken(self, course_ids: list[str], meta: dict) -> None:
        self.taken.extend(course_ids)

    @event("Declared")
    def _declared(self, offer: dict, version: int, meta: dict) -> None:
        self.versions.append({**offer, "version": version, "by": meta["user"], "at": meta["recorded_at"]})
