"""Group commit (ledger/unit_of_work.py): saves that arrive together are written in one
transaction, each answered only once it is written; a conflict in a batch costs only the save
that really lost. Driven with threads on eventsourcing's in-memory store; the ledger's own
races (tests/test_core_race.py, tests/test_http_server.py) run through it too."""

from __future__ import annotations

import threading

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from ledger.unit_of_work import GroupCommit
from tests.conftest import wait_for


class Tally(Aggregate):
    @event("Created")
    def __init__(self, name: str):
        self.name, self.n = name, 0

    @event("Ticked")
    def tick(self) -> None:
        self.n += 1


class Store:
    """An in-memory eventsourcing application whose writes can be held, to let saves queue."""

    def __init__(self):
        self.app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
        self.writes: list[int] = []  # events per transaction
        self.hold = threading.Event()
        self.hold.set()
        self.writing = threading.Event()

    def save(self, *events):
        self.writing.set()
        assert self.hold.wait(10)
        self.writes.append(len(events))
        return self.app.save(*events)


def in_threads(n, work):
    errors: list[BaseException | None] = [None] * n

    def run(i):
        try:
            work(i)
        except BaseException as exc:  # noqa: BLE001 - what each thread was answered
            errors[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads, errors


def test_saves_that_arrive_while_one_is_written_go_together_in_one_transaction():
    store = Store()
    commit = GroupCommit(store.save)
    tallies = [Tally(f"t{i}") for i in range(16)]
    store.hold.clear()  # the first save is being written (fsync) while the others arrive
    first, _ = in_threads(1, lambda i: commit.save(tallies[0]))
    assert store.writing.wait(10)
    rest, errors = in_threads(15, lambda i: commit.save(tallies[i + 1]))
    wait_for(lambda: len(commit._queue) == 15, "the fifteen saves queued")
    assert all(t.is_alive() for t in rest)  # nobody is answered before their save is written
    store.hold.set()
    for t in first + rest:
        t.join(10)
    assert errors == [None] * 15
    assert store.writes == [1, 15]  # two transactions for sixteen saves
    assert [store.app.repository.get(t.id).name for t in tallies] == [f"t{i}" for i in range(16)]


def test_in_a_conflicting_batch_only_the_save_that_lost_is_refused():
    store = Store()
    commit = GroupCommit(store.save)
    shared = Tally("shared")
    store.app.save(shared)
    one, two = store.app.repository.get(shared.id), store.app.repository.get(shared.id)
    one.tick()
    two.tick()  # decided on the same version as `one`: one of them must lose
    other = Tally("other")
    store.hold.clear()
    blocker, _ = in_threads(1, lambda i: commit.save(Tally("first")))
    assert store.writing.wait(10)
    threads, errors = in_threads(3, lambda i: commit.save([one, two, other][i]))
    wait_for(lambda: len(commit._queue) == 3, "the three saves queued")
    store.hold.set()
    for t in blocker + threads:
        t.join(10)
    assert [type(e) for e in errors].count(IntegrityError) == 1 and errors[2] is None
    assert store.app.repository.get(shared.id).n == 1 and store.app.repository.get(other.id).name == "other"


def test_what_the_store_refuses_is_the_answer_of_every_save_of_the_batch():
    def broken(*events):
        raise OSError("disk full")

    commit = GroupCommit(broken)
    with pytest.raises(OSError, match="disk full"):
        commit.save(Tally("a"))
    commit = GroupCommit(lambda *e: None)
    commit.save(Tally("b"))  # the committer is free again after a failure
    commit.save()  # nothing to write: answered at once
