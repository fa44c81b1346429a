"""Treatment gaps and prescription amendments, on a Course built in memory (no store, no app).

Every rule of ledger/amendments.py and ledger/gaps.py on its edge; each refusal adds no event.
The scenarios of issue 17's "Must show" are told here on the aggregate and again through the
service, the API and the CLI in tests/test_gaps_scenarios.py.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ledger import errors, gaps
from ledger.course import Course, registration
from ledger.service import parse
from schemas.course import LogFraction, RegisterCourse
from schemas.prescription import AmendPrescription

BXL = ZoneInfo("Europe/Brussels")
HOME = "HOME"
MON = date(2026, 11, 2)  # the course's first treatment day, a Monday


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=BXL)


def meta(user: str, moment: datetime, centre: str = HOME) -> dict:
    return {"user": user, "centre": centre, "recorded_at": moment.astimezone(timezone.utc), "request_id": None}


def new_course(groups=((1, 35),), site="head_and_neck", schedule=None, dose=None) -> Course:
    cmd = parse(RegisterCourse, {
        "patient": {"id": "P-HN", "name": "JANSSENS^PIET"}, "home_centre": HOME,
        "plan": {"uid": "1.2.826.0.1.3680043.10.17", "label": "H&N 70Gy/35", "fraction_groups": [
            {"number": n, "fractions_planned": f, "dose_gy": dose, "beams": [{"number": 1, "meterset": "200"}]}
            for n, f in groups]},
        "schedule": schedule or {"start": MON.isoformat()}, "site": site})
    m = meta("phys.home", at(MON, 7))
    course = Course(**registration(cmd), meta=m)
    course.set_schedule(cmd.schedule, cmd.site, m)
    return course


def deliver(course: Course, number: int, day: date, group: int | None = None, hour: int = 9):
    cmd = parse(LogFraction, {"number": number, "centre": HOME, "machine": "L1", "operator": "rtt.an",
                              "delivered_at": at(day, hour), **({"group": group} if group else {})})
    return course.deliver(cmd, meta("rtt.an", at(day, hour) + timedelta(minutes=20)))


def amend(course: Course, by: str = "onc.a", when: datetime | None = None, **data):
    return course.amend(parse(AmendPrescription, {"reason": "interrupted by the outage", **data}),
                        meta(by, when or at(date(2026, 11, 17), 7)), BXL)


def countersign(course: Course, amendment_id: str, by: str = "onc.b", when: datetime | None = None):
    return course.countersign(amendment_id, meta(by, when or at(date(2026, 11, 17), 7, ) + timedelta(minutes=5)))


def refused(course: Course, kind: type[errors.LedgerError], act) -> errors.LedgerError:
    pending, version = len(course.pending_events), course.version
    with pytest.raises(kind) as caught:
        act()
    assert (len(course.pending_events), course.version) == (pending, version), "a refusal writes nothing"
    return caught.value


def working_days(start: date, count: int) -> list[date]:
    out, d = [], start
    while len(out) < count:
        if d.isoweekday() <= 5:
            out.append(d)
        d += timedelta(days=1)
    return out


def interrupted_four_days() -> Course:
    """7 fractions Mon 2 .. Tue 10 November, then nothing Wed 11 .. Mon 16: four working days."""
    course = new_course()
    for n, day in enumerate(working_days(MON, 7), start=1):
        deliver(course, n, day)
    return course


TUESDAY_17 = at(date(2026, 11, 17), 8)


# ---- the gap --------------------------------------------------------------------------------


def test_on_schedule_there_is_no_gap():
    course = new_course()
    for n, day in enumerate(working_days(MON, 7), start=1):
        deliver(course, n, day)
    gap = course.gap(at(date(2026, 11, 11), 8), BXL)
    assert (gap.missed, gap.prolongation, gap.alarm) == (0, 0, False)
    assert gap.planned_end == gap.projected_end == date(2026, 12, 18)
    assert gap.next_day == date(2026, 11, 11) and gap.days_since_last == 1


def test_a_category_1_course_interrupted_four_working_days_is_prolonged_four_days_with_an_alarm():
    gap = interrupted_four_days().gap(TUESDAY_17, BXL)
    assert (gap.category, gap.category_from) == (1, "site")
    assert gap.missed == 4 and gap.days_since_last == 7
    assert gap.planned_end == date(2026, 12, 18) and gap.projected_end == date(2026, 12, 24)
    assert gap.prolongation == 4 and gap.alarm


def test_todays_fraction_counts_once_it_is_given():
    course = interrupted_four_days()
    deliver(course, 8, date(2026, 11, 17))
    gap = course.gap(at(date(2026, 11, 17), 18), BXL)
    assert (gap.missed, gap.prolongation, gap.next_day) == (4, 4, date(2026, 11, 18))


def test_the_alarm_threshold_is_a_parameter_and_only_category_1_raises_it():
    course = interrupted_four_days()
    assert not course.gap(TUESDAY_17, BXL, threshold=4).alarm
    assert course.gap(TUESDAY_17, BXL, threshold=3).alarm
    course.set_gap_category(2, meta("onc.a", TUESDAY_17))
    gap = course.gap(TUESDAY_17, BXL)
    assert (gap.category, gap.category_from, gap.alarm) == (2, "physician", False)


def test_the_gap_category_defaults_by_site_and_a_course_without_either_has_none():
    assert gaps.category_of(None, "cervix") == (1, "site")
    assert gaps.category_of(None, "breast") == (2, "site")
    assert gaps.category_of(None, "palliative") == (3, "site")
    assert gaps.category_of(3, "head_and_neck") == (3, "physician")
    assert gaps.category_of(None, None) == (None, None) and gaps.category_of(None, "other") == (None, None)


def test_the_worklist_order_is_category_then_prolongation():
    a = interrupted_four_days().gap(TUESDAY_17, BXL)
    b = new_course(site="breast").gap(TUESDAY_17, BXL)
    none = new_course(site=None).gap(TUESDAY_17, BXL)
    assert sorted([none, b, a], key=gaps.urgency) == [a, b, none]


def test_the_days_count_in_the_home_centres_zone():
    course = new_course()
    deliver(course, 1, MON, hour=23)  # 23:00 in Brussels is 22:00 UTC, Monday either way
    late = datetime(2026, 11, 3, 23, 30, tzinfo=timezone.utc)  # Wednesday 00:30 in Brussels
    assert course.gap(late, BXL).missed == 1  # Tuesday is over in Brussels
    assert course.gap(late, "UTC").missed == 0  # ...not yet in UTC


# ---- compensation ------------------------------------------------------------------------------


def test_a_countersigned_twice_daily_day_brings_the_prolongation_back_to_3():
    course = interrupted_four_days()
    proposed = amend(course, kind="twice_daily", day="2026-11-17")
    assert course.gap(TUESDAY_17, BXL).prolongation == 4, "an amendment without countersignature changes nothing"
    countersign(course, proposed.id)
    gap = course.gap(TUESDAY_17, BXL)
    assert gap.prolongation == 3 and gap.projected_end == date(2026, 12, 23)


def test_a_weekend_treatment_day_compensates_too():
    course = interrupted_four_days()
    countersign(course, amend(course, kind="treatment_day", day="2026-11-21").id)
    assert course.gap(TUESDAY_17, BXL).prolongation == 3


def test_a_compensation_day_that_changes_nothing_or_lies_before_the_start_is_refused():
    course = interrupted_four_days()
    out = refused(course, errors.InvalidCommand, lambda: amend(course, kind="treatment_day", day="2026-11-17"))
    assert out.field == "day"
    out = refused(course, errors.InvalidCommand, lambda: amend(course, kind="twice_daily", day="2026-10-01"))
    assert out.field == "day"
    assert refused(course, errors.InvalidCommand, lambda: amend(course, kind="twice_daily")).field == "day"


# ---- amendments of the number of fractions ------------------------------------------------------


def five_delivered() -> Course:
    course = new_course(groups=((1, 5),))
    for n, day in enumerate(working_days(MON, 5), start=1):
        deliver(course, n, day)
    return course


def test_an_extra_fraction_without_countersignature_changes_nothing():
    course = five_delivered()
    amend(course, kind="extra_fractions", fractions=1)
    assert course.fractions_planned() == 5 and len(course.pending_amendments()) == 1
    refused(course, errors.FractionOutOfRange, lambda: deliver(course, 6, date(2026, 11, 9)))


def test_after_countersignature_fraction_n_plus_1_is_accepted_and_n_plus_2_refused():
    course = five_delivered()
    proposed = amend(course, kind="extra_fractions", fractions=1)
    signed = countersign(course, proposed.id)
    assert (signed.before, signed.after, signed.countersigned_by) == (5, 6, "onc.b")
    assert course.fractions_planned() == 6 and course.original_fractions_planned() == 5
    assert deliver(course, 6, date(2026, 11, 9)).number == 6
    out = refused(course, errors.FractionOutOfRange, lambda: deliver(course, 7, date(2026, 11, 10)))
    assert out.conflict["fractions_planned"] == 6
    assert course.next_fraction(HOME) is None


def test_the_prescriber_cannot_countersign_their_own_amendment():
    course = five_delivered()
    proposed = amend(course, kind="extra_fractions", fractions=1)
    refused(course, errors.CountersignerIsPrescriber, lambda: countersign(course, proposed.id, by="onc.a"))
    assert course.fractions_planned() == 5


def test_an_amendment_is_countersigned_once():
    course = five_delivered()
    proposed = amend(course, kind="extra_fractions", fractions=1)
    countersign(course, proposed.id)
    refused(course, errors.AmendmentConflict, lambda: countersign(course, proposed.id, by="phys.home"))
    refused(course, errors.AmendmentNotFound, lambda: countersign(course, "no-such-amendment"))


def test_a_group_cannot_be_amended_below_what_was_delivered():
    course = five_delivered()
    out = refused(course, errors.AmendmentConflict, lambda: amend(course, kind="fractions", fractions=4))
    assert out.conflict == {"group": 1, "after": 4, "highest_delivered": 5}
    assert refused(course, errors.InvalidCommand, lambda: amend(course, kind="fractions", fractions=5)).field == "fractions"


def test_a_reduction_proposed_in_time_is_refused_at_countersignature_once_fractions_overtook_it():
    course = new_course(groups=((1, 5),))
    for n in (1, 2, 3):
        deliver(course, n, working_days(MON, 5)[n - 1])
    proposed = amend(course, kind="fractions", fractions=3, when=at(MON + timedelta(days=2), 12))
    deliver(course, 4, MON + timedelta(days=3))
    refused(course, errors.AmendmentConflict, lambda: countersign(course, proposed.id, when=at(MON + timedelta(days=3), 12)))


def test_an_amendment_needs_a_reason_and_its_numbers():
    course = five_delivered()
    assert refused(course, errors.InvalidCommand, lambda: amend(course, kind="extra_fractions", fractions=1,
                                                                reason="  ")).field == "reason"
    assert refused(course, errors.InvalidCommand, lambda: amend(course, kind="fractions")).field == "fractions"


def test_a_completed_course_is_not_amended():
    course = five_delivered()
    course.complete("done", meta("phys.home", at(date(2026, 11, 9))))
    refused(course, errors.LifecycleConflict, lambda: amend(course, kind="extra_fractions", fractions=1))


def test_rex3_one_boost_fraction_less_after_an_extra_large_field_fraction():
    """FANC REX 3: during re-registration the patient got one extra fraction of the large fields;
    the radiation oncologist dropped one boost fraction. Both are recorded, countersigned, and the
    rules then count against the amended prescription."""
    course = new_course(groups=((1, 3), (2, 2)))
    days = working_days(MON, 6)
    for n in (1, 2, 3):
        deliver(course, n, days[n - 1], group=1)
    refused(course, errors.FractionOutOfRange, lambda: deliver(course, 4, days[3], group=1))
    extra = amend(course, kind="extra_fractions", group=1, fractions=1,
                  reason="fraction 4 of the large fields was given during re-registration")
    boost = amend(course, kind="fractions", group=2, fractions=1, reason="boost reduced by one fraction (REX 3)")
    countersign(course, extra.id)
    countersign(course, boost.id, by="phys.home")
    deliver(course, 4, days[3], group=1)
    deliver(course, 1, days[4], group=2)
    refused(course, errors.FractionOutOfRange, lambda: deliver(course, 2, days[5], group=2))
    assert course.fractions_planned() == 5 == course.original_fractions_planned()
    assert [g.fractions_planned for g in course.plan.fraction_groups] == [3, 2], "the original stays"
    assert [(a.group, a.before, a.after, a.by, a.countersigned_by) for a in course.amendments] == [
        (1, 3, 4, "onc.a", "onc.b"), (2, 2, 1, "onc.a", "phys.home")]
    assert course.next_fraction(HOME) is None


# ---- dose, the next planned fraction, amendments received from another centre ----------------


def test_the_dose_counts_against_the_amended_prescription_and_needs_every_groups_dose():
    from decimal import Decimal

    from ledger.amendments import dose_of, next_planned
    from schemas.course import FractionGroup

    groups = [FractionGroup(number=1, fractions_planned=25, dose_gy=Decimal("1.8")),
              FractionGroup(number=2, fractions_planned=8, dose_gy=Decimal("2"))]
    assert dose_of(groups, [(1, 1), (1, 2), (2, 1), (1, 2)]) == (Decimal("61.0"), Decimal("5.6"))
    assert dose_of([groups[0], FractionGroup(number=2, fractions_planned=8)], [(1, 1)]) == (None, None)
    assert next_planned(groups, [(1, n) for n in range(1, 26)]) == (2, 1)
    assert next_planned(groups, [(1, n) for n in range(1, 26)] + [(2, n) for n in range(1, 9)]) is None


def test_a_course_dose_follows_the_countersigned_amendment():
    from decimal import Decimal

    course = new_course(groups=((1, 5),), dose="4")
    deliver(course, 1, MON)
    assert course.dose() == (Decimal(20), Decimal(4))
    countersign(course, amend(course, kind="extra_fractions", fractions=1).id)
    assert course.dose() == (Decimal(24), Decimal(4))


def test_an_amendment_received_from_another_centre_keeps_its_id_and_counts_once_countersigned():
    home, partner = five_delivered(), new_course(groups=((1, 5),))
    proposed = amend(home, kind="extra_fractions", fractions=1)
    signed = countersign(home, proposed.id)
    m = meta("onc.a", at(date(2026, 11, 17), 7), centre="HOME")
    assert partner.receive_amendment(proposed, m) and not partner.receive_amendment(proposed, m)
    assert partner.fractions_planned() == 5, "received, not yet countersigned: nothing changes"
    m2 = meta("onc.b", at(date(2026, 11, 17), 8), centre="HOME")
    assert partner.receive_countersign(proposed.id, signed.before, signed.after, m2)
    assert not partner.receive_countersign(proposed.id, signed.before, signed.after, m2)
    assert partner.fractions_planned() == 6 and partner.amendments[0].id == proposed.id
    assert partner.amendments[0].countersigned_by == "onc.b"


def test_the_schedule_in_force_has_the_countersigned_compensation_days():
    from ledger import schedule as schedules

    course = interrupted_four_days()
    tuesday = date(2026, 11, 17)
    a = amend(course, kind="twice_daily", day=tuesday.isoformat())
    assert schedules.fractions_on(course.schedule_in(BXL), tuesday) == 1, "not countersigned: not in force"
    countersign(course, a.id)
    assert schedules.fractions_on(course.schedule_in(BXL), tuesday) == 2
    assert schedules.fractions_on(course.original_schedule_in(BXL), tuesday) == 1
