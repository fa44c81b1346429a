"""The rules that protect the patient, told as the stories they come from.

Service tests: each runs through the application service on the embedded SQLite store (the
`ledger` fixture); the rules themselves are unit-tested on an in-memory Course in
tests/test_course_unit.py, and storage (races, chain, crash) on PostgreSQL too (`EACH_BACKEND`).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from ledger import errors
from ledger.messages import english
from ledger.service import Actor
from schemas.course import BeamDelivery
from schemas.results import CourseChange

HOME, PARTNER, OTHER = "HOME", "PARTNER", "OTHER"
DAY1 = datetime(2026, 10, 5, 9, 0, tzinfo=timezone(timedelta(hours=2)))
PHYSICIST = Actor("physicist", HOME)


def plan(uid="1.2.826.0.1.3680043.10.1", fractions=30, beams=(("1", "120.0"), ("2", "115.5")), groups=None, **extra):
    groups = groups or [{"number": 1, "fractions_planned": fractions,
                         "beams": [{"number": int(n), "meterset": mu} for n, mu in beams]}]
    return {"uid": uid, "label": "Pelvis 60Gy/30", "machine": "HOME-L1", "centre": HOME,
            "fraction_groups": groups, **extra}


def register(ledger, patient_id="P-REX3", **plan_args) -> str:
    result = ledger.app.register_course(
        {"patient": {"id": patient_id, "name": "DUPONT^MARIE", "birth_date": "1958-04-01", "sex": "F"},
         "home_centre": HOME, "plan": plan(**plan_args), "assigned_centres": [PARTNER]},
        PHYSICIST,
    )
    return result["id"]


def log(ledger, course_id, number, centre=HOME, day=None, operator=None, **extra):
    at = DAY1 + timedelta(days=(day if day is not None else number - 1))
    operator = operator or f"rtt.{centre.lower()}"
    return ledger.app.log_fraction(
        course_id,
        {"number": number, "centre": centre, "machine": f"{centre}-L1", "operator": operator, "delivered_at": at, **extra},
        Actor(operator, centre),
    )


def event_count(ledger) -> int:
    return ledger.app.recorder.max_notification_id() or 0


def test_rex3_re_registered_fraction_and_fraction_beyond_prescription_are_refused(ledger):
    """FANC REX 3: 12 fractions at home, 13-20 at the partner; re-registering fraction 20 from a
    screenshot must be refused, and so must a 31st fraction once all 30 are given."""
    course = register(ledger)
    for n in range(1, 13):
        log(ledger, course, n, HOME)
    for n in range(13, 21):
        log(ledger, course, n, PARTNER)

    before, course_version = event_count(ledger), ledger.app.get_course(course).version
    with pytest.raises(errors.FractionAlreadyDelivered) as refused:
        log(ledger, course, 20, HOME, day=25, operator="rtt.late")
    message = str(refused.value)
    assert "Fraction 20" in message and PARTNER in message and "rtt.partner" in message
    assert refused.value.conflict["centre"] == PARTNER
    assert refused.value.conflict["delivered_at"] == (DAY1 + timedelta(days=19)).isoformat()
    # The refusal leaves the course untouched; what it writes is the near-miss incident (issue 8).
    assert ledger.app.get_course(course).version == course_version
    assert event_count(ledger) == before + 1
    assert [(i["category"], i["registered_by"]) for i in ledger.fresh().incidents()] == [("near-miss", "rtt.late")]

    for n in range(21, 31):
        log(ledger, course, n, HOME)
    with pytest.raises(errors.FractionOutOfRange) as beyond:
        log(ledger, course, 31, HOME, day=40)
    assert "30 fractions planned" in str(beyond.value) and "Do not treat" in str(beyond.value)

    view = ledger.fresh().course(course)
    assert view["fractions_delivered"] == 30 and view["fractions_planned"] == 30
    assert [f["centre"] for f in view["fractions"]] == [HOME] * 12 + [PARTNER] * 8 + [HOME] * 10


def test_fraction_number_outside_range_is_refused(ledger):
    course = register(ledger, fractions=5)
    with pytest.raises(errors.FractionOutOfRange):
        log(ledger, course, 6)
    with pytest.raises(errors.InvalidCommand) as bad:
        log(ledger, course, 0)
    assert bad.value.field == "number"


def test_total_never_exceeds_the_plan_per_fraction_group(ledger):
    groups = [
        {"number": 1, "fractions_planned": 3, "beams": [{"number": 1, "meterset": "100"}]},
        {"number": 2, "fractions_planned": 2, "beams": [{"number": 2, "meterset": "80"}]},
    ]
    course = register(ledger, groups=groups)
    with pytest.raises(errors.InvalidCommand) as which:
        log(ledger, course, 1)
    assert which.value.field == "group"
    for n in (1, 2, 3):
        log(ledger, course, n, group=1)
    for n in (1, 2):
        log(ledger, course, n, day=10 + n, group=2)
    with pytest.raises(errors.FractionOutOfRange):
        log(ledger, course, 3, day=20, group=2)
    assert ledger.fresh().course(course)["fractions_delivered"] == 5


def test_fallback_plan_at_the_partner_keeps_counting_against_the_original(ledger):
    course = register(ledger, fractions=10)
    for n in range(1, 5):
        log(ledger, course, n, HOME)
    replan = plan(uid="1.2.826.0.1.3680043.10.99", fractions=10, beams=(("1", "131.2"), ("2", "98.4")),
                  machine="PARTNER-TB", centre=PARTNER)
    ledger.app.add_fallback_plan(course, replan, Actor("physicist.partner", PARTNER))
    record = log(ledger, course, 5, PARTNER)
    assert record["plan_uid"] == "1.2.826.0.1.3680043.10.99", "the partner's own re-plan is the default there"
    assert [b["specified_mu"] for b in record["beams"]] == [Decimal("131.2"), Decimal("98.4")]
    for n in range(6, 11):
        log(ledger, course, n, PARTNER)
    with pytest.raises(errors.FractionOutOfRange):
        log(ledger, course, 11, PARTNER)
    with pytest.raises(errors.FractionAlreadyDelivered):
        log(ledger, course, 3, PARTNER, day=30)
    view = ledger.fresh().course(course)
    assert view["fractions_delivered"] == 10
    assert len(view["plans"]) == 2


def test_interrupted_fraction_is_completed_by_a_continuation_and_counts_once(ledger):
    course = register(ledger, fractions=5)
    first = log(ledger, course, 1, PARTNER,
                beams=[{"number": 1, "delivered_mu": "120.0"},
                       {"number": 2, "delivered_mu": "40.2", "termination": "MACHINE"}])
    assert first["beams"][1]["termination"] == "MACHINE"
    with pytest.raises(errors.FractionAlreadyDelivered):
        log(ledger, course, 1, PARTNER)  # a second TREATMENT of the same fraction
    cont = log(ledger, course, 1, PARTNER, day=0, delivery_type="CONTINUATION",
               beams=[{"number": 2, "delivered_mu": "75.3"}])
    assert cont["delivery_type"] == "CONTINUATION"
    assert cont.beams == [BeamDelivery(number=2, specified_mu=Decimal("115.5"), delivered_mu=Decimal("75.3"),
                                        termination="NORMAL", start_mu=Decimal("40.2"))], \
        "a continuation's specified MU is the plan's meterset (PS3.3 C.8.8.21.2.1); it starts where the first stopped"
    with pytest.raises(errors.FractionAlreadyDelivered):
        log(ledger, course, 1, PARTNER, day=0, delivery_type="CONTINUATION", beams=[{"number": 2, "delivered_mu": "1"}])
    with pytest.raises(errors.NothingToContinue):
        log(ledger, course, 2, delivery_type="CONTINUATION", beams=[{"number": 1, "delivered_mu": "1"}])
    view = ledger.fresh().course(course)
    assert view["fractions_delivered"] == 1
    assert [f["delivery_type"] for f in view["fractions"]] == ["TREATMENT", "CONTINUATION"]


def test_verification_needs_a_second_person(ledger):
    course = register(ledger, fractions=5)
    log(ledger, course, 1, PARTNER, operator="anna")
    with pytest.raises(errors.VerifierIsOperator) as own:
        ledger.app.verify_fraction(course, 1, "anna", Actor("anna", PARTNER))
    assert "anna" in str(own.value) and "colleague" in str(own.value)
    verified = ledger.app.verify_fraction(course, 1, "bert", Actor("bert", PARTNER))
    assert verified[0]["verified_by"] == "bert"
    with pytest.raises(errors.AlreadyVerified):
        ledger.app.verify_fraction(course, 1, "carl", Actor("carl", PARTNER))
    with pytest.raises(errors.FractionNotFound):
        ledger.app.verify_fraction(course, 2, "bert", Actor("bert", PARTNER))
    assert ledger.fresh().course(course)["fractions"][0]["verified_by"] == "bert"


def test_void_keeps_the_record_and_frees_the_fraction_number(ledger):
    course = register(ledger, fractions=5)
    log(ledger, course, 1, HOME, note="entered for the wrong day")
    with pytest.raises(errors.InvalidCommand) as no_reason:
        ledger.app.void_fraction(course, 1, "  ", "physicist", PHYSICIST)
    assert no_reason.value.field == "reason"
    ledger.app.void_fraction(course, 1, "logged on the wrong patient", "physicist", PHYSICIST)
    with pytest.raises(errors.AlreadyVoided):
        ledger.app.void_fraction(course, 1, "again", "physicist", PHYSICIST)
    log(ledger, course, 1, HOME, day=1)
    view = ledger.fresh().course(course)
    assert view["fractions_delivered"] == 1
    assert [f["voided"] for f in view["fractions"]] == [True, False]
    assert view["fractions"][0]["void_reason"] == "logged on the wrong patient"


def test_suspended_and_completed_courses_accept_no_fraction(ledger):
    course = register(ledger, fractions=5)
    log(ledger, course, 1)
    ledger.app.suspend_course(course, "skin reaction, review by the oncologist", Actor("dr.peeters", HOME))
    with pytest.raises(errors.CourseNotActive) as suspended:
        log(ledger, course, 2)
    assert "suspended" in str(suspended.value) and "dr.peeters" in str(suspended.value)
    with pytest.raises(errors.LifecycleConflict):
        ledger.app.suspend_course(course, "twice", PHYSICIST)
    ledger.app.resume_course(course, PHYSICIST)
    log(ledger, course, 2)
    ledger.app.complete_course(course, "stopped early on medical advice", PHYSICIST)
    with pytest.raises(errors.CourseNotActive) as completed:
        log(ledger, course, 3)
    assert "completed" in str(completed.value)
    assert ledger.fresh().course(course)["status"] == "completed"


def test_accepted_with_stored_warnings(ledger):
    course = register(ledger, fractions=10)
    log(ledger, course, 1, HOME)
    close = log(ledger, course, 2, HOME, day=0)  # same day as fraction 1
    assert [w["code"] for w in close["warnings"]] == ["warning.short_interval"]  # stored as codes and values
    assert any("Less than 6 hours" in english(w) for w in close["warnings"])
    unassigned = log(ledger, course, 3, OTHER, day=5)
    assert any("not assigned" in english(w) for w in unassigned["warnings"])
    gap = log(ledger, course, 6, HOME, day=8)
    assert any("4, 5" in english(w) for w in gap["warnings"])
    stored = {f["number"]: f["warnings"] for f in ledger.fresh().course(course)["fractions"]}
    assert stored[2] == close["warnings"] and stored[3] == unassigned["warnings"]


def test_registration_is_idempotent_and_conflicting_content_is_refused(ledger):
    first = register(ledger)
    again = ledger.app.register_course(
        {"patient": {"id": "P-REX3", "name": "DUPONT^MARIE", "birth_date": "1958-04-01", "sex": "F"},
         "home_centre": HOME, "plan": plan(), "assigned_centres": [PARTNER]}, Actor("physicist.partner", PARTNER))
    assert again == CourseChange(id=first, status="unchanged")
    before = event_count(ledger)
    with pytest.raises(errors.CourseConflict) as conflict:
        register(ledger, fractions=25)
    assert conflict.value.conflict["fields"] == ["plan"]
    assert event_count(ledger) == before
    assert len(ledger.fresh().courses()) == 1


def test_a_retried_request_returns_the_first_result_and_writes_nothing(ledger):
    course = register(ledger, fractions=5)
    body = {"number": 1, "centre": PARTNER, "machine": "TB2", "operator": "anna", "delivered_at": DAY1}
    first = ledger.app.log_fraction(course, body, Actor("anna", PARTNER), request_id="tablet-7/0001")
    before = event_count(ledger)
    retry = ledger.app.log_fraction(course, body, Actor("anna", PARTNER), request_id="tablet-7/0001")
    assert retry == first
    assert event_count(ledger) == before
    with pytest.raises(errors.RequestIdReused):
        ledger.app.log_fraction(course, {**body, "number": 2}, Actor("anna", PARTNER), request_id="tablet-7/0001")
    assert event_count(ledger) == before
    assert ledger.fresh().course(course)["fractions_delivered"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"delivered_at": "2026-10-05T09:00:00"}, "delivered_at"),
        ({"number": "three"}, "number"),
        ({"centre": ""}, "centre"),
        ({"beams": [{"number": 1, "delivered_mu": "-4"}]}, "beams[0]"),
        ({"beams": [{"number": 1, "delivered_mu": "10", "termination": "STOPPED"}]}, "beams[0].termination"),
        ({"delivery_type": "BOOST"}, "delivery_type"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(ledger, change, field):
    course = register(ledger, fractions=5)
    body = {"number": 1, "centre": HOME, "machine": "L1", "operator": "anna", "delivered_at": DAY1.isoformat(), **change}
    before = event_count(ledger)
    with pytest.raises(errors.InvalidCommand) as bad:
        ledger.app.log_fraction(course, body, Actor("anna", HOME))
    assert bad.value.field == field
    assert bad.value.reason
    assert event_count(ledger) == before


def test_unknown_course_beam_and_plan_are_refused(ledger):
    course = register(ledger, fractions=5)
    with pytest.raises(errors.CourseNotFound):
        log(ledger, "00000000-0000-0000-0000-000000000000", 1)
    with pytest.raises(errors.UnknownBeam):
        log(ledger, course, 1, beams=[{"number": 9, "delivered_mu": "10"}])
    with pytest.raises(errors.UnknownPlan):
        log(ledger, course, 1, plan_uid="1.2.3.4")


def test_every_event_records_who_where_and_when(ledger):
    course = register(ledger, fractions=5)
    log(ledger, course, 1, PARTNER, operator="anna")
    events = list(ledger.app.events.get(__import__("uuid").UUID(course)))
    delivered = events[-1]
    assert delivered.meta["user"] == "anna" and delivered.meta["centre"] == PARTNER
    assert delivered.meta["recorded_at"].tzinfo is not None
    assert delivered.record["delivered_at"] == DAY1


def test_the_next_fraction_suggested_to_a_centre_follows_the_count(ledger):
    course = register(ledger, fractions=3)
    assert ledger.app.get_course(course).next_fraction(PARTNER)[1] == 1
    for n in (1, 2):
        log(ledger, course, n, PARTNER)
    group, number = ledger.app.get_course(course).next_fraction(PARTNER)
    assert (group.number, number) == (1, 3)
    log(ledger, course, 3, PARTNER)
    assert ledger.app.get_course(course).next_fraction(PARTNER) is None  # 3 of 3: nothing left to deliver


def test_the_next_fraction_is_the_first_missing_one_of_the_first_incomplete_group(ledger):
    course = register(ledger, groups=[
        {"number": 1, "fractions_planned": 3, "beams": [{"number": 1, "meterset": "100"}]},
        {"number": 2, "fractions_planned": 2, "beams": [{"number": 2, "meterset": "50"}]}])
    for n in (1, 3):
        log(ledger, course, n, group=1)
    group, number = ledger.app.get_course(course).next_fraction(HOME)
    assert (group.number, number) == (1, 2)  # the gap, not the number after the highest
    log(ledger, course, 2, group=1)
    group, number = ledger.app.get_course(course).next_fraction(HOME)
    assert (group.number, number, [b.number for b in group.beams]) == (2, 1, [2])


def test_nothing_is_suggested_on_a_suspended_or_completed_course(ledger):
    course = register(ledger, fractions=5)
    log(ledger, course, 1)
    ledger.app.suspend_course(course, "skin reaction", PHYSICIST)
    assert ledger.app.get_course(course).next_fraction(HOME) is None
    ledger.app.resume_course(course, PHYSICIST)
    assert ledger.app.get_course(course).next_fraction(HOME)[1] == 2
    ledger.app.complete_course(course, "stopped early by the oncologist", PHYSICIST)
    assert ledger.app.get_course(course).next_fraction(HOME) is None


def test_a_fallback_plan_prescribing_what_remains_does_not_end_the_suggestions_early(ledger):
    """The partner's re-plan prescribes the 3 fractions left of 5: once 3 are given in all, 2 remain."""
    course = register(ledger, fractions=5)
    for n in (1, 2):
        log(ledger, course, n, HOME)
    ledger.app.add_fallback_plan(course, {"uid": "1.2.3.99", "label": "Fallback 3fx", "centre": PARTNER,
                                          "fraction_groups": [{"number": 1, "fractions_planned": 3,
                                                               "beams": [{"number": 7, "meterset": "230"}]}]},
                                 Actor("physicist.partner", PARTNER))  # MU per fraction within 10%: usable at once
    log(ledger, course, 3, PARTNER)
    group, number = ledger.app.get_course(course).next_fraction(PARTNER)
    assert (number, [b.number for b in group.beams]) == (4, [7])
    for n in (4, 5):
        log(ledger, course, n, PARTNER)
    assert ledger.app.get_course(course).next_fraction(PARTNER) is None


def test_a_plan_with_two_fraction_groups_of_one_number_is_refused_on_every_path(ledger):
    """Issue 12: two groups numbered 1 were registered as 0/70 and only 35 could be logged."""
    twins = [{"number": 1, "fractions_planned": 35, "beams": [{"number": 1, "meterset": "120"}]},
             {"number": 1, "fractions_planned": 35, "beams": [{"number": 2, "meterset": "80"}]}]
    before = event_count(ledger)
    with pytest.raises(errors.InvalidCommand) as refused:
        register(ledger, groups=twins)
    assert refused.value.field == "plan" and "fraction group 1 appears twice in the plan" in refused.value.reason
    course = register(ledger, patient_id="P-OK", fractions=35)
    with pytest.raises(errors.InvalidCommand, match="fraction group 1 appears twice"):
        ledger.app.add_fallback_plan(course, plan(uid="1.2.3.98", groups=twins, centre=PARTNER), PHYSICIST)
    same_beam = [{"number": 1, "fractions_planned": 35, "beams": [{"number": 1, "meterset": "120"},
                                                                   {"number": 1, "meterset": "80"}]}]
    with pytest.raises(errors.InvalidCommand, match="beam 1 appears twice in fraction group 1"):
        register(ledger, patient_id="P-BEAM", groups=same_beam)
    assert event_count(ledger) == before + 2  # only the good course (and its patient-and-plan key)
    # a partner's bundle carrying such a fallback plan does not even decode (BundleRefused: malformed)
    from schemas.trust import FallbackAdded

    with pytest.raises(msgspec.ValidationError, match="fraction group 1 appears twice"):
        msgspec.convert({"type": "FallbackPlanAdded", "key": "k", "course": course, "user": "p", "centre": PARTNER,
                         "recorded_at": DAY1.isoformat(), "hash": "0" * 64, "plan": plan(groups=twins)},
                        FallbackAdded, strict=False)


def test_a_course_registered_before_the_plan_rule_still_loads(ledger):
    """A log written before duplicate group numbers were refused is a fact: it must still load,
    so that its course can be read, completed or voided."""
    from ledger.course import Course

    twins = plan(groups=[{"number": 1, "fractions_planned": 35}, {"number": 1, "fractions_planned": 35}])
    old = Course(patient={"id": "P-OLD", "name": "OLD^ONE"}, home_centre=HOME, plan=twins, triage=None,
                 assigned_centres=[], meta={"user": "physicist", "centre": HOME, "recorded_at": DAY1})
    ledger.app.save(old)
    assert ledger.app.get_course(old.id).fractions_planned() == 70
