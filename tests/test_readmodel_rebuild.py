"""A rebuild gives the rows the events gave one by one: the same tables whether the events were
decoded by msgspec (adapters/readmodel_decode.py) or by the application's mapper, in one batch or
in batches of one (each new fractions row then written before its verification is applied, as
before rows were held to the batch's end), and as the incremental catch-ups left them; on a plain
and on an encrypted ledger."""

from __future__ import annotations

import pytest

import adapters.readmodel as readmodel
import adapters.readmodel_decode as readmodel_decode
from adapters.keys import new_cipher_key
from adapters.runtime import Ledger
from ledger import errors
from ledger.service import Actor
from tests.conftest import Clock
from tests.test_core_rules import log, register
from tests.test_gaps_scenarios import ONC_A, ONC_B, interrupted
from tools.demo import PARTNER, run_demo


def varied(ledger: Ledger) -> None:
    """A log of every kind the read model projects: fractions with warnings, verified, voided;
    a refusal kept as a near-miss; incidents followed up and closed; centres assigned and
    unassigned, triage; amendments countersigned, a course completed; then the demo (centres and
    capacity, an agreement, courses treated at home and at the partner, completed and settled), a
    void and a suspension; with catch-ups in between."""
    app = ledger.app
    course = register(ledger, "P-VARIED")
    log(ledger, course, 1)
    log(ledger, course, 3, centre="ELSEWHERE")  # warnings: fraction 2 not recorded, a centre not assigned
    log(ledger, course, 2, day=2, note="café crème: «ça va»", delivery_type="TREATMENT")
    app.verify_fraction(course, 1, "rtt.check", Actor("rtt.check", "PARTNER"))
    app.verify_fraction(course, 3, "rtt.check", Actor("rtt.check", "PARTNER"))
    app.void_fraction(course, 3, "logged at the wrong centre", "physicist", Actor("physicist", "HOME"))
    with pytest.raises(errors.RuleViolation):
        log(ledger, course, 31)  # beyond the prescription: a near-miss incident
    found = app.billing.register_incident({"centre": "PARTNER", "course_id": course, "category": "dose-deviation",
                                   "severity": "high", "description": "Wedge missing"}, Actor("rtt", "PARTNER"))
    app.billing.add_follow_up(found["id"], "Physicist informed", Actor("rtt", "PARTNER"))
    app.billing.close_incident(found["id"], "Plan corrected", Actor("physicist", "HOME"))
    app.assign_centre(course, "OTHER", Actor("physicist", "HOME"))
    app.set_triage(course, 2, Actor("physicist", "HOME"))
    app.unassign_centre(course, "OTHER", Actor("physicist", "HOME"))
    ledger.fresh()
    gap = interrupted(ledger)
    app.gaps.set_gap_category(gap, 2, ONC_A)
    amended = app.gaps.amend_prescription(gap, {"kind": "extra_fractions", "fractions": 2, "reason": "x"}, ONC_A)
    app.gaps.countersign_amendment(gap, amended["amendment"]["id"], ONC_B)
    app.complete_course(gap, "done", ONC_A)
    ledger.fresh()
    # The demo last: once the network's centres are registered, the courses above would be refused.
    demo = run_demo(ledger, echo=lambda line: None, billing=True)
    physicist = Actor("physicist.demo", app.get_course(demo[0]).home_centre)
    app.void_fraction(demo[0], 1, "wrong patient", "physicist.demo", physicist)
    app.suspend_course(demo[0], "fever", physicist)


def opened(tmp_path, monkeypatch, encrypted: bool, db: str | None = None) -> Ledger:
    if encrypted:
        monkeypatch.setenv("FRACTION_LEDGER_CIPHER_KEY", new_cipher_key())
        monkeypatch.delenv("FRACTION_LEDGER_READ_DB", raising=False)
    else:
        monkeypatch.delenv("FRACTION_LEDGER_CIPHER_KEY", raising=False)
        monkeypatch.setenv("FRACTION_LEDGER_READ_DB", str(tmp_path / "read.sqlite3"))
    monkeypatch.delenv("FRACTION_LEDGER_READ_SNAPSHOT", raising=False)
    clock = Clock()
    ledger = Ledger(db or str(tmp_path / "ledger.sqlite3"), clock=clock)
    ledger.clock = clock  # (moved by the gaps helpers)
    return ledger


def rebuilt(ledger: Ledger) -> dict:
    ledger.read.rebuild(ledger.app)
    return ledger.read.dump()


@pytest.mark.parametrize("store", ["plain", "encrypted"])
def test_a_rebuild_gives_the_rows_of_the_mappers_events_one_by_one(tmp_path, monkeypatch, store):
    rebuilds_alike(tmp_path, monkeypatch, store == "encrypted", None)


@pytest.mark.slow
@pytest.mark.postgres
def test_a_rebuild_on_postgresql_gives_the_rows_of_the_mappers_events_one_by_one(tmp_path, monkeypatch, postgres_url):
    rebuilds_alike(tmp_path, monkeypatch, False, postgres_url)


def rebuilds_alike(tmp_path, monkeypatch, encrypted: bool, db: str | None) -> None:
    """The read model rebuilt with msgspec, with the mapper for every event, and in batches of one
    equals what the incremental catch-ups left."""
    with opened(tmp_path, monkeypatch, encrypted, db) as ledger:
        varied(ledger)
        incremental = ledger.fresh().dump()
        assert ledger.app.mapper.cipher is not None if encrypted else ledger.app.mapper.cipher is None

        decoded = []
        decode = readmodel_decode.Decoder.decode

        def counted(self, notification):
            event = decode(self, notification)
            decoded.append(event is not None)
            return event

        monkeypatch.setattr(readmodel_decode.Decoder, "decode", counted)
        fast = rebuilt(ledger)
        assert sum(decoded) > 20 and all(decoded)  # every fraction delivered, verified or voided by msgspec

        monkeypatch.setattr(readmodel_decode.Decoder, "handles", lambda self, topic: False)
        ledger.read.decoder = None  # (routes are chosen again with the decoder)
        decoded.clear()
        by_mapper = rebuilt(ledger)
        monkeypatch.setattr(readmodel, "BATCH", 1)
        monkeypatch.setattr(readmodel, "REBUILD_BATCH", 1)
        one_by_one = rebuilt(ledger)
        assert decoded == []

    assert fast == by_mapper == one_by_one == incremental
    fractions = {(r["course_id"], r["number"]): r for r in fast["fractions"]}
    assert any(r["warnings"] != "[]" for r in fractions.values())
    assert any(r["voided"] and r["verified_by"] for r in fractions.values())  # verified, then voided
    assert any("«ça va»" in (r["note"] or "") for r in fractions.values())
    assert fast["incidents"] and fast["splits"] and fast["agreements"]
    assert any(c["amendments"] for c in fast["courses"])


def test_what_does_not_fit_its_struct_is_decoded_by_the_mapper(tmp_path, monkeypatch):
    """A stored event msgspec refuses, or whose values are not as the Struct expects, takes the
    mapper's path: the same row."""
    with opened(tmp_path, monkeypatch, encrypted=False) as ledger:
        course = register(ledger, "P-ODD")
        log(ledger, course, 1)
        ledger.app.verify_fraction(course, 1, "rtt.check", Actor("rtt.check", "PARTNER"))
        expected = ledger.fresh().dump()
        topics = set()

        def refused(self, notification):
            topics.add(notification.topic)
            return None

        monkeypatch.setattr(readmodel_decode.Decoder, "decode", refused)
        assert rebuilt(ledger) == expected
        assert topics == {readmodel_decode.FRACTION_DELIVERED, readmodel_decode.FRACTION_VERIFIED}


def test_a_stored_state_off_the_struct_gives_none():
    class Stored:
        topic = readmodel_decode.FRACTION_VERIFIED

        def __init__(self, state: bytes):
            self.state = state

    from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper

    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    decoder = readmodel_decode.Decoder(Mapper(transcoder))
    good = b'{"record_ids":["r1"],"by":"x","meta":{"recorded_at":{"_type_":"datetime_iso","_data_":"2026-10-05T09:00:00+02:00"}}}'
    assert decoder.decode(Stored(good)).meta.recorded_at.iso == "2026-10-05T09:00:00+02:00"
    for bad in (good.replace(b'"x"', b'{"_type_":"uuid_hex","_data_":"00"}'),  # not a plain value
                good.replace(b'"_data_"', b'"_more_":1,"_data_"'),  # not a tagged value the transcoder decodes
                good.replace(b'"by":"x",', b''),  # a value missing
                good.replace(b'"x"', b'"\\ud800"'),  # JSON msgspec refuses
                b'not json'):
        assert decoder.decode(Stored(bad)) is None
    assert decoder.json(msgspec_raw(b'[{"mu":{"_type_":"datetime_iso","_data_":"2026-10-05T09:00:00+00:00"}}]')) \
        == '[{"mu":"2026-10-05T09:00:00Z"}]'  # as msgspec writes the datetime the mapper decodes


def msgspec_raw(data: bytes):
    import msgspec

    return msgspec.Raw(data)
