"""The ledger defends its log: nothing is projected, shown as current or written on top of an
event the hash chain does not cover.

At open (server start, every CLI command) the guard verifies the chain from the last head it
verified before: the read model stores that position and hash. A missing record, one from
another log, or one whose position no longer has that hash on the chain (the log was replaced
or rewritten) means verifying from the first event again. After that, every read-model
catch-up first extends the verified part over the events it is about to project, and every
append first extends it to the current head (`adapters.chain.Guarded`).

On the first problem (an event edited, deleted, moved, or written outside the ledger) the
guard keeps it: every append is refused with `LogCompromised` naming the event, `/ready`
answers 503 and every page shows the alarm. Reads go on from the read model, which stops at
the last event that held, so staff can still see what was recorded; each read is still
written to the access log (the one kind of event still appended: it records no clinical fact).

What an incremental start does not see: an edit, made while the ledger was closed, to an
event at or before the stored head. `fraction-ledger verify` recomputes the whole chain (with
`--head` a printed head also finds a cut tail), and `serve --verify-all` does so at start.
"""

from __future__ import annotations

import threading
from typing import Any

from adapters import chain
from adapters.chain import GENESIS, ChainEntry
from ledger.access_log import TOPIC as ACCESS_LOG_TOPIC
from ledger.errors import LogCompromised

STILL_RECORDED = frozenset({ACCESS_LOG_TOPIC})


class LogGuard:
    def __init__(self, app: Any, batch: int = chain.BATCH):
        self.app = app
        self.batch = batch
        self.position = 0  # every event up to here holds, ending in hash `head`
        self.head = GENESIS
        self.problem: dict | None = None
        self.started_from: int | None = None  # where verification began at open (0: from the first event)
        self.checked = 0  # events verified since open
        self._lock = threading.Lock()

    def start(self, record: tuple[int, str] | None) -> None:
        """Verify from `record` (position, hash) when the chain still has that hash there, else from the start."""
        if record is not None and record[0] > 0:
            position, hash_ = record
            entries = chain.chained_recorder(self.app).select_chain(position - 1, 1)
            if entries and entries[0].id == position and entries[0].hash == hash_:
                self.position, self.head = position, hash_
        self.started_from = self.position
        self.cover(None)

    def cover(self, upto: int | None) -> int:
        """Verify the events after the verified position, through `upto` (None: to the head);
        returns the verified position (short of `upto` when a problem stops it)."""
        with self._lock:
            while self.problem is None and (upto is None or self.position < upto):
                step = chain.check_after(self.app, self.position, self.head, self.batch)
                if step.entries:
                    last: ChainEntry = step.entries[-1]
                    self.position, self.head = last.id, last.hash
                    self.checked += len(step.entries)
                if step.problem is not None:
                    self.problem = step.problem
                elif not step.entries:
                    break
            return self.position

    def before_write(self, topics: list[str] | None = None) -> None:
        """Refuse to write on a log that fails its check, including events others appended since.
        Access-log entries (NEN 7513) are still written: they record who read what, no clinical fact,
        and reads must stay possible (and logged) while the log is under alarm."""
        self.cover(None)
        if self.problem is not None and not (topics and all(t in STILL_RECORDED for t in topics)):
            raise self.refusal()

    def refusal(self) -> LogCompromised:
        assert self.problem is not None
        return LogCompromised(self.problem, position=self.position)

    def status(self) -> dict:
        return {"ok": self.problem is None, "verified_position": self.position, "head": self.head,
                "started_from": self.started_from, "checked": self.checked, "problem": self.problem}
