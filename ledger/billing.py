"""Who bills a course delivered by several centres, and how the money is split.

An `Agreement` is one stream per ordered centre pair (billing centre, partner): its
versions are amendments, each valid from a date; the version in force on the course's
first fraction applies. A `Settlement` is one stream per course holding its splits: the
last one is in force, every earlier one is superseded and never counts again.

Splits live on their own stream rather than on the course because the course stream is
the clinical record replayed into the OIS (DICOM, HL7): finance corrections must not
touch it, and a split can be recomputed (an agreement recorded late) without a clinical
event. The split is still saved in the same transaction as the completion or correction
that caused it.

Amounts are Decimal: a partner's share is rounded half-up to the cent and the remainder
goes to the billing centre, so the shares always sum to the course amount exactly.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import msgspec
from eventsourcing.domain import Aggregate, event

from ledger import errors
from ledger.billable import billable_fractions
from ledger.course import NAMESPACE
from ledger.local_time import DEFAULT_ZONE, ZoneOf, local_day
from ledger.messages import said
from schemas.billing import PER_FRACTION, PRO_RATA, AgreementTerms, Share, Split
from schemas.course import from_event, to_event

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("10000000")

TermsLookup = Callable[[str, str, date], "AgreementTerms | None"]


def agreement_id_for(billing_centre: str, partner: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"agreement/{billing_centre}/{partner}")


def settlement_id_for(course_id: uuid.UUID | str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"settlement/{course_id}")


def check_money(value: Decimal | None, field: str) -> None:
    if value is None:
        return
    if not value.is_finite() or value < 0 or value > MAX_AMOUNT:
        raise errors.InvalidCommand(field, "invalid.must_be_amount_eur", max_amount=MAX_AMOUNT, value=value)
    if value != value.quantize(CENT):
        raise errors.InvalidCommand(field, "invalid.must_be_whole_cents", value=value)


def check_terms(t: AgreementTerms) -> None:
    """A version that cannot give a split for every course is refused before it is recorded."""
    if t.billing_centre == t.partner:
        raise errors.InvalidCommand("partner", "invalid.partner_must_be_another")
    if t.valid_to is not None and t.valid_to < t.valid_from:
        raise errors.InvalidCommand("valid_to", "invalid.before_valid_from", valid_to=t.valid_to, valid_from=t.valid_from)
    check_money(t.course_amount, "course_amount")
    check_money(t.fee_per_fraction, "fee_per_fraction")
    for category, amount in t.tariffs.items():
        check_money(amount, f"tariff {category}")
    if t.course_amount is None and not t.tariffs:
        raise errors.InvalidCommand("course_amount", "invalid.give_course_amount_or")
    if t.rule == PER_FRACTION and t.fee_per_fraction is None:
        raise errors.InvalidCommand("fee_per_fraction", "invalid.per_fraction_rule_needs")
    if t.rule == PRO_RATA and t.fee_per_fraction is not None:
        raise errors.InvalidCommand("fee_per_fraction", "invalid.only_per_fraction_rule")


def in_cents(t: AgreementTerms) -> AgreementTerms:
    """The same terms with every amount written to the cent (1000 -> 1000.00), after `check_terms`."""
    cents = lambda v: None if v is None else v.quantize(CENT)  # noqa: E731
    return msgspec.structs.replace(
        t, course_amount=cents(t.course_amount), fee_per_fraction=cents(t.fee_per_fraction),
        tariffs={k: cents(v) for k, v in t.tariffs.items()},
    )


class Agreement(Aggregate):
    """What a billing centre agreed with one partner, version by version."""

    @staticmethod
    def create_id(billing_centre: str, partner: str, **_: Any) -> uuid.UUID:
        return agreement_id_for(billing_centre, partner)

    @event("Opened")
    def __init__(self, *, billing_centre: str, partner: str, meta: dict):
        self.billing_centre = billing_centre
        self.partner = partner
        self.versions: list[AgreementTerms] = []

    def amend(self, terms: AgreementTerms, meta: dict) -> tuple[AgreementTerms, bool]:
        """Record a new version; the same terms as the latest version change nothing."""
        check_terms(terms)
        terms = in_cents(terms)
        if self.versions and msgspec.structs.replace(self.versions[-1], version=0) == terms:
            return self.versions[-1], False
        self._agreed(terms=to_event(msgspec.structs.replace(terms, version=len(self.versions) + 1)), meta=meta)
        return self.versions[-1], True

    def in_force(self, on: date) -> AgreementTerms | None:
        """The newest version whose validity covers the date (a later amendment wins)."""
        for t in reversed(self.versions):
            if t.valid_from <= on and (t.valid_to is None or on <= t.valid_to):
                return t
        return None

    @event("VersionAgreed")
    def _agreed(self, terms: dict, meta: dict) -> None:
        self.versions.append(from_event(terms, AgreementTerms))


class Settlement(Aggregate):
    """The splits of one course, newest last; a new split supersedes the one before."""

    @staticmethod
    def create_id(course_id: str, **_: Any) -> uuid.UUID:
        return settlement_id_for(course_id)

    @event("Opened")
    def __init__(self, *, course_id: str, meta: dict):
        self.course_id = course_id
        self.splits: list[Split] = []

    @property
    def current(self) -> Split | None:
        return self.splits[-1] if self.splits else None

    def record(self, split: Split, cause: str, meta: dict) -> bool:
        """Record the split unless it is what is already in force (a recomputation that found nothing new)."""
        if split == self.current:
            return False
        self._recorded(split=to_event(split), supersedes=len(self.splits) or None, cause=cause, meta=meta)
        return True

    @event("SplitRecorded")
    def _recorded(self, split: dict, supersedes: int | None, cause: str, meta: dict) -> None:
        self.splits.append(from_event(split, Split))


# ---- computing a split (pure) -----------------------------------------------------------------


def deliveries_of(course: Any, zone_of: ZoneOf = lambda _: DEFAULT_ZONE) -> list[tuple[str, date]]:
    """(centre, date) per billable fraction: the centre of its first session, on that session's
    day in the delivering centre's zone (a continuation elsewhere does not move it)."""
    return [(r.centre, local_day(r.delivered_at, zone_of(r.centre))) for r in billable_fractions(course.records)]


def completed_on(course: Any, zone_of: ZoneOf = lambda _: DEFAULT_ZONE) -> date:
    """The day a completed course completed, in its home centre's zone: the statement it is on."""
    return local_day(course.status_changed_at, zone_of(course.home_centre))


def split_for(course: Any, find_terms: TermsLookup, zone_of: ZoneOf = lambda _: DEFAULT_ZONE) -> Split:
    """The split of a completed course, its days in its centres' zones."""
    return compute_split(
        course_id=str(course.id),
        home_centre=course.home_centre,
        category=course.category,
        deliveries=deliveries_of(course, zone_of),
        completed_on=completed_on(course, zone_of),
        find_terms=find_terms,
    )


def course_amount(terms: AgreementTerms, category: str | None) -> Decimal | None:
    """The tariff of the course's treatment category, else the agreement's course amount."""
    if category is not None and category in terms.tariffs:
        return terms.tariffs[category]
    return terms.course_amount


def share_of(terms: AgreementTerms, amount: Decimal, fractions: int, total: int) -> Decimal:
    if terms.rule == PER_FRACTION:
        return terms.fee_per_fraction * fractions
    return (amount * fractions / total).quantize(CENT, rounding=ROUND_HALF_UP)


def compute_split(
    *,
    course_id: str,
    home_centre: str,
    category: str | None,
    deliveries: Iterable[tuple[str, date]],
    completed_on: date,
    find_terms: TermsLookup,
) -> Split:
    """The split of a course: the home centre bills when it has an agreement in force with every
    other delivering centre; else the partner with most fractions that has one with all the others
    (the home centre included)."""
    deliveries = list(deliveries)
    counts = Counter(centre for centre, _ in deliveries)
    base = {"course_id": course_id, "home_centre": home_centre, "category": category, "completed_on": completed_on}
    if set(counts) <= {home_centre}:
        shares = [Share(centre=home_centre, fractions=counts[home_centre])] if deliveries else []
        return Split(**base, status="home-only", shares=shares, billing_centre=home_centre,
                     first_fraction_on=min((d for _, d in deliveries), default=None))
    first = min(d for _, d in deliveries)
    total = sum(counts.values())
    partners = sorted((c for c in counts if c != home_centre), key=lambda c: (-counts[c], c))
    unsettled: list[dict[str, Any]] = []
    for billing in [home_centre, *partners]:
        # The home centre is always a party (its patient), even when it delivered nothing.
        others = sorted({*counts, home_centre} - {billing})
        terms = {c: find_terms(billing, c, first) for c in others}
        missing = [c for c, t in terms.items() if t is None]
        if missing:
            unsettled.append(said("split.no_agreement", billing=billing, missing=", ".join(missing), on=first.isoformat()))
            continue
        used = [{"billing_centre": billing, "partner": c, "version": t.version, "rule": t.rule} for c, t in terms.items()]
        amounts = {c: course_amount(t, category) for c, t in terms.items()}
        reason: dict[str, Any] | None = None
        if None in amounts.values():
            lacking = [f"{billing}/{c} v{terms[c].version}" for c, a in amounts.items() if a is None]
            reason = said("split.no_tariff", category=category, agreements=", ".join(lacking))
        elif len(set(amounts.values())) > 1:
            named = ", ".join(f"{billing}/{c} v{terms[c].version}: {a}" for c, a in amounts.items())
            reason = said("split.different_amounts", billing=billing, named=named)
        if reason:
            return Split(**base, status="unsettled", reason=reason, billing_centre=billing, first_fraction_on=first,
                         agreements=used, shares=[Share(centre=c, fractions=counts[c]) for c in sorted(counts)])
        amount = next(iter(amounts.values()))
        owed = [Share(centre=c, fractions=counts[c], amount=share_of(terms[c], amount, counts[c], total)) for c in others]
        own = Share(centre=billing, fractions=counts[billing], amount=amount - sum(s.amount for s in owed))
        return Split(**base, status="settled", billing_centre=billing, course_amount=amount, first_fraction_on=first,
                     agreements=used, shares=[own, *owed])
    return Split(**base, status="unsettled", reason=unsettled[0] if len(unsettled) == 1 else said(
                     "split.reasons", reasons=unsettled), first_fraction_on=first,
                 shares=[Share(centre=c, fractions=counts[c]) for c in sorted(counts)])


# ---- statements (pure) -----------------------------------------------------------------------


def balances(lines: Iterable[dict]) -> list[dict]:
    """Who owes whom, netted per centre pair: each line of a centre other than the billing
    centre is a debt of the billing centre to it."""
    net: dict[tuple[str, str], Decimal] = defaultdict(Decimal)  # > 0: first owes second
    for line in lines:
        debtor, creditor, amount = line["billing_centre"], line["centre"], line["amount"]
        if creditor == debtor or amount is None:
            continue
        a, b = sorted((debtor, creditor))
        net[(a, b)] += amount if debtor == a else -amount
    out = []
    for (a, b), amount in sorted(net.items()):
        if amount > 0:
            out.append({"debtor": a, "creditor": b, "amount": amount})
        elif amount < 0:
            out.append({"debtor": b, "creditor": a, "amount": -amount})
    return out


def statement(lines: list[dict], unsettled: list[dict] | None = None) -> dict:
    """Lines (one per course and centre), netted balances, and totals per centre."""
    owed = balances(lines)
    by_centre: dict[str, dict] = {}
    for line in lines:
        row = by_centre.setdefault(line["centre"], {"centre": line["centre"], "fractions": 0, "share": Decimal(0), "net": Decimal(0)})
        row["fractions"] += line["fractions"]
        row["share"] += line["amount"]
    for b in owed:
        for centre, sign in ((b["creditor"], 1), (b["debtor"], -1)):
            row = by_centre.setdefault(centre, {"centre": centre, "fractions": 0, "share": Decimal(0), "net": Decimal(0)})
            row["net"] += sign * b["amount"]
    return {
        "lines": lines,
        "balances": owed,
        "totals": {
            "courses": len({line["course_id"] for line in lines}),
            "fractions": sum(line["fractions"] for line in lines),
            "amount": sum((line["amount"] for line in lines), Decimal(0)),
            "centres": [by_centre[c] for c in sorted(by_centre)],
        },
        "unsettled": unsettled or [],
    }


def on_statement(split: dict, pair: tuple[str, str] | None = None, seen_by: str | None = None) -> bool:
    """Whether a course's split in force is on a statement. A home-only course owes nobody: never.
    A pair's statement: the courses billed by one of the two on which the other has a share (an
    unsettled course has no billing centre yet: both delivered). `seen_by`: only the courses that
    centre's finance sees (its home centre, assigned to it, it bills, or it has a share)."""
    if split["status"] == "home-only":
        return False
    centres = {s["centre"] for s in split["shares"]}
    billing = split["billing_centre"]
    if pair is not None and not (set(pair) <= centres and (billing in pair or split["status"] != "settled")):
        return False
    if seen_by is not None and seen_by not in centres | {billing, split["home_centre"], *split["assigned_centres"]}:
        return False
    return True


def statement_of(splits: Iterable[dict], pair: tuple[str, str] | None = None, seen_by: str | None = None) -> dict:
    """The statement of the splits in force of a period's courses (in the order to show them, each
    with its shares, the billing centre's first): a line per centre of each settled course on it
    (on a pair's statement, the pair's centres only), the unsettled courses apart."""
    lines, unsettled = [], []
    for split in splits:
        if not on_statement(split, pair, seen_by):
            continue
        base = {"course_id": split["course_id"], "patient_id": split["patient_id"], "completed_on": split["completed_on"]}
        if split["status"] != "settled":
            unsettled.append({**base, "reason": split["reason"],
                              "fractions": {s["centre"]: s["fractions"] for s in split["shares"]}})
            continue
        billing = split["billing_centre"]
        used = {a["partner"]: a for a in split["agreements"]}
        for share in split["shares"]:
            if pair is not None and share["centre"] not in pair:
                continue
            a = used.get(share["centre"]) if share["centre"] != billing else None
            lines.append({**base, "billing_centre": billing, "centre": share["centre"], "fractions": share["fractions"],
                          "amount": share["amount"],
                          "agreement": f"{a['billing_centre']}/{a['partner']} v{a['version']} {a['rule']}" if a else None})
    return statement(lines, unsettled)
