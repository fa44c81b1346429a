"""What every command of the ledger shares: who acts (`Actor`), parsing raw input into a
command Struct (`parse`), the clock, and the one retry policy of a unit of work.

A unit of work decides on the state it loaded and saves everything it changed in one
transaction. When another writer appended first (an `IntegrityError` on a stream's version),
nothing was saved: `retrying` runs the decision again on the state that writer left, up to
`MAX_ATTEMPTS` times with a short random pause, then refuses as contended. Every command —
a fraction, an import, a bundle — goes through it, so two centres racing for one fraction
are decided one after the other.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import date, datetime, timezone
from typing import Any, TypeVar

import msgspec
from eventsourcing.persistence import IntegrityError, Transcoding

from ledger import errors
from ledger.validation import explain

T = TypeVar("T", bound=msgspec.Struct)
R = TypeVar("R")
MAX_ATTEMPTS = 30
PAUSE = 0.002  # seconds, times the attempt: the upper bound of the random pause before deciding again


class Actor(msgspec.Struct, frozen=True):
    """Who is doing it, and from which centre: recorded on every event."""

    user: str
    centre: str


SYSTEM = Actor(user="system", centre="-")


def parse(kind: type[T], data: Any) -> T:
    """Validate raw input into a command; the error names the field and the reason."""
    if isinstance(data, kind):
        return data
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        field, reason = explain(str(exc))
        raise errors.InvalidCommand(field or "body", reason["code"], **reason["params"]) from None


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def retrying(attempt: Callable[[], R], contended: str = "contended.course_kept_changing_while") -> R:
    """`attempt()` decides and saves; run it again while another writer got in first."""
    for n in range(MAX_ATTEMPTS):
        try:
            return attempt()
        except IntegrityError:
            time.sleep(random.uniform(0, PAUSE * (n + 1)))
    raise errors.StillContended(contended)


class DateAsISO(Transcoding):
    """Dates in stored events, as ISO-8601 text."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)
