"""The assignment plan's rule, on values: no store, no application (ledger/planning.py)."""

from __future__ import annotations

from datetime import date

import pytest

from ledger import errors
from ledger.messages import english
from ledger.planning import Need, Offer, check_acceptance, must_be_treated, propose

DAY = date(2027, 3, 29)
TB = {"name": "TB1", "model": "TrueBeam", "techniques": ["static", "VMAT", "SRS"]}
HAL = {"name": "HAL1", "model": "Halcyon", "techniques": ["static", "VMAT"]}


def need(i: int, triage: int | None, technique: str = "VMAT", assigned: tuple[str, ...] = ()) -> Need:
    return Need(course_id=f"c{i:02d}", patient_id=f"P-{i:02d}", label=f"plan {i}", triage=triage,
                technique=technique, home_centre="HOME", assigned=assigned, remaining=10)


@pytest.mark.parametrize("triage, lost, treated", [
    (1, 90, True), (1, 91, False), (2, 75, True), (2, 76, False), (3, 50, True), (3, 51, False),
    (4, 20, True), (4, 21, False), (5, 10, True), (5, 11, False),
])
def test_the_triage_code_says_who_is_still_treated_at_each_capacity_level(triage, lost, treated):
    assert must_be_treated(triage, lost) is treated


def test_most_urgent_first_until_the_partner_is_full_and_the_rest_listed_with_why():
    needs = [need(1, 3), need(2, 1), need(3, 2), need(4, 4)]
    plan = propose(needs, [Offer("PART", 2, (TB,))], 50, DAY)
    assert [(p.need.course_id, p.centre) for p in plan.proposals] == [("c02", "PART"), ("c03", "PART")]
    assert [(u.need.course_id, english(u.reason)) for u in plan.unplaceable] == [
        ("c01", "every partner that delivers VMAT is full (PART)")]
    assert [n.course_id for n in plan.waiting] == ["c04"]  # triage 4 waits at 50% lost
    assert plan.load["PART"] == {"per_day": 2, "taken": 0, "proposed": 2, "unit": "patients", "version": 1,
                                 "window": ["07:00", "19:00"]}


def test_a_technique_no_offered_machine_delivers_is_unplaceable_and_untriaged_courses_are_not_dropped():
    plan = propose([need(1, 1, "electrons"), need(2, None)], [Offer("PART", 5, (TB,))], 50, DAY)
    assert plan.proposals == []
    assert [english(u.reason) for u in plan.unplaceable] == [
        "no triage code: triage the course first", "no partner offers a machine that delivers electrons"]


def test_the_load_spreads_to_the_partner_with_most_room_and_a_course_at_a_partner_keeps_its_place():
    needs = [need(1, 1, assigned=("HOME", "A")), need(2, 1), need(3, 1, "SRS"), need(4, 2)]
    plan = propose(needs, [Offer("A", 3, (TB,)), Offer("B", 3, (HAL,))], 50, DAY)
    assert [(k.need.course_id, k.centre) for k in plan.kept] == [("c01", "A")]
    assert [(p.need.course_id, p.centre) for p in plan.proposals] == [("c02", "B"), ("c03", "A"), ("c04", "B")]
    assert plan.load["A"]["taken"] == 1 and plan.load["A"]["proposed"] == 1


def test_the_home_centre_is_never_its_own_partner():
    plan = propose([need(1, 1)], [Offer("HOME", 5, (TB,))], 50, DAY)
    assert plan.proposals == [] and english(plan.unplaceable[0].reason).startswith("no partner offers")


def test_acceptance_is_checked_again_on_the_state_as_it_is_now():
    offers = [Offer("A", 1, (TB,))]
    needs = [need(1, 1), need(2, 1)]
    assert [(n.course_id, c) for n, c in check_acceptance(needs, offers, [("c01", "A")], 50)] == [("c01", "A")]
    with pytest.raises(errors.PlanChanged) as full:
        check_acceptance(needs, offers, [("c01", "A"), ("c02", "A")], 50)
    assert "A is full (1 patients a day)" in full.value.message
    taken = [need(1, 1, assigned=("A",)), need(2, 1)]
    with pytest.raises(errors.PlanChanged, match="already assigned to A"):
        check_acceptance(taken, offers, [("c01", "A")], 50)
    with pytest.raises(errors.PlanChanged, match="A is full"):  # someone accepted c01 there meanwhile
        check_acceptance(taken, offers, [("c02", "A")], 50)
    with pytest.raises(errors.PlanChanged, match="offers no machine that delivers electrons"):
        check_acceptance([need(3, 1, "electrons")], offers, [("c03", "A")], 50)
    with pytest.raises(errors.PlanChanged, match="not to be treated at 50%"):
        check_acceptance([need(4, 5)], offers, [("c04", "A")], 50)
    with pytest.raises(errors.InvalidCommand, match="capacity_lost"):
        propose([], offers, 101, DAY)
