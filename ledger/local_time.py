"""Days as the people of a centre live them.

Moments are stored aware (the server's clock in UTC, a delivery with the offset it was told
with); a *date* (the day a course completed, the day a fraction was delivered) is computed in
the named zone of the centre it belongs to, with the offset in force on that day. Slicing the
date out of a UTC string would put a course completed at 00:30 in Brussels on 1 December on
November's statement, and one completed at 00:30 summer time on 1 July on June's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from zoneinfo import ZoneInfo

from ledger.schedule import local_day  # noqa: F401  (one definition of a moment's day: the schedule's)

# The zone of a centre that recorded none (`centre zone`), unless the application is given another.
DEFAULT_ZONE = ZoneInfo("Europe/Brussels")

ZoneOf = Callable[[str], tzinfo]


def zone_named(name: str | None, default: tzinfo = DEFAULT_ZONE) -> tzinfo:
    """A centre's recorded IANA zone, else the default (checked when it was recorded)."""
    return ZoneInfo(name) if name else default
