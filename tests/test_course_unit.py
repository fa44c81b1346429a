"""Unit tests of the Course aggregate in memory: every refusal of the README's rule table, and the
bad input the aggregate refuses, on a Course built here with no store, no application, no clock.

Each refusal also leaves the course as it was: no new pending event (nothing would be written).
Every rule is checked on its edge: the value just inside is accepted, the one just outside refused.
The same rules through the application service and the entry points are in test_core_rules.py,
test_safety_rules.py and the adapters' tests.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from ledger import errors
from ledger.course import Course, check_plan_lists_beams, registration
from ledger.service import FractionLedger, parse
from schemas.course import LogFraction, Plan, RegisterCourse
from tests.conftest import ROOT, Clock

HOME, PARTNER, ELSEWHERE = "HOME", "PARTNER", "ELSEWHERE"
CET = timezone(timedelta(hours=1))
REGISTERED = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)  # the course's registration, and "now"
DAY1 = datetime(2026, 11, 2, 9, 0, tzinfo=CET)
PLAN_UID, REPLAN_UID = "1.2.826.0.1.3680043.10.1", "1.2.826.0.1.3680043.10.2"


def meta(user: str = "physicist", centre: str = HOME, at: datetime = REGISTERED) -> dict:
    return {"user": user, "centre": centre, "recorded_at": at, "request_id": None}


def plan_of(uid: str = PLAN_UID, fractions: int = 5, beams=((1, "100"), (2, "20")), centre: str = HOME) -> dict:
    return {"uid": uid, "label": "Breast 40Gy/15", "centre": centre,
            "fraction_groups": [{"number": 1, "fractions_planned": fractions,
                                 "beams": [{"number": n, "meterset": mu} for n, mu in beams]}]}


def new_course(**plan_args) -> Course:
    cmd = parse(RegisterCourse, {"patient": {"id": "P-1", "name": "PEETERS^AN", "birth_date": "1958-04-01"},
                                 "home_centre": HOME, "plan": plan_of(**plan_args), "assigned_centres": [PARTNER]})
    return Course(**registration(cmd), meta=meta())


def fraction(number: int, centre: str = HOME, day: int | None = None, operator: str | None = None, **extra) -> LogFraction:
    at = DAY1 + timedelta(days=number - 1 if day is None else day)
    return parse(LogFraction, {"number": number, "centre": centre, "machine": f"{centre}-L1",
                               "operator": operator or f"rtt.{centre.lower()}", "delivered_at": at, **extra})


def deliver(course: Course, number: int, centre: str = HOME, **extra):
    return course.deliver(fraction(number, centre, **extra), meta(f"rtt.{centre.lower()}", centre))


def refused(course: Course, kind: type[errors.LedgerError], act) -> errors.LedgerError:
    """`act()` raises `kind` and adds no event to the course."""
    pending, version = len(course.pending_events), course.version
    with pytest.raises(kind) as caught:
        act()
    assert (len(course.pending_events), course.version) == (pending, version), "a refusal writes nothing"
    return caught.value


# ---- FractionOutOfRange ---------------------------------------------------------------------


def test_a_fraction_beyond_the_prescription_is_refused_and_the_last_one_accepted():
    course = new_course(fractions=5)
    for n in range(1, 6):
        deliver(course, n)
    beyond = refused(course, errors.FractionOutOfRange, lambda: deliver(course, 6, day=10))
    assert beyond.conflict == {"fractions_planned": 5, "fractions_delivered": 5}
    assert course.fractions_delivered() == 5


def test_a_fraction_number_beyond_a_re_plans_own_numbering_is_refused():
    course = new_course(fractions=10)
    deliver(course, 1)
    course.add_fallback_plan(parse(Plan, plan_of(REPLAN_UID, fractions=3, centre=PARTNER)), meta("phys.p", PARTNER))
    assert deliver(course, 3, PARTNER, numbering="plan").number == 4, "the re-plan's 3rd is the course's 4th"
    out = refused(course, errors.FractionOutOfRange, lambda: deliver(course, 4, PARTNER, numbering="plan"))
    assert out.conflict == {"plan_uid": REPLAN_UID, "fractions_planned": 3}


# ---- FractionAlreadyDelivered ---------------------------------------------------------------


def test_the_same_fraction_twice_is_refused_with_the_first_record():
    course = new_course()
    first = deliver(course, 1, PARTNER)
    again = refused(course, errors.FractionAlreadyDelivered, lambda: deliver(course, 1, HOME, day=1))
    assert again.conflict["record_id"] == first.record_id
    assert (again.conflict["centre"], again.conflict["operator"]) == (PARTNER, "rtt.partner")
    assert again.conflict["delivered_at"] == DAY1.isoformat()


def test_a_voided_fraction_can_be_delivered_again():
    course = new_course()
    deliver(course, 1)
    course.void(None, 1, "wrong patient chart", "physicist", meta())
    again = deliver(course, 1, day=1)
    assert [r.voided for r in course.records] == [True, False] and again.number == 1
    assert course.fractions_delivered() == 1


def test_a_continuation_of_a_fraction_given_in_full_is_refused():
    course = new_course()
    deliver(course, 1)
    refused(course, errors.FractionAlreadyDelivered,
            lambda: deliver(course, 1, delivery_type="CONTINUATION", beams=[{"number": 2, "delivered_mu": "5"}]))


# ---- BeamAlreadyComplete and NothingToContinue -----------------------------------------------


def interrupted(course: Course) -> None:
    """Fraction 1: beam 1 in full, beam 2 stopped by the machine after 8 of its 20 MU."""
    deliver(course, 1, beams=[{"number": 1, "delivered_mu": "100"},
                              {"number": 2, "delivered_mu": "8", "termination": "MACHINE"}])


def test_a_continuation_giving_again_a_complete_beam_is_refused():
    course = new_course()
    interrupted(course)
    again = refused(course, errors.BeamAlreadyComplete, lambda: deliver(
        course, 1, delivery_type="CONTINUATION", beams=[{"number": 1, "delivered_mu": "100"}]))
    assert again.conflict == {"beam": 1, "delivered_mu": "100", "meterset": "100"}


def test_a_continuation_gives_what_the_interrupted_beam_still_lacks():
    course = new_course()
    interrupted(course)
    assert not course.is_complete_fraction(1, 1)
    rest = deliver(course, 1, delivery_type="CONTINUATION", beams=[{"number": 2, "delivered_mu": "12"}])
    assert [(b.number, b.start_mu, b.delivered_mu) for b in rest.beams] == [(2, Decimal("8"), Decimal("12"))]
    assert course.is_complete_fraction(1, 1) and course.fractions_delivered() == 1


def test_a_continuation_with_nothing_interrupted_is_refused():
    course = new_course()
    refused(course, errors.NothingToContinue, lambda: deliver(
        course, 1, delivery_type="CONTINUATION", beams=[{"number": 2, "delivered_mu": "12"}]))


# ---- MetersetBeyondTolerance -------------------------------------------------------------------


@pytest.mark.parametrize(("beam", "delivered", "termination", "accepted"), [
    (1, "102", "NORMAL", True),     # 2% of 100 MU: the edge is inside
    (1, "102.01", "NORMAL", False),  # over
    (1, "98", "NORMAL", True),
    (1, "97.99", "NORMAL", False),   # under, although it ended NORMAL
    (1, "50", "OPERATOR", True),     # under, but interrupted: a continuation gives the rest
    (1, "150", "OPERATOR", False),   # over is over, however it ended
    (2, "21", "NORMAL", True),       # 2% of 20 MU is 0.4: the floor of 1 MU applies
    (2, "21.01", "NORMAL", False),
    (2, "19", "NORMAL", True),
    (2, "18.99", "NORMAL", False),
])
def test_a_beams_meterset_is_checked_within_two_percent_at_least_one_mu(beam, delivered, termination, accepted):
    course = new_course()
    beams = [{"number": beam, "delivered_mu": delivered, "termination": termination}]
    if accepted:
        record = deliver(course, 1, beams=beams)
        assert record.deviations == [] and record.deviation_reason is None
        return
    beyond = refused(course, errors.MetersetBeyondTolerance, lambda: deliver(course, 1, beams=beams))
    (found,) = beyond.conflict["deviations"]
    assert (found["beam"], str(found["delivered"])) == (beam, delivered)
    assert found["kind"] == ("over" if Decimal(delivered) > Decimal(str(found["expected"])) else "under")


def test_a_deviation_confirmed_with_a_reason_is_recorded_as_one():
    course = new_course()
    record = deliver(course, 1, beams=[{"number": 1, "delivered_mu": "110"}], deviation_reason="linac log checked")
    assert record.deviation_reason == "linac log checked"
    assert [(d.beam, d.kind, d.expected, d.delivered) for d in record.deviations] == [
        (1, "over", Decimal("100"), Decimal("110"))]


def test_a_continuation_beyond_what_the_beam_still_lacks_is_refused():
    course = new_course()
    interrupted(course)  # beam 2 lacks 12 MU
    beyond = refused(course, errors.MetersetBeyondTolerance, lambda: deliver(
        course, 1, delivery_type="CONTINUATION", beams=[{"number": 2, "delivered_mu": "20"}]))
    assert str(beyond.conflict["deviations"][0]["expected"]) == "12"


# ---- PlanHasNoBeams ---------------------------------------------------------------------------


def test_a_course_whose_plan_lists_no_beams_takes_no_fraction():
    """As in a log written before beams were required: the aggregate replays it, but refuses fractions."""
    course = Course(patient={"id": "P-OLD", "name": "OLD^LOG"}, home_centre=HOME,
                    plan={"uid": PLAN_UID, "label": "count only",
                          "fraction_groups": [{"number": 1, "fractions_planned": 3, "beams": []}]},
                    triage=None, assigned_centres=[], meta=meta())
    refused(course, errors.PlanHasNoBeams, lambda: deliver(course, 1))


def test_a_plan_without_beams_is_refused_naming_the_group():
    with pytest.raises(errors.InvalidCommand) as bad:
        check_plan_lists_beams(parse(Plan, {**plan_of(), "fraction_groups": [
            {"number": 1, "fractions_planned": 5, "beams": [{"number": 1, "meterset": "100"}]},
            {"number": 2, "fractions_planned": 5, "beams": []}]}))
    assert bad.value.field == "plan.fraction_groups[1].beams"
    course = new_course()
    replan = refused(course, errors.InvalidCommand, lambda: course.add_fallback_plan(
        parse(Plan, plan_of(REPLAN_UID, beams=(), centre=PARTNER)), meta("phys.p", PARTNER)))
    assert replan.field == "plan.fraction_groups[0].beams"


# ---- CourseNotActive --------------------------------------------------------------------------


def test_no_fraction_on_a_suspended_course_until_it_is_resumed():
    course = new_course()
    course.suspend("skin reaction review", meta("dr.x"))
    stopped = refused(course, errors.CourseNotActive, lambda: deliver(course, 1))
    assert stopped.conflict["status"] == "suspended"
    assert (stopped.conflict["user"], stopped.conflict["reason"]) == ("dr.x", "skin reaction review")
    course.resume(meta("dr.x"))
    assert deliver(course, 1).number == 1


def test_no_fraction_and_no_suspension_on_a_completed_course():
    course = new_course()
    course.complete("stopped early", meta("dr.x"))
    assert refused(course, errors.CourseNotActive, lambda: deliver(course, 1)).conflict["status"] == "completed"
    refused(course, errors.LifecycleConflict, lambda: course.suspend("x", meta()))
    refused(course, errors.LifecycleConflict, lambda: course.complete("again", meta()))
    assert course.next_fraction(HOME) is None


# ---- VerifierIsOperator -----------------------------------------------------------------------


def test_a_fraction_is_verified_by_a_colleague_never_by_its_operator():
    course = new_course()
    deliver(course, 1, PARTNER)
    own = refused(course, errors.VerifierIsOperator, lambda: course.verify(None, 1, "rtt.partner", meta()))
    assert own.conflict["operator"] == "rtt.partner"
    (checked,) = course.verify(None, 1, "rtt.bert", meta("rtt.bert", PARTNER))
    assert checked.verified_by == "rtt.bert"
    refused(course, errors.AlreadyVerified, lambda: course.verify(None, 1, "rtt.carl", meta()))
    refused(course, errors.FractionNotFound, lambda: course.verify(None, 2, "rtt.carl", meta()))


# ---- PatientMismatch, PlanForAnotherCentre, PlanNotApproved -----------------------------------


def test_a_re_plan_made_for_another_patient_is_refused():
    course = new_course()
    replan = parse(Plan, plan_of(REPLAN_UID, centre=PARTNER))
    other = refused(course, errors.PatientMismatch,
                    lambda: course.add_fallback_plan(replan, meta("phys.p", PARTNER), patient_id="P-2"))
    assert other.conflict == {"course_patient_id": "P-1", "plan_patient_id": "P-2"}
    assert course.add_fallback_plan(replan, meta("phys.p", PARTNER), patient_id="P-1") is True


def test_a_partner_adds_fallback_plans_only_for_itself():
    course = new_course()
    for_home = parse(Plan, plan_of(REPLAN_UID, centre=HOME))
    foreign = refused(course, errors.PlanForAnotherCentre,
                      lambda: course.add_fallback_plan(for_home, meta("phys.p", PARTNER)))
    assert foreign.conflict == {"plan_centre": HOME, "acting_centre": PARTNER}
    # The home centre's physicists may bring in the partner's own re-plan.
    assert course.add_fallback_plan(parse(Plan, plan_of(REPLAN_UID, centre=PARTNER)), meta()) is True
    assert course.plan_in_use(PARTNER).uid == REPLAN_UID and course.plan_in_use(HOME).uid == PLAN_UID


@pytest.mark.parametrize(("fractions", "beams", "waits"), [
    (5, ((1, "110"), (2, "22")), False),  # 132 MU per fraction where 120 are prescribed: 10%, the edge
    (5, ((1, "111"), (2, "22")), True),   # more than 10% apart
    (5, ((1, "50"),), True),
    (6, ((1, "100"), (2, "20")), True),   # more fractions than prescribed
    (3, ((7, "120"),), False),            # other beams, fewer fractions, same dose: a re-plan's usual changes
])
def test_a_re_plan_that_departs_from_the_prescription_waits_for_a_home_physicist(fractions, beams, waits):
    course = new_course()
    course.add_fallback_plan(parse(Plan, plan_of(REPLAN_UID, fractions=fractions, beams=beams, centre=PARTNER)),
                             meta("phys.p", PARTNER))
    named = {"plan_uid": REPLAN_UID, "beams": [{"number": n, "delivered_mu": mu} for n, mu in beams]}
    if not waits:
        assert deliver(course, 1, PARTNER, **named).plan_uid == REPLAN_UID
        return
    assert course.plan_in_use(PARTNER).uid == PLAN_UID, "a plan awaiting approval is not the default"
    waiting = refused(course, errors.PlanNotApproved, lambda: deliver(course, 1, PARTNER, **named))
    assert waiting.conflict["plan_uid"] == REPLAN_UID and waiting.conflict["differences"]
    refused(course, errors.AccessDenied, lambda: course.approve_fallback_plan(REPLAN_UID, meta("phys.p", PARTNER)))
    assert course.approve_fallback_plan(REPLAN_UID, meta()) is True
    assert deliver(course, 1, PARTNER, **named).plan_uid == REPLAN_UID


# ---- bad input (InvalidCommand, naming the field) ------------------------------------------------


@pytest.mark.parametrize(("at", "accepted"), [
    (REGISTERED + timedelta(minutes=10), True),                  # clock skew between linac and ledger
    (REGISTERED + timedelta(minutes=10, seconds=1), False),      # the future
    (REGISTERED - timedelta(days=366), True),
    (REGISTERED - timedelta(days=366, seconds=1), False),        # long before the course existed
    (DAY1.replace(tzinfo=timezone(timedelta(hours=14))), True),
    (DAY1.replace(tzinfo=timezone(timedelta(hours=14, minutes=1))), False),  # no zone on Earth
    (DAY1.replace(tzinfo=timezone(timedelta(hours=-12))), True),
    (DAY1.replace(tzinfo=timezone(timedelta(hours=-12, minutes=-1))), False),
])
def test_a_delivery_time_the_ledger_cannot_believe_is_refused_naming_the_field(at, accepted):
    course = new_course()
    cmd = msgspec.structs.replace(fraction(1), delivered_at=at)
    if accepted:
        assert course.deliver(cmd, meta("rtt.home")).delivered_at == at
        return
    bad = refused(course, errors.InvalidCommand, lambda: course.deliver(cmd, meta("rtt.home")))
    assert bad.field == "delivered_at"


def test_a_session_with_an_empty_beam_list_is_refused_naming_the_field():
    course = new_course()
    assert refused(course, errors.InvalidCommand, lambda: deliver(course, 1, beams=[])).field == "beams"


def test_a_beam_at_zero_mu_that_ended_normally_is_refused_naming_the_beam():
    course = new_course()
    beams = [{"number": 1, "delivered_mu": "100"}, {"number": 2, "delivered_mu": "0"}]
    bad = refused(course, errors.InvalidCommand, lambda: deliver(course, 1, beams=beams))
    assert bad.field == "beams[1].delivered_mu"
    stopped = deliver(course, 1, beams=[beams[0], {"number": 2, "delivered_mu": "0", "termination": "OPERATOR"}])
    assert not course.is_complete_fraction(1, stopped.number)


def test_a_beam_not_in_the_plan_or_listed_twice_is_refused():
    course = new_course()
    refused(course, errors.UnknownBeam, lambda: deliver(course, 1, beams=[{"number": 9, "delivered_mu": "100"}]))
    twice = refused(course, errors.InvalidCommand, lambda: deliver(
        course, 1, beams=[{"number": 1, "delivered_mu": "50", "termination": "OPERATOR"},
                          {"number": 1, "delivered_mu": "50"}]))
    assert twice.field == "beams"


# ---- accepted, with a warning stored on the fraction ---------------------------------------------


def test_what_is_accepted_but_must_be_seen_is_stored_with_the_fraction():
    course = new_course()
    assert deliver(course, 1).warnings == []
    assert len(deliver(course, 3).warnings) == 1, "fraction 2 is not recorded"
    close = course.deliver(msgspec.structs.replace(fraction(2), delivered_at=DAY1 + timedelta(days=2, hours=5)),
                           meta("rtt.home"))
    assert len(close.warnings) == 1, "less than 6 hours after fraction 3"
    assert len(deliver(course, 4, ELSEWHERE, day=10).warnings) == 1, "a centre not assigned to the course"


# ---- replay: the events rebuild the same course --------------------------------------------------


def test_the_events_of_a_course_replay_to_the_same_course_in_memory():
    """Through the application service on eventsourcing's in-memory (POPO) recorder: what the
    aggregate decided is what a reload of its events gives."""
    from ledger.service import Actor

    app = FractionLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=Clock(REGISTERED))
    try:
        cid = app.register_course({"patient": {"id": "P-1", "name": "PEETERS^AN"}, "home_centre": HOME,
                                   "plan": plan_of(), "assigned_centres": [PARTNER]}, Actor("physicist", HOME))["id"]
        for n in (1, 2):
            app.log_fraction(cid, msgspec.to_builtins(fraction(n, PARTNER)), Actor("rtt.partner", PARTNER))
        app.verify_fraction(cid, 1, "rtt.bert", Actor("rtt.bert", PARTNER))
        with pytest.raises(errors.FractionAlreadyDelivered):
            app.log_fraction(cid, msgspec.to_builtins(fraction(2, HOME, day=5)), Actor("rtt.home", HOME))
        course = app.get_course(cid)
        assert [(r.number, r.centre, r.verified_by) for r in course.records] == [
            (1, PARTNER, "rtt.bert"), (2, PARTNER, None)]
        assert app.get_course(cid).version == course.version == 4
    finally:
        app.close()


def test_every_refusal_of_the_readme_rule_table_has_a_unit_test_here():
    rules = re.findall(r"^\|[^|]+\| `(\w+)` \|", (ROOT / "README.md").read_text(), flags=re.M)
    assert len(rules) >= 11, rules
    source = (ROOT / "tests" / "test_course_unit.py").read_text()
    assert [r for r in rules if f"errors.{r}," not in source] == []


# ---- CountersignerIsPrescriber (issue 17; the amendments' other rules: tests/test_gaps_unit.py) ----


def test_a_prescription_amendment_is_not_countersigned_by_its_prescriber():
    from schemas.prescription import AmendPrescription

    course = new_course(fractions=5)
    proposed = course.amend(parse(AmendPrescription, {"kind": "extra_fractions", "fractions": 1, "reason": "outage"}),
                            meta("onc.a"))
    refused(course, errors.CountersignerIsPrescriber, lambda: course.countersign(proposed.id, meta("onc.a")))
    assert course.fractions_planned() == 5
    course.countersign(proposed.id, meta("onc.b"))
    assert course.fractions_planned() == 6
