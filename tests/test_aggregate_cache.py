"""The aggregate cache (ledger/cache.py): a course is decided on from the cache only while the
log holds no newer version of it, each command gets its own copy, a failed save evicts."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError

from adapters.runtime import Ledger
from ledger import errors
from ledger.cache import AggregateCache, copy_aggregate
from ledger.course import Course
from ledger.service import Actor
from ledger.unit_of_work import GroupCommit
from tests.conftest import EACH_BACKEND, ROOT

T0 = datetime(2026, 11, 2, 8, tzinfo=timezone.utc)
RTT = Actor("rtt", "HOME")


def register(app, k: int = 1) -> str:
    return app.register_course(
        {"patient": {"id": f"C{k}", "name": "CACHE^ONE"}, "home_centre": "HOME",
         "plan": {"uid": f"1.2.826.0.1.77.{k}", "label": "cache",
                  "fraction_groups": [{"number": 1, "fractions_planned": 10, "beams": [{"number": 1, "meterset": "100"}]}]}},
        Actor("physicist", "HOME"))["id"]


def log(app, course: str, number: int):
    return app.log_fraction(course, {"number": number, "centre": "HOME", "machine": "L1", "operator": "rtt",
                                     "delivered_at": T0 + timedelta(days=number)}, RTT)


@EACH_BACKEND
def test_a_ledger_decides_on_what_another_ledger_on_the_same_log_wrote(db_url, tmp_path):
    with Ledger(db_url, read_db=str(tmp_path / "a.sqlite3")) as one, \
            Ledger(db_url, read_db=str(tmp_path / "b.sqlite3")) as two:
        course = register(one.app)
        log(one.app, course, 1)  # `one` keeps the course as it saved it
        assert one.app.course_cache.hits + one.app.course_cache.misses > 0 and len(one.app.course_cache) == 1
        log(two.app, course, 2)  # another writer: `one`'s kept course is now stale
        with pytest.raises(errors.FractionAlreadyDelivered):
            log(one.app, course, 2)  # decided on the log's version, not the kept one
        seen = one.app.get_course(course)
        assert [r.number for r in seen.records] == [1, 2] and seen.version == two.app.get_course(course).version
        hits = one.app.course_cache.hits
        log(one.app, course, 3)
        assert one.app.course_cache.hits == hits + 1  # current again: used from the cache
        assert [r.number for r in two.app.get_course(course).records] == [1, 2, 3]


def test_a_centre_another_ledger_registered_is_known_at_once(ledger, tmp_path):
    app = ledger.app
    app.outage.register_centre({"code": "HOME", "name": "Home"}, Actor("admin", "HOME"))
    course = register(app)
    log(app, course, 1)  # the registry is kept: HOME is known
    with pytest.raises(errors.UnknownCentre):
        app.log_fraction(course, {"number": 2, "centre": "NEW", "machine": "L1", "operator": "rtt",
                                  "delivered_at": T0 + timedelta(days=2)}, RTT)
    with Ledger(ledger.storage.url, read_db=str(tmp_path / "other.sqlite3")) as other:
        other.app.outage.register_centre({"code": "NEW", "name": "New partner"}, Actor("admin", "HOME"))
    app.log_fraction(course, {"number": 2, "centre": "NEW", "machine": "L1", "operator": "rtt",
                              "delivered_at": T0 + timedelta(days=2)}, RTT)
    assert [r.centre for r in app.get_course(course).records] == ["HOME", "NEW"]


def test_a_refused_command_leaves_the_kept_course_as_the_log_has_it(ledger):
    app = ledger.app
    course = register(app)
    log(app, course, 1)
    kept = app.course_cache._kept[app.get_course(course).id]
    version = kept.version
    with pytest.raises(errors.FractionOutOfRange):
        log(app, course, 11)
    with pytest.raises(errors.FractionAlreadyDelivered):
        log(app, course, 1)
    assert kept.version == version and [r.number for r in kept.records] == [1] and not kept.pending_events
    mine = app.get_course(course)
    mine.records.clear()  # what a caller does with its copy is its own
    assert [r.number for r in app.get_course(course).records] == [1]
    log(app, course, 2)
    assert [r.number for r in app.get_course(course).records] == [1, 2]


def test_a_conflict_evicts_and_the_command_is_decided_again_on_the_winner(ledger, tmp_path):
    app = ledger.app
    course = register(app)
    stale = app.get_course(course)  # e.g. the HTTP access check's copy
    with Ledger(ledger.storage.url, read_db=str(tmp_path / "other.sqlite3")) as other:
        log(other.app, course, 1)
    evicted = []
    real = app.course_cache.evict
    app.course_cache.evict = lambda aggregates: (evicted.extend(a.id for a in aggregates if a is not None),
                                            real(aggregates))
    with pytest.raises(errors.FractionAlreadyDelivered):
        app.log_fraction(course, {"number": 1, "centre": "HOME", "machine": "L1", "operator": "rtt",
                                  "delivered_at": T0}, RTT, loaded=stale)
    assert stale.id in evicted  # the save decided on the stale copy conflicted: nothing of it kept
    assert [r.number for r in app.get_course(course).records] == [1]


def test_any_failed_save_evicts_and_the_cache_is_bounded():
    loads = []

    class Box:
        def __init__(self, i):
            self.id, self.version, self.pending_events = i, 1, []

    def load(i):
        loads.append(i)
        return Box(i)

    cache = AggregateCache(load, lambda i: 1, kinds=(Box,), most=2)
    a, b, c = cache.get(1), cache.get(2), cache.get(3)
    assert len(cache) == 2 and loads == [1, 2, 3]
    cache.get(2)
    assert loads == [1, 2, 3]  # kept
    cache.get(1)
    assert loads == [1, 2, 3, 1]  # the least recently used went first

    class Changed:
        def __init__(self, i):
            self.id = i

        def collect_events(self):
            return ["an event"]

    for error in (IntegrityError("conflict"), OSError("disk full")):
        def broken(*events, error=error):
            raise error

        kept = next(iter(cache._kept))
        with pytest.raises(type(error)):
            GroupCommit(broken, kept=cache).save(Changed(kept))
        assert kept not in cache._kept
    assert len(cache) == 0


def test_a_copy_shares_no_container_with_the_kept_course(ledger):
    app = ledger.app
    course = register(app)
    log(app, course, 1)
    kept = app.course_cache._kept[app.get_course(course).id]
    twin = copy_aggregate(kept)
    assert isinstance(twin, Course) and twin.version == kept.version
    for name, value in vars(kept).items():
        if isinstance(value, (list, dict, set)):
            assert getattr(twin, name) is not value, name


def test_frozen_records_are_replaced_never_changed_in_place():
    """The copy shares frozen Structs (records, plans): no code of ledger/ may change their lists
    or dicts in place (they are replaced with msgspec.structs.replace)."""
    fields = r"(beams|warnings|deviations|fraction_groups|source)"
    in_place = re.compile(rf"\.{fields}\.(append|extend|insert|pop|remove|clear|update|sort)\(|\.{fields}\[[^]]*\]\s*=")
    found = [f"{p.name}: {line.strip()}" for p in (ROOT / "ledger").glob("*.py")
             for line in p.read_text().splitlines() if in_place.search(line)]
    assert found == []


def test_a_saved_course_changed_afterwards_is_not_used(ledger):
    """What a save wrote is kept as it is; an event on it after the save (never saved) moves its
    version past the store's, so the next command loads the course from the log."""
    app = ledger.app
    course = register(app)
    mine = app.get_course(course)
    app.log_fraction(course, {"number": 1, "centre": "HOME", "machine": "L1", "operator": "rtt",
                              "delivered_at": T0}, RTT, loaded=mine)
    mine.suspend("not saved", app.uow.meta(RTT, None))  # the caller's object, changed after its save
    assert app.get_course(course).status == "active"
    log(app, course, 2)
    assert [r.number for r in app.get_course(course).records] == [1, 2]
