"""What the ledger received from its sources, and when: how current the baseline is.

Every object a source hands over (stored to the listener, pulled from an archive, dropped in
a watch folder) leaves one `Receipt`: the source's name, how it came (channel), the kind of
object, its SOP Instance UID, the course it concerned, the ledger's answer and when. A
receipt is its own small aggregate (one insert, nothing loaded), written after the object's
import, so a receipt never claims an import that did not happen.

Freshness is the domain's rule here: a source is silent when more working time than the
limit has passed since its last object (`silence`). Working time counts only the working
days and hours of the department's zone, so a quiet weekend is not an alarm, and Monday's
first half hour without records is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from eventsourcing.domain import Aggregate, event

CHANNELS = ("listen", "pull", "watch")


class Receipt(Aggregate):
    """One object received from a source."""

    @staticmethod
    def create_id(**_: Any) -> uuid.UUID:
        return uuid.uuid4()

    @event("Received")
    def __init__(self, source: str, channel: str, kind: str, sop_instance_uid: str, course_id: str | None,
                 status: str, meta: dict):
        self.source = source
        self.channel = channel
        self.kind = kind
        self.sop_instance_uid = sop_instance_uid
        self.course_id = course_id
        self.status = status
        self.received_at = meta["recorded_at"]


def record_receipt(app: Any, source: str, channel: str, kind: str, sop_instance_uid: str,
                   course_id: str | None, status: str, actor: Any) -> None:
    """Record that `source` handed over one object and what the ledger answered."""
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r}: one of {', '.join(CHANNELS)}")

    def act(meta: dict) -> tuple[list[Any], None]:
        return [Receipt(source=source, channel=channel, kind=kind, sop_instance_uid=sop_instance_uid,
                        course_id=course_id, status=status, meta=meta)], None

    app.uow.run("record_receipt", {"source": source, "sop_instance_uid": sop_instance_uid}, actor, None, act)


# ---- freshness -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkingTime:
    """The hours in which sources are expected to send: `days` are ISO weekdays (1 = Monday)."""

    days: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    start: time = time(7, 0)
    end: time = time(19, 0)

    DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

    @classmethod
    def parse(cls, text: str) -> WorkingTime:
        """`Mon-Fri 07:00-19:00`, `Mon-Sun 00:00-24:00`, `Mon,Wed 08:00-16:30`; ValueError naming the part."""
        try:
            days_text, hours_text = text.split()
        except ValueError:
            raise ValueError(f"{text!r}: expected DAYS HOURS, e.g. 'Mon-Fri 07:00-19:00'") from None
        days: set[int] = set()
        for part in days_text.lower().split(","):
            first, _, last = part.partition("-")
            if first[:3] not in cls.DAY_NAMES or (last and last[:3] not in cls.DAY_NAMES):
                raise ValueError(f"{part!r}: days are Mon..Sun, e.g. Mon-Fri")
            a = cls.DAY_NAMES.index(first[:3]) + 1
            b = cls.DAY_NAMES.index(last[:3]) + 1 if last else a
            days.update(range(a, b + 1) if a <= b else [*range(a, 8), *range(1, b + 1)])
        start_text, sep, end_text = hours_text.partition("-")
        try:
            start = time.fromisoformat(start_text)
            end = time.max if end_text == "24:00" else time.fromisoformat(end_text)
        except ValueError:
            raise ValueError(f"{hours_text!r}: hours are HH:MM-HH:MM, e.g. 07:00-19:00") from None
        if not sep or end <= start:
            raise ValueError(f"{hours_text!r}: the end of the working hours must be after their start")
        return cls(frozenset(days), start, end)

    def between(self, since: datetime, until: datetime, zone: tzinfo, cap: timedelta | None = None) -> timedelta:
        """Working time from `since` to `until`, counted in `zone` (its DST included); stops
        counting once `cap` is reached (a source silent for a year costs no year of loop)."""
        total = timedelta()
        if until <= since:
            return total
        day = since.astimezone(zone).date()
        last = until.astimezone(zone).date()
        while day <= last:
            if day.isoweekday() in self.days:
                opens = datetime.combine(day, self.start, zone)
                closes = datetime.combine(day, self.end, zone)
                lo, hi = max(opens, since), min(closes, until)
                if hi > lo:
                    total += hi - lo
                    if cap is not None and total >= cap:
                        return total
            day += timedelta(days=1)
        return total


def silence(last_received: datetime, now: datetime, limit: timedelta, hours: WorkingTime, zone: tzinfo) -> timedelta | None:
    """The working time a source has been silent, when it is beyond `limit` (else None)."""
    quiet = hours.between(last_received, now, zone, cap=limit + timedelta(seconds=1))
    return quiet if quiet > limit else None


def parse_duration(text: str) -> timedelta:
    """`30m`, `2h`, `90s`, `1d`; ValueError naming the value."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in units or not value.isdigit() or int(value) == 0:
        raise ValueError(f"{text!r}: a duration like 30m, 2h, 90s or 1d")
    return timedelta(seconds=int(value) * units[unit])


def source_states(sources: list[dict], now: datetime, limit: timedelta, hours: WorkingTime,
                  zone: tzinfo) -> list[dict]:
    """Each source (name, last_received_at ISO text, ...) with `silent_minutes`: the working
    minutes it has been silent beyond `limit`, or None while it is current."""
    out = []
    for s in sources:
        last = datetime.fromisoformat(s["last_received_at"])
        quiet = silence(last, now, limit, hours, zone)
        out.append({**s, "silent_minutes": None if quiet is None else int(quiet.total_seconds() // 60)})
    return out
