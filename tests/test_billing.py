"""Who bills a course delivered by two centres, and how the money is split: agreements per
centre pair, a split recorded when the course completes (superseded, never edited, by a later
correction), and statements netted per pair, exact to the cent."""

from __future__ import annotations

import csv
import io
import json
import zlib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tests.conftest import CLOCK_MONTH, CLOCK_START, cli
from ledger import errors
from ledger.messages import english
from ledger.service import Actor

HOME, PARTNER, THIRD = "AZ-HOME", "PARTNER-RT", "THIRD-RT"
START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))
NOVEMBER = CLOCK_MONTH  # the month in which the tests' clock completes the courses
FINANCE = Actor("finance.home", HOME)


def register(ledger, patient: str, fractions: int, home: str = HOME) -> str:
    return ledger.app.register_course(
        {
            "patient": {"id": patient, "name": "JANSSENS^MARC"},
            "home_centre": home,
            "plan": {"uid": f"1.2.826.0.1.3680043.10.8.{zlib.crc32(patient.encode())}", "label": "Prostate",
                     "fraction_groups": [{"number": 1, "fractions_planned": fractions,
                                          "beams": [{"number": 1, "meterset": "250"}]}]},
        },
        Actor("physicist", home),
    )["id"]


def deliver(ledger, course_id: str, centres: list[str], first_day: int = 0) -> None:
    """Fraction k (from 1) delivered at centres[k-1], one a day."""
    for k, centre in enumerate(centres, start=1):
        ledger.app.log_fraction(
            course_id,
            {"number": k, "centre": centre, "machine": f"{centre}-LINAC", "operator": f"rtt.{centre.lower()}",
             "delivered_at": START + timedelta(days=first_day + k - 1)},
            Actor(f"rtt.{centre.lower()}", centre),
        )


def agree(ledger, billing: str, partner: str, rule: str = "pro-rata", valid_from: str = "2026-01-01", **terms) -> dict:
    return ledger.app.billing.agree(
        {"billing_centre": billing, "partner": partner, "rule": rule, "valid_from": valid_from, **terms}, FINANCE
    )


def complete(ledger, course_id: str, **kw) -> dict:
    return ledger.app.complete_course(course_id, "course done", Actor("dr.home", HOME), **kw)


def shares(split: dict) -> dict[str, tuple[int, Decimal | None]]:
    return {s["centre"]: (s["fractions"], s["amount"]) for s in split["shares"]}


def statement(ledger, pair=None) -> dict:
    return ledger.fresh().statement(*NOVEMBER, pair)


# ---- the rules ---------------------------------------------------------------------------------


def test_pro_rata_the_home_centre_bills_and_owes_the_partner_its_share_of_fractions(ledger):
    agree(ledger, HOME, PARTNER, course_amount="4321.09")
    course = register(ledger, "P-1", 25)
    deliver(ledger, course, [HOME] * 17 + [PARTNER] * 8)
    complete(ledger, course)

    [split] = ledger.app.billing.splits_of(course)
    assert (split["status"], split["billing_centre"], split["course_amount"]) == ("settled", HOME, Decimal("4321.09"))
    # 4321.09 * 8/25 = 1382.7488 -> 1382.75; the remainder stays with the billing centre.
    assert shares(split) == {HOME: (17, Decimal("2938.34")), PARTNER: (8, Decimal("1382.75"))}
    assert split["agreements"] == [{"billing_centre": HOME, "partner": PARTNER, "version": 1, "rule": "pro-rata"}]

    result = statement(ledger)
    assert [(line["centre"], line["fractions"], line["amount"]) for line in result["lines"]] == [
        (HOME, 17, Decimal("2938.34")), (PARTNER, 8, Decimal("1382.75"))]
    assert all(line["course_id"] == course and line["billing_centre"] == HOME for line in result["lines"])
    assert result["balances"] == [{"debtor": HOME, "creditor": PARTNER, "amount": Decimal("1382.75")}]
    assert (result["totals"]["courses"], result["totals"]["fractions"], result["totals"]["amount"]) == (1, 25, Decimal("4321.09"))


def test_shares_round_half_up_to_the_cent_and_the_remainder_goes_to_the_billing_centre(ledger):
    agree(ledger, HOME, PARTNER, course_amount="1000.00")
    agree(ledger, HOME, THIRD, course_amount="1000.00")
    three = register(ledger, "P-3", 3)
    deliver(ledger, three, [HOME, PARTNER, THIRD])
    complete(ledger, three)
    assert shares(ledger.app.billing.splits_of(three)[-1]) == {
        HOME: (1, Decimal("333.34")), PARTNER: (1, Decimal("333.33")), THIRD: (1, Decimal("333.33"))}

    agree(ledger, HOME, PARTNER, course_amount="100.01", valid_from="2026-11-20")
    half = register(ledger, "P-4", 2)
    deliver(ledger, half, [HOME, PARTNER], first_day=20)
    complete(ledger, half)
    # 50.005 rounds half up to 50.01 (banker's rounding would give 50.00).
    assert shares(ledger.app.billing.splits_of(half)[-1]) == {HOME: (1, Decimal("50.00")), PARTNER: (1, Decimal("50.01"))}


def test_per_fraction_the_partner_gets_a_fixed_fee_per_fraction_it_delivered(ledger):
    agree(ledger, HOME, PARTNER, rule="per-fraction", course_amount="3800", fee_per_fraction="95.5")
    course = register(ledger, "P-5", 20)
    deliver(ledger, course, [HOME] * 14 + [PARTNER] * 6)
    complete(ledger, course)
    split = ledger.app.billing.splits_of(course)[-1]
    assert split["course_amount"] == Decimal("3800.00")
    assert shares(split) == {HOME: (14, Decimal("3227.00")), PARTNER: (6, Decimal("573.00"))}


def test_the_version_in_force_on_the_first_fraction_applies(ledger):
    agree(ledger, HOME, PARTNER, course_amount="1000.00")
    amended = agree(ledger, HOME, PARTNER, rule="per-fraction", course_amount="1000.00", fee_per_fraction="100.00",
                    valid_from="2026-11-10")
    assert amended["terms"]["version"] == 2
    again = agree(ledger, HOME, PARTNER, rule="per-fraction", course_amount="1000.00", fee_per_fraction="100",
                  valid_from="2026-11-10")
    assert again["changed"] is False and again["terms"]["version"] == 2

    before = register(ledger, "P-6", 10)
    deliver(ledger, before, [HOME] * 6 + [PARTNER] * 4)  # 2 .. 11 November: started under version 1
    after = register(ledger, "P-7", 4)
    deliver(ledger, after, [HOME, HOME, PARTNER, PARTNER], first_day=10)  # from 12 November
    complete(ledger, before)
    complete(ledger, after)

    first, second = ledger.app.billing.splits_of(before)[-1], ledger.app.billing.splits_of(after)[-1]
    assert first["agreements"][0]["version"] == 1 and shares(first)[PARTNER] == (4, Decimal("400.00"))
    assert second["agreements"][0]["version"] == 2 and shares(second)[PARTNER] == (2, Decimal("200.00"))
    assert [a["version"] for a in ledger.fresh().agreements()] == [1, 2]


def test_the_treatment_category_picks_the_tariff_and_the_course_amount_is_the_default(ledger):
    agree(ledger, HOME, PARTNER, course_amount="2000.00", tariffs={"complex": "4200.00"})
    amounts = {}
    for patient, category in [("P-8", "complex"), ("P-9", "palliative"), ("P-10", None)]:
        course = register(ledger, patient, 2)
        if category:
            assert ledger.app.billing.set_course_category(course, category, FINANCE)["changed"]
        deliver(ledger, course, [HOME, PARTNER])
        complete(ledger, course)
        amounts[category] = ledger.app.billing.splits_of(course)[-1]["course_amount"]
    assert amounts == {"complex": Decimal("4200.00"), "palliative": Decimal("2000.00"), None: Decimal("2000.00")}


def test_the_partner_bills_when_only_it_has_an_agreement_with_the_home_centre(ledger):
    agree(ledger, PARTNER, HOME, course_amount="3000.00")
    course = register(ledger, "P-11", 5)
    deliver(ledger, course, [HOME, HOME, PARTNER, PARTNER, PARTNER])
    complete(ledger, course)
    split = ledger.app.billing.splits_of(course)[-1]
    assert split["billing_centre"] == PARTNER
    assert shares(split) == {PARTNER: (3, Decimal("1800.00")), HOME: (2, Decimal("1200.00"))}
    assert statement(ledger)["balances"] == [{"debtor": PARTNER, "creditor": HOME, "amount": Decimal("1200.00")}]


# ---- splits are events -----------------------------------------------------------------------


def test_a_void_after_completion_records_a_superseding_split_that_counts_once(ledger):
    agree(ledger, HOME, PARTNER, course_amount="1000.00")
    course = register(ledger, "P-12", 4)
    deliver(ledger, course, [HOME, HOME, PARTNER, PARTNER])
    complete(ledger, course)
    ledger.app.void_fraction(course, 4, "registered twice after the restore", "physicist.home", Actor("physicist.home", HOME))
    ledger.app.verify_fraction(course, 1, "rtt.b", Actor("rtt.b", HOME))  # no change to the split: nothing recorded

    history = ledger.fresh().splits(course)
    assert [(s["sequence"], s["current"], s["cause"]) for s in history] == [
        (1, False, "complete_course"), (2, True, "void_fraction")]
    assert [(x["centre"], x["fractions"], x["amount"]) for x in history[0]["shares"]] == [
        (HOME, 2, "500.00"), (PARTNER, 2, "500.00")]
    assert [(x["centre"], x["fractions"], x["amount"]) for x in history[1]["shares"]] == [
        (HOME, 2, "666.67"), (PARTNER, 1, "333.33")]

    result = statement(ledger)
    assert [(line["centre"], line["amount"]) for line in result["lines"]] == [
        (HOME, Decimal("666.67")), (PARTNER, Decimal("333.33"))]
    assert result["totals"]["amount"] == Decimal("1000.00")
    assert result["balances"] == [{"debtor": HOME, "creditor": PARTNER, "amount": Decimal("333.33")}]


def test_a_category_set_after_completion_supersedes_the_split(ledger):
    agree(ledger, HOME, PARTNER, course_amount="2000.00", tariffs={"complex": "4200.00"})
    course = register(ledger, "P-13", 2)
    deliver(ledger, course, [HOME, PARTNER])
    complete(ledger, course)
    ledger.app.billing.set_course_category(course, "complex", FINANCE)
    assert [s["course_amount"] for s in ledger.app.billing.splits_of(course)] == [Decimal("2000.00"), Decimal("4200.00")]
    assert statement(ledger)["totals"]["amount"] == Decimal("4200.00")


def test_without_an_agreement_the_split_is_unsettled_until_finance_records_one(ledger):
    course = register(ledger, "P-14", 3)
    deliver(ledger, course, [HOME, PARTNER, PARTNER])
    complete(ledger, course)
    [split] = ledger.app.billing.splits_of(course)
    assert split["status"] == "unsettled" and split["billing_centre"] is None
    assert f"{HOME} has no agreement with {PARTNER} in force on 2026-11-02" in english(split["reason"])
    from adapters.i18n import words
    assert f"{HOME} n'a pas d'accord avec {PARTNER} en vigueur le 2 nov. 2026" in words("fr").say(split["reason"]), \
        "a French finance officer reads why in French, the day in French"
    result = statement(ledger)
    assert english(result["unsettled"][0]["reason"]) == english(split["reason"])
    assert result["lines"] == [] and [u["course_id"] for u in result["unsettled"]] == [course]
    assert [u["course_id"] for u in statement(ledger, (PARTNER, HOME))["unsettled"]] == [course]
    assert statement(ledger, (PARTNER, THIRD))["unsettled"] == []

    agree(ledger, HOME, PARTNER, course_amount="900.00")
    settled = ledger.app.billing.settle_course(course, FINANCE)
    assert settled.changed and settled.split.status == "settled"
    assert ledger.app.billing.settle_course(course, FINANCE)["changed"] is False
    assert [s["status"] for s in ledger.app.billing.splits_of(course)] == ["unsettled", "settled"]
    assert statement(ledger)["totals"]["amount"] == Decimal("900.00")

    active = register(ledger, "P-15", 3)
    with pytest.raises(errors.LifecycleConflict):
        ledger.app.billing.settle_course(active, FINANCE)


def test_a_retried_completion_records_one_split_and_a_home_only_course_owes_nobody(ledger):
    agree(ledger, HOME, PARTNER, course_amount="1000.00")
    shared = register(ledger, "P-16", 2)
    deliver(ledger, shared, [HOME, PARTNER])
    complete(ledger, shared, request_id="complete-P-16")
    complete(ledger, shared, request_id="complete-P-16")
    assert len(ledger.app.billing.splits_of(shared)) == 1

    at_home = register(ledger, "P-17", 2)
    deliver(ledger, at_home, [HOME, HOME])
    complete(ledger, at_home)
    assert ledger.app.billing.splits_of(at_home)[-1]["status"] == "home-only"
    assert {line["course_id"] for line in statement(ledger)["lines"]} == {shared}


def test_balances_are_netted_per_pair_and_a_pair_statement_shows_only_that_pair(ledger):
    agree(ledger, HOME, PARTNER, course_amount="1000.00")
    agree(ledger, PARTNER, HOME, course_amount="1000.00")
    agree(ledger, HOME, THIRD, rule="per-fraction", course_amount="1000.00", fee_per_fraction="80.00")
    ours = register(ledger, "P-18", 5)
    deliver(ledger, ours, [HOME, PARTNER, PARTNER, PARTNER, HOME])  # HOME owes PARTNER 600.00
    theirs = register(ledger, "P-19", 5, home=PARTNER)
    deliver(ledger, theirs, [PARTNER, PARTNER, PARTNER, HOME, PARTNER])  # PARTNER owes HOME 200.00
    third = register(ledger, "P-20", 3)
    deliver(ledger, third, [THIRD, THIRD, HOME])  # HOME owes THIRD 160.00
    for course in (ours, theirs, third):
        complete(ledger, course)

    everything = statement(ledger)
    assert everything["balances"] == [
        {"debtor": HOME, "creditor": PARTNER, "amount": Decimal("400.00")},
        {"debtor": HOME, "creditor": THIRD, "amount": Decimal("160.00")},
    ]
    nets = {c["centre"]: c["net"] for c in everything["totals"]["centres"]}
    assert nets == {HOME: Decimal("-560.00"), PARTNER: Decimal("400.00"), THIRD: Decimal("160.00")}
    assert everything["totals"]["amount"] == Decimal("3000.00")

    pair = statement(ledger, (PARTNER, HOME))
    assert {line["course_id"] for line in pair["lines"]} == {ours, theirs}
    assert pair["balances"] == [{"debtor": HOME, "creditor": PARTNER, "amount": Decimal("400.00")}]
    assert statement(ledger, (THIRD, PARTNER))["lines"] == []


def test_a_bad_agreement_names_the_field_and_writes_nothing(ledger):
    ok = {"billing_centre": HOME, "partner": PARTNER, "rule": "pro-rata", "course_amount": "1000.00",
          "valid_from": "2026-01-01"}
    for bad, field in [
        ({"course_amount": "1000.005"}, "course_amount"),
        ({"course_amount": "-5"}, "course_amount"),
        ({"course_amount": "a lot"}, "course_amount"),
        ({"course_amount": None}, "course_amount"),
        ({"rule": "per-fraction"}, "fee_per_fraction"),
        ({"fee_per_fraction": "10.00"}, "fee_per_fraction"),
        ({"rule": "by-weight"}, "rule"),
        ({"partner": HOME}, "partner"),
        ({"valid_from": "2026-13-01"}, "valid_from"),
        ({"valid_to": "2025-12-31"}, "valid_to"),
        ({"tariffs": {"complex": "12.3456"}}, "tariff complex"),
    ]:
        with pytest.raises(errors.InvalidCommand) as refused:
            ledger.app.billing.agree(ok | bad, FINANCE)
        assert refused.value.field == field, bad
    with pytest.raises(errors.InvalidCommand) as refused:
        ledger.app.billing.set_course_category(register(ledger, "P-21", 2), "", FINANCE)
    assert refused.value.field == "category"
    assert ledger.fresh().agreements() == []


def test_rebuilding_the_read_model_gives_the_same_agreements_and_splits(ledger):
    agree(ledger, HOME, PARTNER, course_amount="1000.00")
    course = register(ledger, "P-22", 3)
    deliver(ledger, course, [HOME, PARTNER, PARTNER])
    complete(ledger, course)
    ledger.app.void_fraction(course, 3, "wrong patient", "physicist", Actor("physicist", HOME))
    before = ledger.fresh().dump()
    ledger.read.rebuild(ledger.app)
    assert ledger.read.dump() == before
    assert (len(before["agreements"]), len(before["splits"]), len(before["split_shares"])) == (1, 2, 4)


# ---- the command line ------------------------------------------------------------------------


def test_cli_agrees_and_prints_the_statement_as_json_and_csv(tmp_path):
    db = tmp_path / "ledger.sqlite3"

    def run(*args):
        return cli(*args, db=db, check=True).stdout

    agreed = json.loads(run("billing", "agree", "--billing-centre", HOME, "--partner", PARTNER, "--rule", "pro-rata",
                            "--course-amount", "2500", "--tariff", "complex=4200.00", "--valid-from", "2026-01-01", "--json"))
    assert agreed["terms"]["course_amount"] == "2500.00" and agreed["terms"]["tariffs"] == {"complex": "4200.00"}
    bad = cli("billing", "agree", "--billing-centre", HOME, "--partner", PARTNER, "--rule", "per-fraction",
              "--course-amount", "2500", "--fee-per-fraction", "12.345", "--valid-from", "2026-01-01", db=db)
    assert bad.returncode == 1 and "fee_per_fraction: must be whole cents" in bad.stderr
    course = json.loads(run("course", "register", "--patient-id", "P-30", "--patient-name", "MAES^LIES",
                            "--plan-uid", "1.2.3.30", "--plan-label", "Lung", "--fractions", "3",
                            "--home-centre", HOME, "--beam", "1=180", "--json"))["id"]
    run("course", "category", course, "--category", "complex")
    for number, centre in [(1, HOME), (2, PARTNER), (3, PARTNER)]:
        run("fraction", "log", course, "--number", str(number), "--centre", centre, "--machine", "LINAC",
            "--operator", "rtt", "--at", f"2026-11-0{number + 1}T10:00+01:00")
    run("course", "complete", course)
    today = CLOCK_START.date().isoformat()  # the CLI records the completion on the ledger's (injected) clock

    result = json.loads(run("billing", "statement", "--from", today, "--to", today, "--pair", f"{HOME}:{PARTNER}", "--json"))
    assert [(x["course_id"], x["billing_centre"], x["centre"], x["fractions"], x["amount"]) for x in result["lines"]] == [
        (course, HOME, HOME, 1, "1400.00"), (course, HOME, PARTNER, 2, "2800.00")]
    assert result["balances"] == [{"debtor": HOME, "creditor": PARTNER, "amount": "2800.00"}]
    assert (result["totals"]["fractions"], result["totals"]["amount"]) == (3, "4200.00")

    rows = list(csv.DictReader(io.StringIO(run("billing", "statement", "--from", today, "--to", today, "--csv"))))
    assert [(r["record"], r["centre"], r["amount"], r["debtor"], r["creditor"]) for r in rows] == [
        ("line", HOME, "1400.00", "", ""), ("line", PARTNER, "2800.00", "", ""),
        ("balance", "", "2800.00", HOME, PARTNER), ("total", "", "4200.00", "", "")]

    wrong = cli("billing", "statement", "--from", "2026-11-31", "--to", today, db=db)
    assert wrong.returncode == 2 and "--from" in wrong.stderr
    assert json.loads(run("billing", "splits", course, "--json"))[0]["current"] is True


# ---- properties ------------------------------------------------------------------------------

from itertools import count  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ledger.billing import balances, compute_split  # noqa: E402
from schemas.billing import AgreementTerms  # noqa: E402

NETWORK = [HOME, PARTNER, THIRD, "FOURTH-RT"]
CENTS = st.integers(min_value=0, max_value=2_000_000).map(lambda c: Decimal(c).scaleb(-2))
FEES = st.integers(min_value=0, max_value=50_000).map(lambda c: Decimal(c).scaleb(-2))


@st.composite
def network_course(draw) -> tuple[list[str], dict]:
    """Random deliveries across the network and random agreements between (some of) its centres.
    A billing centre mostly names one course amount in all its agreements, sometimes not."""
    deliveries = draw(st.lists(st.sampled_from(NETWORK), min_size=1, max_size=40))
    amount_of = {c: draw(CENTS) for c in NETWORK}
    table = {}
    for billing in NETWORK:
        for partner in NETWORK:
            if billing == partner or not draw(st.booleans()):
                continue
            rule = draw(st.sampled_from(["pro-rata", "per-fraction"]))
            amount = amount_of[billing] if draw(st.integers(0, 9)) else draw(CENTS)
            table[(billing, partner)] = AgreementTerms(
                billing_centre=billing, partner=partner, rule=rule, valid_from=date(2026, 1, 1),
                course_amount=amount, fee_per_fraction=draw(FEES) if rule == "per-fraction" else None, version=1,
            )
    return deliveries, table


def split_for(deliveries: list[str], table: dict, home: str = HOME):
    return compute_split(
        course_id="c", home_centre=home, category=None, completed_on=date(2026, 11, 23),
        deliveries=[(c, date(2026, 11, 2) + timedelta(days=k)) for k, c in enumerate(deliveries)],
        find_terms=lambda billing, partner, on: table.get((billing, partner)),
    )


@settings(max_examples=300, deadline=None)
@given(network_course())
def test_property_shares_sum_to_the_course_amount_to_the_cent(case):
    deliveries, table = case
    split = split_for(deliveries, table)
    assert sum(s.fractions for s in split.shares) == len(deliveries)
    if split.status != "settled":
        assert all(s.amount is None for s in split.shares)
        return
    assert sum(s.amount for s in split.shares) == split.course_amount
    assert all(s.amount.as_tuple().exponent == -2 for s in split.shares)
    for share in split.shares:
        if share.centre == split.billing_centre:
            continue
        terms = table[(split.billing_centre, share.centre)]
        if terms.rule == "per-fraction":
            assert share.amount == terms.fee_per_fraction * share.fractions
        else:
            exact = split.course_amount * share.fractions / len(deliveries)
            assert abs(share.amount - exact) <= Decimal("0.005")


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(network_course(), st.sampled_from(NETWORK)), min_size=1, max_size=8))
def test_property_balances_net_to_zero_across_the_network(courses):
    lines, owed_directly = [], {}
    for (deliveries, table), home in courses:
        split = split_for(deliveries, table, home)
        if split.status != "settled":
            continue
        for s in split.shares:
            lines.append({"billing_centre": split.billing_centre, "centre": s.centre, "amount": s.amount})
            if s.centre != split.billing_centre:
                key = (split.billing_centre, s.centre)
                owed_directly[key] = owed_directly.get(key, Decimal(0)) + s.amount
    net = {c: Decimal(0) for c in NETWORK}
    pairs = set()
    for b in balances(lines):
        assert b["amount"] > 0 and b["debtor"] != b["creditor"]
        pair = frozenset((b["debtor"], b["creditor"]))
        assert pair not in pairs, "one balance per centre pair"
        pairs.add(pair)
        net[b["debtor"]] -= b["amount"]
        net[b["creditor"]] += b["amount"]
        forward = owed_directly.get((b["debtor"], b["creditor"]), Decimal(0))
        backward = owed_directly.get((b["creditor"], b["debtor"]), Decimal(0))
        assert b["amount"] == forward - backward
    assert sum(net.values()) == 0


PATIENTS = count(1)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    deliveries=st.lists(st.sampled_from([HOME, PARTNER, THIRD]), min_size=1, max_size=6),
    rules=st.tuples(st.sampled_from(["pro-rata", "per-fraction"]), st.sampled_from(["pro-rata", "per-fraction"])),
    amount=CENTS,
    fee=FEES,
    voids=st.lists(st.integers(1, 6), max_size=4, unique=True),
)
def test_property_a_superseded_split_never_counts_twice(ledger, deliveries, rules, amount, fee, voids):
    """One ledger across examples (each a new patient): every completed course is counted
    once, by its split in force, however many corrections superseded earlier splits."""
    for partner, rule in zip((PARTNER, THIRD), rules):
        agree(ledger, HOME, partner, rule=rule, course_amount=str(amount),
              fee_per_fraction=str(fee) if rule == "per-fraction" else None)
    course = register(ledger, f"PROP-{next(PATIENTS)}", len(deliveries))
    deliver(ledger, course, deliveries)
    complete(ledger, course)
    for number in voids:
        if number <= len(deliveries):
            ledger.app.void_fraction(course, number, "correction", "physicist", Actor("physicist", HOME))

    history = ledger.fresh().splits(course)
    assert [s["current"] for s in history] == [False] * (len(history) - 1) + [True]
    in_force = ledger.app.billing.splits_of(course)[-1]
    result = statement(ledger)
    mine = [line for line in result["lines"] if line["course_id"] == course]
    if in_force["status"] == "settled":
        assert sum(line["amount"] for line in mine) == amount == in_force["course_amount"]
        assert {(line["centre"], line["amount"]) for line in mine} == {(s["centre"], s["amount"]) for s in in_force["shares"]}
    else:
        assert mine == []
    settled = [ledger.app.billing.splits_of(c["id"])[-1] for c in ledger.fresh().courses(status="completed")]
    assert result["totals"]["amount"] == sum(s["course_amount"] for s in settled if s["status"] == "settled")
    assert sum(c["net"] for c in result["totals"]["centres"]) == 0


# ---- the day a course completed: in the home centre's zone (issue 14) ---------------------------


@pytest.mark.parametrize("completed_utc, month, previous", [
    # 00:30 in Brussels on 1 December (winter time): December's statement, not November's.
    (datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc), (date(2026, 12, 1), date(2026, 12, 31)),
     (date(2026, 11, 1), date(2026, 11, 30))),
    # 00:30 in Brussels on 1 July (summer time, +02:00): July's, not June's.
    (datetime(2027, 6, 30, 22, 30, tzinfo=timezone.utc), (date(2027, 7, 1), date(2027, 7, 31)),
     (date(2027, 6, 1), date(2027, 6, 30))),
])
def test_a_course_completed_just_after_midnight_in_brussels_is_on_that_months_statement(
        ledger, completed_utc, month, previous):
    ledger.clock.now = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)  # the tests' clock, moved
    agree(ledger, HOME, PARTNER, course_amount="1000.00")
    course = register(ledger, "P-MIDNIGHT", 2)
    deliver(ledger, course, [HOME, PARTNER])
    ledger.clock.now = completed_utc - timedelta(seconds=1)  # the clock ticks once per command
    complete(ledger, course)
    [split] = ledger.app.billing.splits_of(course)
    assert split["completed_on"] == month[0]
    read = ledger.fresh()
    assert {line["course_id"] for line in read.statement(*month)["lines"]} == {course}
    assert read.statement(*previous)["lines"] == []


def test_a_centres_recorded_zone_gives_the_day_of_its_courses(ledger):
    ledger.clock.now = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
    ledger.app.trust.set_centre_zone(HOME, "Europe/London", Actor("admin", HOME))
    agree(ledger, HOME, PARTNER, course_amount="1000.00")
    course = register(ledger, "P-LONDON", 2)
    deliver(ledger, course, [HOME, PARTNER])
    ledger.clock.now = datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc)
    complete(ledger, course)
    assert ledger.app.billing.splits_of(course)[-1]["completed_on"] == date(2026, 11, 30)
