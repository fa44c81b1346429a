"""The course schedule (ledger/schedule.py): pure functions on a Schedule value."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import msgspec
import pytest

from ledger import schedule as sch
from schemas.schedule import Schedule

MON = date(2026, 11, 2)  # a Monday


def test_working_days_by_default_one_fraction_a_day():
    s = Schedule(start=MON)
    assert s.per_week == 5
    assert [sch.fractions_on(s, MON + timedelta(days=n)) for n in range(7)] == [1, 1, 1, 1, 1, 0, 0]
    assert sch.expected_on(s, MON) and not sch.expected_on(s, MON + timedelta(days=5))
    assert not sch.expected_on(s, MON - timedelta(days=7)), "nothing before the start"


def test_treatment_days_skip_weekends_and_count_a_twice_daily_day_twice():
    s = Schedule(start=MON)
    assert sch.treatment_days(s, 6) == [MON + timedelta(days=n) for n in (0, 1, 2, 3, 4, 7)]
    twice = s.with_day(MON + timedelta(days=1), 2)
    assert sch.treatment_days(twice, 3) == [MON, MON + timedelta(days=1), MON + timedelta(days=1)]
    saturday = s.with_day(MON + timedelta(days=5), 1)
    assert sch.expected_on(saturday, MON + timedelta(days=5))


def test_three_a_week():
    s = Schedule(start=MON, weekdays=[1, 3, 5])
    assert s.per_week == 3
    assert sch.treatment_days(s, 4) == [MON, MON + timedelta(days=2), MON + timedelta(days=4), MON + timedelta(days=7)]


def test_expected_before_and_fractions_from():
    s = Schedule(start=MON)
    assert sch.expected_before(s, MON) == 0
    assert sch.expected_before(s, MON + timedelta(days=7)) == 5
    # 3 fractions left from a Thursday: Thu, Fri, Mon
    assert sch.fractions_from(s, MON + timedelta(days=3), 3) == MON + timedelta(days=7)
    # today's fraction already given: Fri, Mon, Tue
    assert sch.fractions_from(s, MON + timedelta(days=3), 3, given_today=1) == MON + timedelta(days=8)
    assert sch.fractions_from(s, MON, 0) is None


def test_treatment_days_between_counts_weekdays_only_and_signs():
    s = Schedule(start=MON)
    friday, next_thursday = MON + timedelta(days=4), MON + timedelta(days=10)
    assert sch.treatment_days_between(s, friday, next_thursday) == 4
    assert sch.treatment_days_between(s, next_thursday, friday) == -4
    assert sch.treatment_days_between(s, friday, friday) == 0


def test_local_day_in_the_centres_zone():
    late = datetime(2026, 11, 2, 23, 30, tzinfo=timezone.utc)  # 00:30 on the 3rd in Brussels
    assert sch.local_day(late, "Europe/Brussels") == date(2026, 11, 3)
    assert sch.local_day(late, ZoneInfo("America/New_York")) == date(2026, 11, 2)
    with pytest.raises(ValueError):
        sch.local_day(datetime(2026, 11, 2, 9), "Europe/Brussels")


def test_a_schedule_without_start_must_be_resolved_first():
    with pytest.raises(ValueError):
        sch.expected_on(Schedule(), MON)


def test_bad_schedule_values_are_refused_by_the_value():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"start": "2026-11-02", "weekdays": [0]}, Schedule)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"start": "2026-11-02", "weekdays": []}, Schedule)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"start": "2026-11-02", "days": [{"day": "2026-11-03", "fractions": 3}]}, Schedule)


# ---- a course's schedule ------------------------------------------------------------------

def course_with(schedule=None, site=None):
    from ledger.course import Course, registration
    from ledger.service import parse
    from schemas.course import RegisterCourse

    data = {"patient": {"id": "P-1", "name": "PEETERS^AN"}, "home_centre": "HOME",
            "plan": {"uid": "1.2.3", "label": "H&N 70/35", "fraction_groups": [
                {"number": 1, "fractions_planned": 35, "beams": [{"number": 1, "meterset": "100"}]}]}}
    if schedule is not None:
        data["schedule"] = schedule
    if site is not None:
        data["site"] = site
    registered = datetime(2026, 11, 1, 23, 30, tzinfo=timezone.utc)  # Monday 00:30 in Brussels
    cmd = parse(RegisterCourse, data)
    meta = {"user": "p", "centre": "HOME", "recorded_at": registered, "request_id": None}
    course = Course(**registration(cmd), meta=meta)
    course.set_schedule(cmd.schedule, cmd.site, meta)
    return course


def test_a_course_without_schedule_starts_the_day_it_was_registered_in_the_centres_zone():
    course = course_with()
    s = course.schedule_in("Europe/Brussels")
    assert s.start == MON and s.weekdays == [1, 2, 3, 4, 5]
    assert sch.expected_on(s, MON)
    assert course.schedule_in("UTC").start == date(2026, 11, 1)


def test_a_given_schedule_is_kept_and_stored_on_registration():
    course = course_with({"start": "2026-11-04", "weekdays": [1, 3, 5]}, site="head_and_neck")
    s = course.schedule_in("Europe/Brussels")
    assert s.start == date(2026, 11, 4) and s.per_week == 3
    assert course.site == "head_and_neck"


def test_the_schedule_given_at_registration_survives_a_reload(ledger):
    from ledger.service import Actor

    result = ledger.app.register_course(
        {"patient": {"id": "P-9", "name": "DUPONT^MARIE"}, "home_centre": "HOME",
         "plan": {"uid": "1.2.9", "label": "Cervix 45/25", "fraction_groups": [
             {"number": 1, "fractions_planned": 25, "beams": [{"number": 1, "meterset": "100"}]}]},
         "schedule": {"start": "2026-11-02", "weekdays": [1, 2, 3, 4]}, "site": "cervix"},
        Actor("physicist", "HOME"))
    course = ledger.app.get_course(result["id"])
    assert course.schedule_in("Europe/Brussels") == Schedule(start=MON, weekdays=[1, 2, 3, 4])
    assert course.site == "cervix"
