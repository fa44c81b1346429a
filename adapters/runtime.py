"""Opening a ledger: the application on its storage, with its read model kept current."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo
from pathlib import Path

from eventsourcing.persistence import IntegrityError, InternalError, OperationalError

from adapters.log_guard import LogGuard
from adapters.readmodel import ReadModel
from adapters.readmodel_snapshot import ReadSnapshot
from adapters.storage import Storage
from ledger.receipts import WorkingTime, parse_duration
from ledger.service import FractionLedger, utc_now

CLOCK_ENV = "FRACTION_LEDGER_CLOCK"
ZONE_ENV = "FRACTION_LEDGER_TZ"


def department_zone() -> ZoneInfo:
    """The department's named zone (FRACTION_LEDGER_TZ, default Europe/Brussels): local times on
    pages, and times that carry no offset, read with the offset in force on their date (DST)."""
    return ZoneInfo(os.environ.get(ZONE_ENV, "Europe/Brussels"))


GAP_ALARM_ENV, PRESCRIBE_ENV = "FRACTION_LEDGER_GAP_ALARM_DAYS", "FRACTION_LEDGER_PHYSICISTS_PRESCRIBE"


def gap_alarm_days() -> int:
    """A category 1 course prolonged by more treatment days than this raises the gap alarm
    (FRACTION_LEDGER_GAP_ALARM_DAYS, default 2, RCR's limit; ledger/gaps.py)."""
    from ledger.gaps import ALARM_AFTER_DAYS

    text = os.environ.get(GAP_ALARM_ENV, "").strip()
    if not text:
        return ALARM_AFTER_DAYS
    try:
        days = int(text)
    except ValueError:
        raise ValueError(f"{GAP_ALARM_ENV}: a whole number of treatment days, got {text!r}") from None
    if days < 0:
        raise ValueError(f"{GAP_ALARM_ENV}: a whole number of treatment days, got {text!r}")
    return days


def physicists_prescribe() -> bool:
    """Whether physicists may propose prescription amendments here (FRACTION_LEDGER_PHYSICISTS_PRESCRIBE=1)."""
    return os.environ.get(PRESCRIBE_ENV, "").strip().lower() in ("1", "true", "yes")


def local_text(moment: str | datetime | None, missing: str = "–") -> str:
    """A stored time (UTC, or with the offset it was told with) as the department's wall clock
    shows it, for people reading a page, a listing or a CSV: never a slice of a UTC string."""
    if not moment:
        return missing
    try:
        at = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
        return at.astimezone(department_zone()).strftime("%Y-%m-%d %H:%M")
    except (TypeError, ValueError):
        return str(moment)


SILENCE_ENV, HOURS_ENV = "FRACTION_LEDGER_SOURCE_SILENCE", "FRACTION_LEDGER_WORKING_HOURS"


def freshness_policy() -> tuple[timedelta, WorkingTime]:
    """When a source counts as silent: FRACTION_LEDGER_SOURCE_SILENCE (default 30m) of working
    time, FRACTION_LEDGER_WORKING_HOURS (default 'Mon-Fri 07:00-19:00', in the department's zone)."""
    limit_text = os.environ.get(SILENCE_ENV, "30m")
    hours_text = os.environ.get(HOURS_ENV, "Mon-Fri 07:00-19:00")
    try:
        limit = parse_duration(limit_text)
    except ValueError as exc:
        raise ValueError(f"{SILENCE_ENV}: {exc}") from None
    try:
        hours = WorkingTime.parse(hours_text)
    except ValueError as exc:
        raise ValueError(f"{HOURS_ENV}: {exc}") from None
    return limit, hours


def system_clock() -> Callable[[], datetime]:
    """The ledger's clock: the wall clock, or for a drill, a training copy or the tests, a clock that
    starts at the instant in FRACTION_LEDGER_CLOCK (ISO-8601 with an offset) and runs on in real time."""
    start_text = os.environ.get(CLOCK_ENV, "").strip()
    if not start_text:
        return utc_now
    try:
        start = datetime.fromisoformat(start_text)
    except ValueError:
        raise ValueError(f"{CLOCK_ENV}: {start_text!r} is not an ISO-8601 date and time") from None
    if start.tzinfo is None:
        raise ValueError(f"{CLOCK_ENV}: {start_text!r} needs a UTC offset, e.g. 2027-03-28T09:00:00+02:00")
    began = time.monotonic()
    start = start.astimezone(timezone.utc)
    return lambda: start + timedelta(seconds=time.monotonic() - began)


def open_application(storage: Storage, clock: Callable[[], datetime]) -> FractionLedger:
    """The application on its storage. PostgreSQL refuses concurrent `CREATE TABLE IF NOT
    EXISTS` from processes starting together ("tuple concurrently updated"): try again."""
    for attempt in range(10):
        try:
            return FractionLedger(env=storage.event_store_env(), clock=clock, zone=department_zone())
        except (InternalError, OperationalError, IntegrityError):
            if attempt == 9:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def check_encryption(app: FractionLedger, storage: Storage) -> None:
    """Refuse a key that does not fit the log (or a missing one) before anything is written:
    a log must be encrypted from its first event or not at all."""
    first = app.recorder.select_notifications(None, 1)
    if not first:
        return
    last = app.recorder.select_notifications(app.recorder.max_notification_id(), 1)
    try:
        for notification in (first + last):  # the oldest and the newest: a mixed log is refused too
            app.mapper.to_domain_event(notification)
    except Exception:  # the cipher, compressor or JSON decoder each fail in their own way
        app.close()
        if storage.encrypted:
            raise ValueError(
                "the cipher key does not decrypt this ledger (wrong key, or a ledger created without encryption)"
            ) from None
        raise ValueError(
            "this ledger is encrypted: give its key (--cipher-key-file or FRACTION_LEDGER_CIPHER_KEY)"
        ) from None


class Ledger:
    """What every entry point (CLI, server, bench) works with."""

    def __init__(self, db: str | None = None, clock: Callable[[], datetime] | None = None,
                 cipher_key_file: str | None = None, read_db: str | None = None, verify_all: bool = False):
        """`read_db`: the read model's file, instead of the configured one (a scratch ledger's own).
        `verify_all`: verify the hash chain from the first event, not from the head verified last time."""
        clock = clock or system_clock()
        self.storage = Storage.from_option(db, cipher_key_file)
        self.storage.check_reachable()
        self.app = open_application(self.storage, clock)
        check_encryption(self.app, self.storage)
        source = self.storage.url if self.storage.is_postgres else str(Path(self.storage.url).resolve())
        self.read = ReadModel(Path(read_db) if read_db else self.storage.read_model_path(), source=source)
        # An encrypted ledger's read model, in memory, from its encrypted snapshot (else rebuilt).
        snapshot_path = None if read_db else self.storage.read_snapshot_path()
        self.snapshot = None
        if snapshot_path is not None and self.storage.cipher_key is not None:
            self.snapshot = ReadSnapshot(snapshot_path, self.storage.cipher_key, source)
            self.snapshot.restore(self.read)
        # Before anything is read or written: the log must be what its hash chain says (adapters.log_guard).
        self.guard = LogGuard(self.app)
        try:
            self.guard.start(None if verify_all else self.read.verified_head())
            self.read.store_verified_head(self.guard.position, self.guard.head)
        except BaseException:
            self.close()
            raise
        self.read.guard = self.guard
        self.app.recorder.guard = self.guard

    def fresh(self) -> ReadModel:
        """The read model, caught up with everything recorded so far."""
        applied = self.read.catch_up(self.app)
        if applied and self.snapshot is not None:
            self.snapshot.projected(self.read, applied)
        return self.read

    def close(self) -> None:
        try:
            if self.snapshot is not None:
                self.snapshot.close(self.read)
        finally:
            self.read.close()
            self.app.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
