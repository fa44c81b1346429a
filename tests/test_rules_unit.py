"""Unit tests of the decisions that used to be taken at the edges (issue 14, point 2) and of the
days the ledger computes (point 3): each on a `Course` built in memory, with no store, no
application and no read model; the clock is a value given to the aggregate.

Where each rule lives is in the README ("Where each rule lives").
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from ledger import billable, billing
from ledger.local_time import local_day
from tests.test_course_unit import DAY1, ELSEWHERE, HOME, PARTNER, deliver, fraction, meta, new_course

BRUSSELS = ZoneInfo("Europe/Brussels")
UTC = timezone.utc


def in_brussels(_centre: str) -> ZoneInfo:
    return BRUSSELS


def completed(at: datetime):
    course = new_course(fractions=5)
    deliver(course, 1)
    course.complete("done", meta("dr.home", HOME, at))
    return course


# ---- the day of a completion, in the home centre's zone ------------------------------------------


@pytest.mark.parametrize("at, day", [
    # 00:30 in Brussels on 1 December is 23:30 UTC on 30 November: December's statement.
    (datetime(2026, 11, 30, 23, 30, tzinfo=UTC), date(2026, 12, 1)),
    (datetime(2026, 11, 30, 22, 59, tzinfo=UTC), date(2026, 11, 30)),  # 23:59 in Brussels
    # Summer time (+02:00): 00:30 on 1 July is 22:30 UTC on 30 June.
    (datetime(2027, 6, 30, 22, 30, tzinfo=UTC), date(2027, 7, 1)),
    (datetime(2027, 6, 30, 21, 59, tzinfo=UTC), date(2027, 6, 30)),
    # The night the clocks go forward (28 March 2027, 02:00 CET -> 03:00 CEST) and the next.
    (datetime(2027, 3, 27, 23, 30, tzinfo=UTC), date(2027, 3, 28)),
    (datetime(2027, 3, 28, 22, 30, tzinfo=UTC), date(2027, 3, 29)),
    # The night they go back (25 October 2026, 03:00 CEST -> 02:00 CET) and the next.
    (datetime(2026, 10, 24, 22, 30, tzinfo=UTC), date(2026, 10, 25)),
    (datetime(2026, 10, 25, 23, 30, tzinfo=UTC), date(2026, 10, 26)),
])
def test_a_course_completes_on_its_home_centres_local_day(at, day):
    assert billing.completed_on(completed(at), in_brussels) == day


def test_the_completion_day_follows_the_home_centres_own_zone():
    course = completed(datetime(2026, 11, 30, 23, 30, tzinfo=UTC))
    assert billing.completed_on(course, lambda _: ZoneInfo("Europe/London")) == date(2026, 11, 30)
    assert billing.completed_on(course, lambda _: ZoneInfo("America/New_York")) == date(2026, 11, 30)


def test_a_time_without_an_offset_has_no_day():
    with pytest.raises(ValueError):
        local_day(datetime(2026, 11, 30, 23, 30), BRUSSELS)


def test_a_fraction_counts_on_the_delivering_centres_local_day_whatever_offset_it_was_told_with():
    course = new_course(fractions=5)
    late = meta("rtt.partner", PARTNER, datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    # 23:30 UTC on 30 November, as a partner's system wrote it, is 1 December at a Brussels linac.
    course.deliver(fraction(1, PARTNER, delivered_at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC)), late)
    assert billing.deliveries_of(course, in_brussels) == [(PARTNER, date(2026, 12, 1))]


def test_the_split_of_a_course_takes_its_days_in_its_centres_zones():
    course = new_course(fractions=5)
    for n in (1, 2):
        deliver(course, n)
    course.complete("done", meta("dr.home", HOME, datetime(2026, 11, 30, 23, 30, tzinfo=UTC)))
    split = billing.split_for(course, lambda *_: None, in_brussels)
    assert (split.status, split.completed_on, split.first_fraction_on) == ("home-only", date(2026, 12, 1), DAY1.date())


# ---- the billable fraction: one definition for the split and the HL7 charges ---------------------


def test_a_fraction_bills_once_by_its_first_session_whatever_completes_it():
    course = new_course(fractions=5)
    deliver(course, 1, beams=[{"number": 1, "delivered_mu": "100"}])
    deliver(course, 1, beams=[{"number": 2, "delivered_mu": "20"}])  # a file per beam: the same session
    deliver(course, 2, beams=[{"number": 1, "delivered_mu": "50", "termination": "MACHINE"},
                              {"number": 2, "delivered_mu": "0", "termination": "MACHINE"}])
    deliver(course, 2, PARTNER, delivery_type="CONTINUATION",
            beams=[{"number": 1, "delivered_mu": "50"}, {"number": 2, "delivered_mu": "20"}])
    first, further, interrupted, continuation = course.records
    assert further.part_of == first.record_id
    assert [billable.bills_its_fraction(r.delivery_type, r.part_of) for r in course.records] == [True, False, True, False]
    assert billable.billable_fractions(course.records) == [first, interrupted]
    # The continuation at the partner does not move fraction 2 away from the home centre.
    assert billing.deliveries_of(course, in_brussels) == [(HOME, DAY1.date()), (HOME, DAY1.date() + timedelta(days=1))]


def test_a_voided_fraction_is_not_billable_but_its_charge_is_still_the_ledgers_to_credit():
    course = new_course(fractions=5)
    deliver(course, 1)
    course.void(None, 1, "wrong patient", "dr.home", meta())
    [record] = course.records
    assert billable.billable_fractions(course.records) == []
    assert billable.to_charge(record.delivery_type, record.part_of, record.source)


@pytest.mark.parametrize("source, counted, charged", [
    ("ledger", True, True), ("bundle", True, True),
    # Imported from the OIS's backup: part of the course (the split counts it), but the OIS
    # posted its charge before the outage, so the replay does not charge it again.
    ("baseline", True, False), ("summary", True, False),
])
def test_a_fraction_from_the_ois_counts_in_the_split_but_is_not_charged_again(source, counted, charged):
    course = new_course(fractions=5)
    deliver(course, 1, source=source)
    [record] = course.records
    assert (len(billable.billable_fractions(course.records)) == 1) is counted
    assert billable.to_charge(record.delivery_type, record.part_of, record.source) is charged


def test_the_technique_billed_is_of_the_beams_of_the_fraction_group_in_the_records_plan():
    from schemas.course import Plan
    from ledger.course import from_event

    def plan(*beams):
        return from_event({"uid": "1.2", "label": "x", "fraction_groups": [
            {"number": 1, "fractions_planned": 5, "beams": [{"number": i, "meterset": "10", **b} for i, b in enumerate(beams, 1)]}]}, Plan)

    assert billable.technique(plan({}, {}), 1) == "PHOTON/STATIC"
    assert billable.technique(plan({"beam_type": "STATIC"}, {"beam_type": "DYNAMIC"}), 1) == "PHOTON/DYNAMIC"
    assert billable.technique(plan({"radiation_type": "ELECTRON"}), 1) == "ELECTRON/STATIC"
    assert billable.technique(plan({}), 2) == "UNKNOWN/UNKNOWN"
    assert billable.technique(None, 1) == "UNKNOWN/UNKNOWN"


# ---- which courses a statement shows ---------------------------------------------------------------


def split_row(course_id: str, status: str, billing: str | None, shares: dict, home: str = HOME,
              assigned: tuple = (PARTNER,)) -> dict:
    return {"course_id": course_id, "patient_id": f"P-{course_id}", "completed_on": "2026-12-01", "status": status,
            "billing_centre": billing, "reason": "no agreement" if status == "unsettled" else None,
            "agreements": [{"billing_centre": billing, "partner": c, "version": 1, "rule": "pro-rata"}
                           for c in shares if c != billing] if status == "settled" else [],
            "home_centre": home, "assigned_centres": list(assigned),
            "shares": [{"centre": c, "fractions": f, "amount": a} for c, (f, a) in shares.items()]}


THIRD = "THIRD"
SPLITS = [
    split_row("home-only", "home-only", HOME, {HOME: (5, None)}),
    split_row("pair", "settled", HOME, {HOME: (3, Decimal("600.00")), PARTNER: (2, Decimal("400.00"))}),
    split_row("three", "settled", HOME, {HOME: (1, Decimal("400.00")), PARTNER: (1, Decimal("300.00")),
                                         THIRD: (1, Decimal("300.00"))}, assigned=(PARTNER, THIRD)),
    split_row("open", "unsettled", None, {HOME: (1, None), THIRD: (4, None)}, assigned=(THIRD,)),
]


def test_a_home_only_course_is_on_no_statement_and_an_unsettled_one_is_apart():
    result = billing.statement_of(SPLITS)
    assert {line["course_id"] for line in result["lines"]} == {"pair", "three"}
    assert [(u["course_id"], u["fractions"]) for u in result["unsettled"]] == [("open", {HOME: 1, THIRD: 4})]
    assert result["totals"]["amount"] == Decimal("2000.00")


def test_a_pairs_statement_shows_the_courses_one_bills_and_the_other_shares_and_only_their_lines():
    result = billing.statement_of(SPLITS, pair=(HOME, THIRD))
    assert [(line["course_id"], line["centre"]) for line in result["lines"]] == [("three", HOME), ("three", THIRD)]
    assert [u["course_id"] for u in result["unsettled"]] == ["open"]
    assert result["balances"] == [{"debtor": HOME, "creditor": THIRD, "amount": Decimal("300.00")}]
    assert billing.statement_of(SPLITS, pair=(PARTNER, THIRD))["lines"] == []  # neither bills "three"


def test_a_centres_finance_sees_only_the_courses_it_is_a_party_to():
    assert {line["course_id"] for line in billing.statement_of(SPLITS, seen_by=PARTNER)["lines"]} == {"pair", "three"}
    seen = billing.statement_of(SPLITS, seen_by=THIRD)
    assert ({line["course_id"] for line in seen["lines"]}, [u["course_id"] for u in seen["unsettled"]]) == ({"three"}, ["open"])
    assert billing.statement_of(SPLITS, seen_by="ELSEWHERE") == billing.statement_of([])


# ---- a course's counts: the aggregate's and the read model's -------------------------------------


def test_the_counts_of_a_course_count_fractions_once_and_sessions_by_their_state():
    from ledger.counts import tally

    course = new_course(fractions=5)
    deliver(course, 1)
    course.verify(None, 1, "rtt.bert", meta("rtt.bert"))
    deliver(course, 2, beams=[{"number": 1, "delivered_mu": "50", "termination": "MACHINE"},
                              {"number": 2, "delivered_mu": "0", "termination": "MACHINE"}])
    deliver(course, 2, PARTNER, delivery_type="CONTINUATION",
            beams=[{"number": 1, "delivered_mu": "50"}, {"number": 2, "delivered_mu": "20"}])
    deliver(course, 3, ELSEWHERE)  # accepted with a warning: the course is not assigned there
    deliver(course, 4)
    course.void(None, 4, "wrong plan", "dr.home", meta())
    counts = tally(course.records)
    assert (counts.delivered, counts.awaiting_verification, counts.with_warnings) == (3, 3, 1)
    assert (counts.last.number, counts.last.centre) == (3, ELSEWHERE)
    assert course.fractions_delivered() == counts.delivered


def test_the_last_session_is_the_latest_moment_whatever_offset_each_was_written_with():
    from types import SimpleNamespace

    from ledger.counts import tally

    def at(text, centre):
        return SimpleNamespace(group=1, number=len(centre), voided=False, verified_by=None, warnings=[],
                               delivered_at=datetime.fromisoformat(text), centre=centre)

    # As text, "09:00+01:00" sorts after "08:30+00:00"; as moments it is half an hour earlier.
    assert tally([at("2026-11-02T09:00:00+01:00", "A"), at("2026-11-02T08:30:00+00:00", "BB")]).last.centre == "BB"


# ---- what an OIS record or summary becomes: counted, attributed, imported once --------------------


def test_a_summary_line_counts_only_when_it_ended_normal():
    from ledger.summaries import counts_from_summary

    assert counts_from_summary("NORMAL")
    assert not any(counts_from_summary(t) for t in ("OPERATOR", "MACHINE", "PATIENT", "UNKNOWN"))


def test_a_summarys_fraction_is_the_home_centres_on_the_prescription_and_imported_once():
    from ledger.service import parse
    from ledger.summaries import SUMMARY_OPERATOR, is_summary_only
    from schemas.course import LogFraction

    course = new_course(fractions=5)
    line = course.summary_fraction(1, 2, DAY1, "1.2.3/1/2")
    assert (line["centre"], line["plan_uid"], line["operator"], line["source"]) == (
        HOME, course.plan.uid, SUMMARY_OPERATOR, "summary")
    record = course.deliver(parse(LogFraction, line), meta())
    assert is_summary_only(record) and course.has_imported("1.2.3/1/2")
    course.void(None, 2, "replaced", "dr.home", meta())
    assert course.has_imported("1.2.3/1/2"), "a voided record was imported all the same: not again"
    assert not course.has_imported("1.2.3/1/3")


@pytest.mark.parametrize("operators, verified, people", [
    (["RTT^ANNA", "RTT^BERT"], True, ("RTT^ANNA", "RTT^BERT")),
    (["RTT^ANNA", "RTT^BERT"], False, ("RTT^ANNA", None)),  # named, but the record says it is not verified
    (["RTT^ANNA"], True, ("RTT^ANNA", None)),  # nobody to have double-checked it
    ([], False, ("unknown (OIS record)", None)),
])
def test_who_delivered_and_who_verified_an_ois_record(operators, verified, people):
    from ledger.origin import people_of_record

    assert people_of_record(operators, verified) == people


# ---- finding the course a write is for: from the event store, not the read model -----------------


@pytest.fixture
def in_memory():
    from ledger.service import Actor, FractionLedger
    from tests.test_course_unit import REGISTERED, REPLAN_UID, Clock, plan_of

    app = FractionLedger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=Clock(REGISTERED))
    home = Actor("physicist", HOME)
    cid = app.register_course({"patient": {"id": "P-1", "name": "PEETERS^AN", "birth_date": "1958-04-01"},
                               "home_centre": HOME, "plan": plan_of(), "assigned_centres": [PARTNER]}, home)["id"]
    other = app.register_course({"patient": {"id": "P-1", "name": "PEETERS^AN", "birth_date": "1958-04-01"},
                                 "home_centre": HOME, "plan": plan_of("1.2.826.0.1.3680043.10.3"),
                                 "assigned_centres": []}, home)["id"]
    app.add_fallback_plan(cid, plan_of(REPLAN_UID, fractions=3, centre=PARTNER), Actor("phys.p", PARTNER))
    try:
        yield app, cid, other, REPLAN_UID
    finally:
        app.close()


def test_a_record_finds_its_course_by_the_plan_it_references(in_memory):
    from ledger.service import Actor
    from tests.test_course_unit import PLAN_UID

    app, cid, _, replan = in_memory
    assert app.trust.course_of_record("P-1", PLAN_UID).course_id == cid
    # A partner's record of its re-plan carries the partner's patient id: known once mapped.
    before = app.trust.course_of_record("PRT-9", replan)
    assert (before.course_id, before.problem, before.courses) == (None, "patient_not_known_as", (cid,))
    app.map_patient_id(cid, PARTNER, "PRT-9", "PEETERS^AN", "1958-04-01", Actor("physicist", HOME))
    assert app.trust.course_of_record("PRT-9", replan).course_id == cid  # the index caught up with the log
    assert app.trust.course_of_record("P-1", "1.2.999").problem == "plan_unknown"
    assert app.trust.course_of_record("P-404", "1.2.999").problem == "patient_unknown"
    # A course the importing user may not see is as if it did not exist.
    assert app.trust.course_of_record("P-1", PLAN_UID, sees=lambda _: False).problem == "patient_unknown"


def test_a_triage_line_finds_its_course_by_plan_uid_or_a_label_that_names_one(in_memory):
    app, cid, other, replan = in_memory
    assert app.trust.course_of_patient_plan("P-1", replan).course_id == cid
    assert app.trust.course_of_patient_plan("P-1", "1.2.826.0.1.3680043.10.3").course_id == other
    ambiguous = app.trust.course_of_patient_plan("P-1", "Breast 40Gy/15")  # both courses' label
    assert (ambiguous.problem, set(ambiguous.courses)) == ("plan_ambiguous", {cid, other})
    assert app.trust.course_of_patient_plan("P-1", "Lung").problem == "plan_unknown"
    assert app.trust.course_of_patient_plan("P-2", "Lung").problem == "patient_unknown"
    assert app.trust.course_of_patient_plan("P-1", replan, sees=lambda c: c != cid).problem == "plan_unknown"


def test_a_voided_fraction_is_credited_only_when_its_charge_may_have_left():
    assert billable.charge_and_credit(voided=False, charge_may_be_held=False) == (True, False)
    assert billable.charge_and_credit(voided=False, charge_may_be_held=True) == (True, False)
    assert billable.charge_and_credit(voided=True, charge_may_be_held=True) == (True, True)
    assert billable.charge_and_credit(voided=True, charge_may_be_held=False) == (False, False)


def test_since_a_date_means_from_that_days_midnight_in_the_department_not_in_utc(monkeypatch):
    from tools.cli_common import parse_since

    monkeypatch.setenv("FRACTION_LEDGER_TZ", "Europe/Brussels")
    assert parse_since("2026-12-01") == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    assert parse_since("2027-07-01") == datetime(2027, 6, 30, 22, 0, tzinfo=UTC)  # summer time
    assert parse_since("2027-07-01T00:00+02:00") == datetime(2027, 6, 30, 22, 0, tzinfo=UTC)


def test_a_time_the_server_recorded_reads_on_the_departments_clock_and_a_delivery_as_it_was_told(monkeypatch):
    from adapters.i18n import Words

    monkeypatch.setenv("FRACTION_LEDGER_TZ", "Europe/Brussels")
    fr = Words("fr")
    assert fr.when("2026-11-30T23:30:00+00:00") == "1/12/2026 00:30"  # not "30/11/2026 23:30"
    assert fr.when("2027-06-30T22:30:00+00:00") == "1/07/2027 00:30"  # summer time
    assert fr.when("2026-11-23T09:10:00+01:00") == "23/11/2026 09:10"


def test_a_centre_sees_its_own_and_assigned_courses_and_its_finance_those_it_bills_or_shares():
    from ledger.access import centre_sees

    assert centre_sees(HOME, HOME) and centre_sees(PARTNER, HOME, [PARTNER])
    assert not centre_sees(ELSEWHERE, HOME, [PARTNER])
    assert not centre_sees(ELSEWHERE, HOME, [PARTNER], billing_parties=None)  # not finance: its splits do not count
    assert centre_sees(ELSEWHERE, HOME, [PARTNER], billing_parties={HOME, ELSEWHERE})
    assert not centre_sees(ELSEWHERE, HOME, [PARTNER], billing_parties={HOME, PARTNER})
