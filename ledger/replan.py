"""What a re-plan (a fallback plan) may change from the prescription without a second look.

A partner re-plans on its own linac: another machine, other beams, often only the fractions
that remain. What it must not change is the dose: per fraction group, no more fractions than
prescribed, and a total meterset per fraction close to the prescription's (MU differ between
machines and techniques, but not fivefold). A plan beyond these waits for a physicist of the
home centre to approve it (`Course.approve_fallback_plan`). The differences are facts (codes
and values) stored on the event; `describe` says them in words.
"""

from __future__ import annotations

from decimal import Decimal

from ledger.messages import said
from schemas.course import FractionGroup, Plan

# A re-plan's total meterset per fraction of a group may differ this much from the prescription's.
METERSET_SHARE = Decimal("0.10")


def meterset_per_fraction(group: FractionGroup) -> Decimal:
    return sum((b.meterset for b in group.beams), Decimal(0))


def differences(prescription: Plan, plan: Plan) -> list[dict]:
    """How `plan` departs from `prescription` beyond a re-plan's expected changes (empty: it does not).
    Every group of `plan` is a group of the prescription (checked before)."""
    prescribed = {g.number: g for g in prescription.fraction_groups}
    found: list[dict] = []
    for group in plan.fraction_groups:
        rx = prescribed[group.number]
        if group.fractions_planned > rx.fractions_planned:
            found.append({"code": "more_fractions", "group": group.number,
                          "planned": group.fractions_planned, "prescribed": rx.fractions_planned})
        mu, rx_mu = meterset_per_fraction(group), meterset_per_fraction(rx)
        if mu != rx_mu and (rx_mu == 0 or abs(mu - rx_mu) > rx_mu * METERSET_SHARE):
            found.append({"code": "meterset_per_fraction", "group": group.number,
                          "planned": str(mu), "prescribed": str(rx_mu)})
    return found


def describe(found: list[dict]) -> list[dict]:
    """The differences as messages (`replan.*` codes), rendered where they are shown."""
    return [said(f"replan.{d['code']}", **{k: v for k, v in d.items() if k != "code"},
                 **({"share": f"{METERSET_SHARE:.0%}"} if d["code"] == "meterset_per_fraction" else {}))
            for d in found]
