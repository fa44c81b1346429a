"""What counts as missing, unknown or conflicting when the restored OIS meets the ledger."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec

from ledger.reconcile import CourseKey, Session, is_clean, reconcile

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
COURSE = CourseKey(course_id="c1", patient_id="P1", plan_uids=["1.2.1", "1.2.9"], label="Pelvis")


def session(number, day=None, machine="L1", mu=None, plan="1.2.1", voided=False, minutes=0, ref=None):
    return Session(patient_id="P1", plan_uid=plan, group=1, number=number,
                   delivered_at=T0 + timedelta(days=number - 1 if day is None else day, minutes=minutes),
                   machine=machine, mu=mu if mu is not None else {1: Decimal("100"), 2: Decimal("80")},
                   ref=ref or f"r{number}", voided=voided)


def test_identical_sides_are_clean():
    ours = [session(n) for n in range(1, 6)]
    result = reconcile([COURSE], ours, [session(n) for n in range(1, 6)])
    assert is_clean(result)
    assert result["courses"][0]["ledger_fractions"] == result["courses"][0]["ois_fractions"] == 5


def test_restore_loses_a_day_missing_fractions_are_listed_with_the_restore_point():
    ours = [session(n) for n in range(1, 8)]
    ois = [session(n) for n in range(1, 6)]
    result = reconcile([COURSE], ours, ois, restore_point=T0 + timedelta(days=4, hours=12))
    assert [m["fraction_number"] for m in result["missing_in_ois"]] == [6, 7]
    assert all(m["after_restore_point"] for m in result["missing_in_ois"])
    assert result["totals"]["missing_in_ois"] == 2 and not result["unknown_to_ledger"]


def test_fraction_on_an_emergency_system_is_unknown_to_the_ledger():
    result = reconcile([COURSE], [session(1)], [session(1), session(2, machine="EMERGENCY")])
    assert [(u["fraction_number"], u["machine"]) for u in result["unknown_to_ledger"]] == [(2, "EMERGENCY")]


def test_mu_beyond_tolerance_date_and_machine_are_conflicts_but_within_tolerance_is_not():
    ois = [session(1, mu={1: Decimal("100.4"), 2: Decimal("80")}),
           session(2, mu={1: Decimal("112"), 2: Decimal("80")}),
           session(3, day=5), session(4, machine="L9")]
    result = reconcile([COURSE], [session(n) for n in range(1, 5)], ois)
    by_number = {c["fraction_number"]: c["differences"] for c in result["conflicts"]}
    assert set(by_number) == {2, 3, 4}
    assert "beam 1 MU: ledger 100, OIS 112" in by_number[2][0]
    assert by_number[3][0].startswith("date:") and by_number[4][0].startswith("machine:")


def test_interrupted_fraction_sums_its_sessions_on_both_sides():
    ours = [session(1, mu={1: Decimal("100"), 2: Decimal("30")}),
            session(1, minutes=20, mu={2: Decimal("50")}, ref="cont")]
    ois = [session(1, mu={1: Decimal("100"), 2: Decimal("80")})]
    assert is_clean(reconcile([COURSE], ours, ois))


def test_voided_in_ledger_but_delivered_in_ois_is_a_conflict_and_voided_alone_is_not_missing():
    result = reconcile([COURSE], [session(1, voided=True), session(2, voided=True)], [session(1)])
    assert [c["fraction_number"] for c in result["conflicts"]] == [1]
    assert "voided" in result["conflicts"][0]["differences"][0]
    assert not result["missing_in_ois"]


def test_fallback_plan_fractions_belong_to_the_course_and_unknown_courses_are_listed():
    stranger = Session(patient_id="P7", plan_uid="1.2.7", group=1, number=1, delivered_at=T0, machine="L1",
                       mu={}, ref="x")
    result = reconcile([COURSE], [session(1, plan="1.2.9")], [session(1, plan="1.2.9"), stranger])
    assert not result["missing_in_ois"] and not result["conflicts"]
    assert result["courses_only_in_ois"] == [{"patient_id": "P7", "plan_uid": "1.2.7", "ois_fractions": 1}]
    only = reconcile([COURSE], [session(1)], [])
    assert only["courses_only_in_ledger"][0]["course_id"] == "c1"


def summary(number, **kw):
    return Session(**{**msgspec.structs.asdict(session(number, machine="", mu={}, **kw)), "detailed": False})


def test_a_fraction_the_ois_lists_only_in_a_summary_lacks_its_treatment_record():
    result = reconcile([COURSE], [session(1), session(2)], [session(1), summary(2)])
    assert [(m["fraction_number"], m["ois_has_summary_only"]) for m in result["missing_in_ois"]] == [(2, True)]


def test_a_baseline_fraction_known_from_a_summary_on_both_sides_is_compared_on_date_alone():
    ours = Session(**{**msgspec.structs.asdict(session(1)), "detailed": False})
    assert is_clean(reconcile([COURSE], [ours], [summary(1)]))
    moved = reconcile([COURSE], [ours], [summary(1, day=4)])
    assert moved["conflicts"][0]["differences"][0].startswith("date:")


def test_the_same_moment_written_in_utc_and_in_brussels_time_is_the_same_day():
    """The ledger holds 23:30 UTC on 30 November; the restored OIS says 00:30 on 1 December in
    Brussels: one fraction on one day, not a date conflict (issue 14)."""
    from zoneinfo import ZoneInfo

    utc = datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc)
    ours = [msgspec.structs.replace(session(1), delivered_at=utc)]
    theirs = [msgspec.structs.replace(session(1), delivered_at=utc.astimezone(ZoneInfo("Europe/Brussels")))]
    assert reconcile([COURSE], ours, theirs)["conflicts"] == []
    # A day apart in Brussels is a date conflict, named in the OIS's days.
    theirs = [msgspec.structs.replace(session(1), delivered_at=datetime(2026, 11, 30, 0, 30, tzinfo=ZoneInfo("Europe/Brussels")))]
    [conflict] = reconcile([COURSE], ours, theirs)["conflicts"]
    assert conflict["differences"] == ["date: ledger 2026-12-01, OIS 2026-11-30"]


def test_a_conflict_is_said_in_the_readers_language():
    """What differs is kept as codes with values (`differences_said`); the English `differences`
    are the same sentences, for programs and logs."""
    from adapters.i18n import words
    from ledger.messages import english

    theirs = [msgspec.structs.replace(session(1), delivered_at=session(1).delivered_at + timedelta(days=1))]
    [conflict] = reconcile([COURSE], [session(1)], theirs)["conflicts"]
    assert conflict["differences"] == [english(d) for d in conflict["differences_said"]]
    assert words("fr").say(conflict["differences_said"][0]).startswith("date : registre ")
    assert words("nl").say(conflict["differences_said"][0]).startswith("datum: register ")
