"""Demo data: three patients of a home centre whose OIS is down, treated at home and at a partner.

The courses began four weeks before the ledger's clock (so the demo is current whenever it
runs); once the demo courses exist, running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from adapters.runtime import Ledger
from tools.cli_common import money, say, status_word, tr
from ledger import errors
from ledger.course import course_id_for
from ledger.service import Actor

HOME, PARTNER = "AZ-HOME", "PARTNER-RT"
ZONE = ZoneInfo("Europe/Brussels")


def start_of_demo(now: datetime) -> datetime:
    """08:30 on the Monday four weeks before `now`, in the department's zone."""
    day = now.astimezone(ZONE).date() - timedelta(weeks=4)
    return datetime.combine(day - timedelta(days=day.weekday()), time(8, 30), tzinfo=ZONE)

PATIENTS = [
    # id, name, birth date, sex, plan uid, label, fractions, beams (number, name, MU), triage, delivered at home, at partner
    ("DEMO-001", "PEETERS^AN", "1961-03-14", "F", "1.2.826.0.1.3680043.10.1000.1", "Breast L 50Gy/25",
     25, [(1, "TANG MED", "112.4"), (2, "TANG LAT", "109.8")], 3, 12, 4),
    ("DEMO-002", "JANSSENS^MARC", "1954-07-02", "M", "1.2.826.0.1.3680043.10.1000.2", "Prostate VMAT 60Gy/20",
     20, [(1, "ARC CW", "268.0"), (2, "ARC CCW", "271.5")], 2, 8, 3),
    ("DEMO-003", "MÜLLER-LEFÈVRE^ZOË", "1979-11-30", "F", "1.2.826.0.1.3680043.10.1000.3", "Rectum 25Gy/5",
     5, [(1, "AP", "95.1"), (2, "PA", "96.3"), (3, "LAT", "120.7")], 1, 2, 0),
]


SITES = {"DEMO-001": "breast", "DEMO-002": "prostate", "DEMO-003": "rectum", "DEMO-004": "breast", "DEMO-005": "lung"}


CENTRES = [  # code, name, machines (name, model, techniques)
    (HOME, "AZ Home Radiotherapy", [("HOME-LINAC-1", "TrueBeam", ["static", "IMRT", "VMAT", "electrons"])]),
    (PARTNER, "Partner Radiotherapy", [("PARTNER-TB2", "TrueBeam", ["static", "IMRT", "VMAT"]),
                                       ("PARTNER-HAL", "Halcyon", ["static", "IMRT", "VMAT"])]),
]


def seed_centres(app, first_day) -> None:
    """The network's registry (so an unknown centre such as PARTNR-RT is refused) and what the
    partner offers: 40 patients a day after hours for two months."""
    admin = Actor("admin.demo", HOME)
    for code, name, machines in CENTRES:
        app.outage.register_centre({"code": code, "name": name, "zone": "Europe/Brussels",
                             "machines": [{"name": m, "model": model, "techniques": t} for m, model, t in machines]},
                            admin, request_id=f"demo-centre-{code}")
    app.outage.declare_capacity({"centre": PARTNER, "per_day": 40, "window_start": "17:00", "window_end": "23:00",
                          "valid_from": first_day, "valid_until": first_day + timedelta(weeks=9),
                          "machines": ["PARTNER-TB2", "PARTNER-HAL"]},
                         Actor("physicist.partner", PARTNER), request_id="demo-capacity-partner")


# Completed courses and the agreement they are settled under, so that finance's statement shows
# lines: id, name, birth date, sex, plan uid, label, fractions, beams, triage, at home, at partner
COMPLETED = [
    ("DEMO-004", "DE SMET^LUC", "1958-05-21", "M", "1.2.826.0.1.3680043.10.1000.4", "Breast R 40Gy/15",
     15, [(1, "TANG MED", "104.6"), (2, "TANG LAT", "101.9")], 3, 10, 5),
    ("DEMO-005", "WOUTERS^ELS", "1949-12-08", "F", "1.2.826.0.1.3680043.10.1000.5", "Lung SBRT 55Gy/5",
     5, [(1, "ARC CW", "612.3"), (2, "ARC CCW", "598.7")], 1, 2, 3),
]


def run_demo(ledger: Ledger, echo: Callable[[str], None] = print, billing: bool = True) -> list[str]:
    """The three courses under treatment; with `billing`, also an agreement between the two
    centres and two courses completed under it (not among the ids returned)."""
    app = ledger.app
    present = ledger.fresh().course(str(course_id_for(HOME, PATIENTS[0][0], PATIENTS[0][4])))
    if present is not None:
        echo(tr("demo_already_there"))
        return [str(course_id_for(HOME, p[0], p[4])) for p in PATIENTS]
    start = start_of_demo(app.clock())
    seed_centres(app, start.date())
    ids = []
    if billing:
        app.billing.agree({"billing_centre": HOME, "partner": PARTNER, "rule": "pro-rata", "course_amount": "3150.00",
                   "tariffs": {"sbrt": "4875.40"}, "valid_from": start.date().replace(month=1, day=1)},
                  Actor("finance.demo", HOME), request_id="demo-agreement")
        echo(tr("demo_agreement", billing_centre=HOME, partner=PARTNER, amount=money("3150.00")))
    for pid, name, born, sex, uid, label, n, beams, triage, at_home, at_partner in PATIENTS + (COMPLETED if billing else []):
        physicist = Actor("physicist.demo", HOME)
        course = app.register_course(
            {
                "patient": {"id": pid, "name": name, "birth_date": born, "sex": sex},
                "home_centre": HOME,
                "plan": {"uid": uid, "label": label, "machine": "HOME-LINAC-1", "centre": HOME,
                         "fraction_groups": [{"number": 1, "fractions_planned": n, "beams": [
                             {"number": b, "name": bname, "meterset": mu, "machine": "HOME-LINAC-1"}
                             for b, bname, mu in beams]}]},
                "triage": triage,
                "assigned_centres": [PARTNER] if at_partner else [],
                # Monday to Friday from the demo's first day: the gaps worklist shows what the outage cost
                "schedule": {"start": start.date().isoformat()}, "site": SITES[pid],
            },
            physicist,
        )
        if pid not in {c[0] for c in COMPLETED}:
            ids.append(course["id"])
        echo(tr("demo_course", status=status_word(course["status"]), patient_id=pid, name=name, label=label, fractions=n,
                id=course["id"]))
        for k in range(1, at_home + at_partner + 1):
            centre, machine, rtt, checker = (
                (HOME, "HOME-LINAC-1", "rtt.home.a", "rtt.home.b") if k <= at_home
                else (PARTNER, "PARTNER-TB2", "rtt.partner.a", "rtt.partner.b")
            )
            day = start + timedelta(days=k - 1 + 2 * ((k - 1) // 5))
            app.log_fraction(
                course["id"],
                {"number": k, "centre": centre, "machine": machine, "operator": rtt, "delivered_at": day},
                Actor(rtt, centre),
                request_id=f"demo-fraction-{pid}-{k}",
            )
            if k < at_home + at_partner:  # the last one waits for its double check
                app.verify_fraction(course["id"], k, checker, Actor(checker, centre), request_id=f"demo-verify-{pid}-{k}")
        if at_home + at_partner:
            echo(tr("demo_fractions", home=at_home, home_centre=HOME, partner=at_partner, partner_centre=PARTNER))
        if pid in {c[0] for c in COMPLETED}:
            app.verify_fraction(course["id"], n, "rtt.partner.b", Actor("rtt.partner.b", PARTNER),
                                request_id=f"demo-verify-{pid}-{n}")
            app.complete_course(course["id"], "all fractions delivered", physicist, request_id=f"demo-complete-{pid}")
            echo(tr("demo_completed", patient_id=pid))
    # The REX 3 lesson: re-registering a fraction that is already there is refused.
    try:
        app.log_fraction(
            ids[0],
            {"number": 12, "centre": HOME, "machine": "HOME-LINAC-1", "operator": "rtt.home.c",
             "delivered_at": start + timedelta(days=20)},
            Actor("rtt.home.c", HOME),
            request_id="demo-refused-12",  # its near-miss incident is recorded once, however often the demo runs
        )
    except errors.RuleViolation as exc:
        echo(tr("demo_refused", refusal=say(exc)))
    ledger.fresh()
    return ids
