"""`fraction-ledger incident ...` and `fraction-ledger billing ...`: incidents returned to the home
centre, agreements between centres, course splits and settlement statements.

Amounts are printed as exact decimal strings (JSON and CSV), never as floats.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import click

from adapters.reports import incidents_csv, statement_csv
from adapters.runtime import local_text
from schemas.billing import CATEGORIES, NEAR_MISS, SEVERITIES

from adapters.http.views import reasons_worded  # noqa: E402
from tools.cli_access import log_read  # noqa: E402
from tools.cli_common import Context, money, say, shown, status_word, tr  # noqa: F401
from tools.cli_common import emit as common_emit  # noqa: E402

def emit(value: Any, as_json: bool, text: str | None = None) -> None:
    """As `cli_common.emit`; in the JSON, a split's reason is its English text and the message
    (`reason_said`), as the API gives it."""
    common_emit(reasons_worded(value) if as_json else value, as_json, text)


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(tr("bad_datetime", text=repr(text)), param_hint="--at") from None
    if value.tzinfo is None:
        raise click.BadParameter(tr("no_offset", text=repr(text)), param_hint="--at")
    return value


def parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(tr("bad_day", text=repr(text)), param_hint=option) from None


def one_format(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise click.UsageError(tr("json_or_csv"))


# ---- incidents -------------------------------------------------------------------------------


@click.group()
def incident() -> None:
    """Incidents: register, follow up, close, list, export for the home centre."""


@incident.command("register")
@click.option("--centre", required=True, help="Centre where it happened.")
@click.option("--course", "course_id", default=None, help="Course it concerns.")
@click.option("--fraction", type=int, default=None, help="Fraction number within the course.")
@click.option("--category", required=True, type=click.Choice([c for c in CATEGORIES if c != NEAR_MISS]))
@click.option("--severity", required=True, type=click.Choice(SEVERITIES))
@click.option("--description", required=True)
@click.option("--by", default=None, help="Who registers it [default: --user].")
@click.option("--at", "at", default=None, help="When it happened, ISO-8601 with offset.")
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def incident_register(obj: Context, centre, course_id, fraction, category, severity, description, by, at,
                      request_id, as_json) -> None:
    """Register an incident at any centre."""
    data = {"centre": centre, "course_id": course_id, "fraction": fraction, "category": category,
            "severity": severity, "description": description, "by": by,
            "occurred_at": parse_time(at) if at else None}
    result = obj.ledger.app.billing.register_incident(data, obj.actor(centre), request_id=request_id)
    emit(result, as_json, tr("incident_registered", id=result["id"], category=category, severity=severity))


@incident.command("follow-up")
@click.argument("incident_id")
@click.option("--text", required=True)
@click.option("--by", default=None)
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def incident_follow_up(obj: Context, incident_id, text, by, request_id, as_json) -> None:
    """Add a follow-up to an open incident."""
    result = obj.ledger.app.billing.add_follow_up(incident_id, text, obj.actor(), by=by, request_id=request_id)
    emit(result, as_json, tr("incident_followed_up", id=result["id"], number=result["follow_ups"]))


@incident.command("close")
@click.argument("incident_id")
@click.option("--resolution", default="", help="How it was resolved (recorded).")
@click.option("--by", default=None)
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def incident_close(obj: Context, incident_id, resolution, by, request_id, as_json) -> None:
    """Close an incident; nothing can be added after."""
    result = obj.ledger.app.billing.close_incident(incident_id, resolution, obj.actor(), by=by, request_id=request_id)
    emit(result, as_json, tr("incident_closed", id=result["id"]))


@incident.command("list")
@click.option("--centre", default=None, help="Registered at this centre.")
@click.option("--course", "course_id", default=None)
@click.option("--status", type=click.Choice(["open", "closed"]), default=None)
@click.option("--category", type=click.Choice(CATEGORIES), default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def incident_list(obj: Context, centre, course_id, status, category, as_json) -> None:
    """List incidents, oldest first (near-misses included)."""
    rows = obj.ledger.fresh().incidents(centre=centre, course_id=course_id, status=status, category=category)
    log_read(obj, "incidents.read", rows, key="course_id")
    if as_json:
        emit(rows, True)
        return
    for i in rows:
        where = (tr("incident_course", course_id=i["course_id"])
                 + (tr("incident_fraction", number=i["fraction"]) if i["fraction"] else "")) if i["course_id"] else "-"
        click.echo(tr("incident_line", id=i["id"], at=local_text(i["registered_at"]), centre=i["centre"],
                      category=i["category"], severity=i["severity"], status=status_word(i["status"]), where=where,
                      description=i["description"]))


@incident.command("export")
@click.option("--centre", required=True, help="The home centre: every incident about its patients, and its own.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.pass_obj
def incident_export(obj: Context, centre, as_json, as_csv) -> None:
    """Incidents to return to a home centre, as JSON or CSV."""
    one_format(as_json, as_csv)
    if not (as_json or as_csv):
        raise click.UsageError(tr("json_or_csv_needed"))
    rows = obj.ledger.fresh().incidents(home_centre=centre)
    log_read(obj, "incidents.export", rows, key="course_id")
    if as_json:
        emit(rows, True)
        return
    click.echo(incidents_csv(rows), nl=False)


# ---- billing -----------------------------------------------------------------------------


@click.group()
def billing() -> None:
    """Agreements between centres, course splits and settlement statements."""


def parse_tariff(text: str) -> tuple[str, str]:
    category, sep, amount = text.partition("=")
    if not sep or not category or not amount:
        raise click.BadParameter(tr("bad_tariff", text=repr(text)), param_hint="--tariff")
    return category, amount


@billing.command("agree")
@click.option("--billing-centre", required=True, help="The centre that bills the payer.")
@click.option("--partner", required=True)
@click.option("--rule", required=True, type=click.Choice(["pro-rata", "per-fraction"]))
@click.option("--course-amount", default=None, help="EUR billed per course (default when no tariff matches).")
@click.option("--fee-per-fraction", default=None, help="EUR owed to the partner per fraction (per-fraction rule).")
@click.option("--tariff", "tariffs", multiple=True, help="CATEGORY=EUR course amount by treatment category; repeatable.")
@click.option("--valid-from", required=True, help="YYYY-MM-DD")
@click.option("--valid-to", default=None, help="YYYY-MM-DD (inclusive)")
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def billing_agree(obj: Context, billing_centre, partner, rule, course_amount, fee_per_fraction, tariffs,
                  valid_from, valid_to, request_id, as_json) -> None:
    """Record the agreement with a partner, or amend it (a new version valid from a date)."""
    data = {"billing_centre": billing_centre, "partner": partner, "rule": rule, "course_amount": course_amount,
            "fee_per_fraction": fee_per_fraction, "tariffs": dict(parse_tariff(t) for t in tariffs),
            "valid_from": valid_from, "valid_to": valid_to}
    result = obj.ledger.app.billing.agree(data, obj.actor(billing_centre), request_id=request_id)
    t = result["terms"]
    emit(result, as_json, tr("agreement_made", billing_centre=billing_centre, partner=partner, version=t["version"],
                             rule=t["rule"], valid_from=shown(t["valid_from"]))
         + ("" if result["changed"] else tr("agreement_unchanged")))


@billing.command("agreements")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def billing_agreements(obj: Context, as_json) -> None:
    """Every version of every agreement."""
    rows = obj.ledger.fresh().agreements()
    if as_json:
        emit(rows, True)
        return
    for a in rows:
        tariffs = ", ".join(f"{k}={v}" for k, v in a["tariffs"].items())
        click.echo(tr("agreement_line", billing_centre=a["billing_centre"], partner=a["partner"], version=a["version"],
                      rule=a["rule"], valid_from=shown(a["valid_from"]), valid_to=shown(a["valid_to"] or "-"),
                      course_amount=money(a["course_amount"] or "-"), fee=money(a["fee_per_fraction"] or "-"))
                   + (tr("agreement_tariffs", tariffs=tariffs) if tariffs else ""))


@billing.command("settle")
@click.argument("course_id")
@click.option("--request-id", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def billing_settle(obj: Context, course_id, request_id, as_json) -> None:
    """Recompute a completed course's split (e.g. after an agreement was recorded late)."""
    result = obj.ledger.app.billing.settle_course(course_id, obj.actor(), request_id=request_id)
    s = result["split"]
    emit(result, as_json, tr("course_status", id=result["id"], status=s["status"])
         + (f" ({say(s['reason'])})" if s["reason"] else "") + ("" if result["changed"] else tr("split_unchanged")))


@billing.command("splits")
@click.argument("course_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def billing_splits(obj: Context, course_id, as_json) -> None:
    """A course's splits, oldest first; the last one is in force."""
    rows = obj.ledger.fresh().splits(course_id)
    log_read(obj, "billing", [course_id])
    if as_json:
        emit(rows, True)
        return
    for s in rows:
        shares = ", ".join(tr("split_share", centre=x["centre"], fractions=x["fractions"],
                              amount=money(x["amount"] or "-")) for x in s["shares"])
        click.echo(tr("split_line", sequence=s["sequence"], state=tr("split_in_force") if s["current"] else tr("split_superseded"),
                      status=s["status"], billing_centre=s["billing_centre"] or "-",
                      course_amount=money(s["course_amount"] or ""), shares=shares, cause=s["cause"])
                   + (f"\n    {say(s['reason'])}" if s["reason"] else ""))


@billing.command("statement")
@click.option("--from", "start", required=True, help="YYYY-MM-DD: courses completed from this day...")
@click.option("--to", "end", required=True, help="YYYY-MM-DD: ...to this day, inclusive.")
@click.option("--pair", default=None, help="C:P: only what is between these two centres.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--csv", "as_csv", is_flag=True)
@click.pass_obj
def billing_statement(obj: Context, start, end, pair, as_json, as_csv) -> None:
    """Settlement statement: lines per course and centre, who owes whom (netted per pair), totals."""
    one_format(as_json, as_csv)
    start, end = parse_date(start, "--from"), parse_date(end, "--to")
    if end < start:
        raise click.BadParameter(tr("end_before_start", end=end, start=start), param_hint="--to")
    centres = None
    if pair is not None:
        first, sep, second = pair.partition(":")
        if not sep or not first or not second or first == second:
            raise click.BadParameter(tr("bad_pair", text=repr(pair)), param_hint="--pair")
        centres = (first, second)
    result = obj.ledger.fresh().statement(start, end, centres)
    log_read(obj, "billing", result["lines"], key="course_id")
    if as_json:
        emit(result, True)
    elif as_csv:
        click.echo(statement_csv(result), nl=False)
    else:
        print_statement(result)


def print_statement(result: dict) -> None:
    period = result["period"]
    click.echo(tr("statement_head", start=shown(period["from"]), end=shown(period["to"]))
               + (f", {' / '.join(result['pair'])}" if result["pair"] else ""))
    for line in result["lines"]:
        click.echo(tr("statement_line", completed_on=shown(line["completed_on"]), patient_id=line["patient_id"] or "",
                      course_id=line["course_id"], billing_centre=line["billing_centre"], centre=line["centre"],
                      fractions=line["fractions"], amount=money(line["amount"])))
    for b in result["balances"]:
        click.echo(tr("statement_balance", debtor=b["debtor"], creditor=b["creditor"], amount=money(b["amount"])))
    t = result["totals"]
    click.echo(tr("statement_total", courses=shown(t["courses"]), fractions=shown(t["fractions"]), amount=money(t["amount"])))
    for u in result["unsettled"]:
        click.echo(tr("statement_unsettled", course_id=u["course_id"], patient_id=u["patient_id"], reason=say(u["reason"])))


def course_category(obj: Context, course_id: str, category: str, request_id: str | None, as_json: bool) -> None:
    result = obj.ledger.app.billing.set_course_category(course_id, category, obj.actor(), request_id=request_id)
    emit(result, as_json, tr("course_category", id=result["id"], category=category)
         + ("" if result["changed"] else tr("already_so")))


def register(main: click.Group) -> None:
    main.add_command(incident)
    main.add_command(billing)
    course_group = main.commands["course"]

    @course_group.command("category")
    @click.argument("course_id")
    @click.option("--category", required=True, help="Treatment category (picks the billing tariff).")
    @click.option("--request-id", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def category(obj: Context, course_id, category, request_id, as_json) -> None:
        """Set a course's treatment category (a completed course's split follows)."""
        course_category(obj, course_id, category, request_id, as_json)

