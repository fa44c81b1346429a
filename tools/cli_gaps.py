"""`fraction-ledger gaps` (the treatment gaps worklist) and the course commands of issue 17:
`course schedule`, `course gap-category`, `course amend`, `course countersign`."""

from __future__ import annotations

import click

from adapters.gaps_view import alarms, gaps_of, what
from adapters.runtime import gap_alarm_days
from schemas.prescription import KINDS
from tools.cli_access import log_read
from tools.cli_common import Context, emit, say, shown, tr, tr_n


def weekdays_of(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(tr("bad_weekdays", text=repr(text)), param_hint="--weekdays") from None


def gap_of_course(obj: Context, course_id: str) -> dict | None:
    """`course show --json`: the course's gap today (None unless it is active)."""
    import msgspec

    course = obj.ledger.app.get_course(course_id)
    if course.status != "active":
        return None
    return msgspec.to_builtins(obj.ledger.app.gaps.course_gap(course.id, threshold=gap_alarm_days()))


def show_prescription(obj: Context, course) -> None:
    """`course show`: the gap, the dose, the original prescription and every amendment."""
    if course.status == "active":
        gap = obj.ledger.app.gaps.course_gap(course.id, threshold=gap_alarm_days())
        site = tr("gap_from_site", site=course.site) if gap.category_from == "site" else ""
        click.echo(tr("course_gap", category=gap.category or "-", site=site, missed=shown(gap.missed),
                      prolongation=shown(gap.prolongation), planned_end=shown(gap.planned_end or "-"),
                      projected_end=shown(gap.projected_end or "-"), alarm=tr("gap_alarm") if gap.alarm else ""))
    prescribed, delivered = course.dose()
    if prescribed is not None:
        click.echo(tr("course_dose", delivered=shown(delivered), prescribed=shown(prescribed)))
    if course.amendments:
        original = ", ".join(tr("original_group", group=g.number, fractions=shown(g.fractions_planned))
                             for g in course.plan.fraction_groups)
        click.echo(tr("original_prescription", groups=original))
    for a in course.amendments:
        signed = (tr("amendment_countersigned", by=a.countersigned_by, at=shown(a.countersigned_at))
                  if a.countersigned_by else tr("amendment_not_countersigned"))
        click.echo(tr("amendment_line", id=a.id, what=say(what(a)), by=a.by, at=shown(a.at), reason=a.reason,
                      signed=signed))


def register(main: click.Group) -> None:
    course = main.commands["course"]

    @main.command("gaps")
    @click.option("--centre", default=None, help="Only courses whose home or assigned centre this is.")
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def gaps(obj: Context, centre, as_json) -> None:
        """The treatment gaps worklist: active courses by urgency (gap category, then prolongation)."""
        read = obj.ledger.fresh()
        threshold = gap_alarm_days()
        rows = gaps_of(obj.ledger.app, read, read.courses(centre=centre, status="active"), threshold)
        log_read(obj, "gaps.read", rows)
        if as_json:
            emit(rows, True)
            return
        for a in alarms(rows, threshold):
            click.echo(tr("gaps_alarm", message=say(a["message"])))
        for r in rows:
            nxt = r["next_fraction"]
            nxt_text = f"{nxt['group']}/{nxt['number']}" if nxt else "-"
            dose = (tr("gaps_dose", delivered=shown(r["dose_delivered_gy"]), prescribed=shown(r["dose_prescribed_gy"]))
                    if r["dose_prescribed_gy"] is not None else "")
            pending = (tr_n("gaps_pending", r["pending_amendments"]) if r["pending_amendments"] else "")
            last = r["days_since_last"] if r["days_since_last"] is not None else "-"
            click.echo(tr("gaps_line", id=r["id"], category=r["category"] or "-", patient_id=r["patient_id"],
                          plan_label=r["plan_label"], delivered=r["delivered"], planned=r["planned"], missed=r["missed"],
                          prolongation=r["prolongation"], last=last, next=nxt_text,
                          next_day=shown(r["next_day"] or "-"),
                          at=", ".join(r["assigned_centres"]) or r["home_centre"], dose=dose, pending=pending))

    @course.command("schedule")
    @click.argument("course_id")
    @click.option("--start", default=None, help="First treatment day, YYYY-MM-DD [default: the first fraction's day].")
    @click.option("--weekdays", default=None, help="ISO weekdays treated, e.g. 1,2,3,4,5 [default: Monday to Friday].")
    @click.option("--site", default=None, help="Treatment site (gives the gap category's default).")
    @click.option("--request-id", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def course_schedule(obj: Context, course_id, start, weekdays, site, request_id, as_json) -> None:
        """Set a course's intended schedule and treatment site."""
        schedule = None
        if start is not None or weekdays is not None:
            schedule = {"start": start, **({"weekdays": weekdays_of(weekdays)} if weekdays else {})}
        result = obj.ledger.app.gaps.set_schedule(course_id, schedule, site, obj.actor(), request_id=request_id)
        emit(result, as_json, tr("schedule_set", id=result["id"]) + ("" if result["changed"] else tr("already_so")))

    @course.command("gap-category")
    @click.argument("course_id")
    @click.option("--category", type=click.IntRange(1, 3), required=True,
                  help="1: prolongation most harmful .. 3: palliative.")
    @click.option("--request-id", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def course_gap_category(obj: Context, course_id, category, request_id, as_json) -> None:
        """Set a course's gap category (a physician's decision; it replaces the site's default)."""
        result = obj.ledger.app.gaps.set_gap_category(course_id, category, obj.actor(), request_id=request_id)
        emit(result, as_json, tr("gap_category_set", id=result["id"], category=category)
             + ("" if result["changed"] else tr("already_so")))

    @course.command("amend")
    @click.argument("course_id")
    @click.option("--kind", type=click.Choice(KINDS), required=True)
    @click.option("--reason", required=True, help="Why (recorded, shown in the history).")
    @click.option("--group", type=int, default=None, help="Fraction group (where the plan has several).")
    @click.option("--fractions", type=int, default=None,
                  help="fractions: the group's new number; extra_fractions: how many more.")
    @click.option("--day", default=None, help="twice_daily / treatment_day: the day, YYYY-MM-DD.")
    @click.option("--request-id", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def course_amend(obj: Context, course_id, kind, reason, group, fractions, day, request_id, as_json) -> None:
        """Propose a prescription amendment; it changes nothing until a second person countersigns it."""
        data = {"kind": kind, "reason": reason, "group": group, "fractions": fractions, "day": day}
        result = obj.ledger.app.gaps.amend_prescription(course_id, data, obj.actor(), request_id=request_id)
        emit(result, as_json, tr("amendment_proposed", id=result["amendment"]["id"], kind=kind))

    @course.command("countersign")
    @click.argument("course_id")
    @click.argument("amendment_id")
    @click.option("--request-id", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_obj
    def course_countersign(obj: Context, course_id, amendment_id, request_id, as_json) -> None:
        """Countersign an amendment (never one's own): it takes effect."""
        result = obj.ledger.app.gaps.countersign_amendment(course_id, amendment_id, obj.actor(), request_id=request_id)
        emit(result, as_json, tr_n("amendment_countersigned_done", result["fractions_planned"], id=amendment_id,
                                   by=result["amendment"]["countersigned_by"]))
