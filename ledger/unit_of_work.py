"""What every command of the ledger shares: who acts (`Actor`), parsing raw input into a
command Struct (`parse`), the clock, and `UnitOfWork`: the one way a command decides and saves,
with its one retry policy.

A unit of work decides on the state it loaded and saves everything it changed in one
transaction. When another writer appended first (an `IntegrityError` on a stream's version),
nothing was saved: `retrying` runs the decision again on the state that writer left, up to
`MAX_ATTEMPTS` times with a short random pause, then refuses as contended. Every command —
a fraction, an import, a bundle — goes through it, so two centres racing for one fraction
are decided one after the other.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, TypeVar

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, Transcoding

from ledger import errors
from ledger.requests import Request, fingerprint, request_aggregate_id
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


class UnitOfWork:
    """Runs a command: `act(meta)` loads what it needs, decides (raising a refusal) and returns
    (aggregates to save, result); everything is saved in one transaction, group-committed with
    the saves that arrive together, and retried on the winner's state when another writer got in
    first. A command with a request id is answered once: its result is saved with it as a
    `Request`, and the same request again gets that first answer (a different one under the
    same id is refused). Every command service of the ledger is given this one object."""

    def __init__(self, repository: Any, save: Callable[..., Any], clock: Callable[[], datetime]):
        self.repository, self.save, self.clock = repository, save, clock
        self.group_commit = GroupCommit(save)

    def meta(self, actor: Actor, request_id: str | None) -> dict:
        """What every event records of its cause: who, from which centre, when, which request."""
        return {"user": actor.user, "centre": actor.centre, "recorded_at": self.clock(), "request_id": request_id}

    def get(self, aggregate_id: Any) -> Any:
        """The aggregate with that id, or None when the store holds no such stream."""
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    def previous_answer(self, request_id: str | None, command: str, fp: str) -> Any:
        """The first result of this request, or None when it is new."""
        if request_id is None:
            return None
        request = self.get(request_aggregate_id(request_id))
        if request is None:
            return None
        if request.fingerprint != fp:
            raise errors.RequestIdReused(
                "request_id_reused.request_id_was_already", request_id=repr(request_id), command=request.command
            )
        return request.result

    def run(self, command: str, payload: Any, actor: Actor, request_id: str | None,
            act: Callable[[dict], tuple[list[Any], Any]], returns: Any = None) -> Any:
        """Run `act(meta)` -> (aggregates to save, result) until it saves without a conflict.
        `returns`: the type of the result (a `schemas.results` Struct, a list of records), so that
        a repeated request's stored answer is given back as the same type."""
        fp = fingerprint(command, {"payload": payload, "actor": actor})

        def attempt() -> Any:
            answered = self.previous_answer(request_id, command, fp)
            if answered is not None:
                return answered if returns is None else msgspec.convert(answered, returns, strict=False)
            meta = self.meta(actor, request_id)
            aggregates, result = act(meta)
            if request_id is not None:
                stored = msgspec.to_builtins(result, builtin_types=(Decimal, datetime, date))
                aggregates.append(Request(request_id=request_id, command=command, fingerprint=fp, result=stored, meta=meta))
            self.group_commit.save(*aggregates)  # returns once durable, with the others that came together
            return result

        return retrying(attempt)


class GroupCommit:
    """Saves that arrive together are written in one transaction (group commit).

    Each command decides in its own thread on the state it loaded (a refusal is raised there:
    it never waits for others, and never blocks them), then hands its new events here and
    waits. One waiting thread at a time is the leader: it takes every save queued so far (at
    most `most`), writes them in ONE transaction of the store (events, request records, hash
    chain entries) and wakes their threads; each is answered only once that transaction is
    committed, i.e. durable. When the batch conflicts (two saves of the batch decided on the
    same version of a course, or another process appended first), each save of it is written
    again on its own, so only the ones that really lost get the `IntegrityError` that makes
    `retrying` decide them again on the winner's state. One save alone is written at once.
    """

    def __init__(self, save: Callable[..., Any], most: int = 64):
        self._save = save
        self._most = most
        self._ready = threading.Condition()
        self._queue: list[_Save] = []
        self._writing = False

    def save(self, *aggregates: Any) -> None:
        events = [e for a in aggregates if a is not None for e in a.collect_events()]
        if not events:
            return
        mine = _Save(events)
        with self._ready:
            self._queue.append(mine)
        while True:
            with self._ready:
                while self._writing and not mine.done:
                    self._ready.wait()
                if mine.done:
                    return mine.outcome()
                self._writing = True  # this thread leads: it writes what is queued, its own save first or later
                batch = self._queue[:self._most]
                del self._queue[:self._most]
            try:
                self._write(batch)
            except BaseException as exc:  # even an interrupt: no save of the batch is left waiting
                for s in batch:
                    if not s.done:
                        s.finish(exc)
                raise
            finally:
                with self._ready:
                    self._writing = False
                    self._ready.notify_all()

    def _write(self, batch: list[_Save]) -> None:
        try:
            self._save(*(e for s in batch for e in s.events))
        except IntegrityError as conflict:
            if len(batch) == 1:
                batch[0].finish(conflict)
                return
            for s in batch:  # who lost? each on its own, in the order they came
                try:
                    self._save(*s.events)
                    s.finish(None)
                except Exception as exc:  # noqa: BLE001 - handed to the thread that asked
                    s.finish(exc)
            return
        except Exception as exc:  # noqa: BLE001 - the store refused them all (e.g. the log guard)
            for s in batch:
                s.finish(exc)
            return
        for s in batch:
            s.finish(None)


class _Save:
    __slots__ = ("events", "done", "error")

    def __init__(self, events: list[Any]):
        self.events, self.done, self.error = events, False, None

    def finish(self, error: BaseException | None) -> None:
        self.done, self.error = True, error

    def outcome(self) -> None:
        if self.error is not None:
            raise self.error


class DateAsISO(Transcoding):
    """Dates in stored events, as ISO-8601 text."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)
