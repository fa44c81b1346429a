"""What a course's counts are: how many fractions were delivered, how many sessions wait for their
double check or carry a warning, and which session was the last. One definition, used by the
`Course` aggregate and by the read model's course rows (which store these numbers for lists).

A *record* here is anything with a `FractionRecord`'s `group`, `number`, `voided`, `verified_by`,
`warnings`, `delivered_at` (aware) and `centre`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple


class Tally(NamedTuple):
    delivered: int  # fractions: a continuation or a further record of a session is the same fraction
    awaiting_verification: int  # sessions no second person verified yet
    with_warnings: int  # sessions accepted with a warning
    last: Any  # the latest session by the moment it was delivered (not by how its time is written), or None


def tally(records: Iterable[Any]) -> Tally:
    """The counts of a course's records; a voided record counts for nothing."""
    active = [r for r in records if not r.voided]
    last = max(active, key=lambda r: r.delivered_at, default=None)
    return Tally(
        delivered=len({(r.group, r.number) for r in active}),
        awaiting_verification=sum(1 for r in active if r.verified_by is None),
        with_warnings=sum(1 for r in active if r.warnings),
        last=last,
    )
