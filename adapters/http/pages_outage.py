"""Pages of outage operations: the centre registry (physicists and administrators), the assignment
plan (home physicists), the call list (RTTs and physicists of the centre) and the emergency sheet.

Every change goes through the ledger's commands (the rules are in ledger/); a refusal is shown in
the reader's language and writes nothing. The plan page proposes only: assignments are recorded
when the physicist ticks them and presses Accept.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from adapters.http import access_log
from adapters.http.auth import current
from adapters.http.backend import actor_of
from adapters.http.i18n import language_of, translator, words
from adapters.http.pages import Form, backend, flash, page, refusal
from adapters.outage import (
    call_list, call_list_csv, call_list_pdf, day_list, day_list_pdf, emergency_sheet_pdf, home_course_ids, plan_dict,
    today_at,
)
from ledger import access, errors
from ledger.centre import ALIAS_KINDS
from schemas.outage import TECHNIQUES


def values(data: Any, name: str) -> list[str]:
    """A form field that may repeat (checkboxes)."""
    found = data.get(name) if hasattr(data, "get") else None
    if found is None:
        return []
    return [str(v) for v in found] if isinstance(found, list) else [str(found)]


def day_of(text: str | None, request: Request, centre: str) -> date:
    if text:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise errors.InvalidCommand("day", "invalid.not_a_day", value=repr(text)) from None
    return today_at(backend(request).app, centre)


def status_of(exc: errors.LedgerError) -> int:
    return 400 if isinstance(exc, errors.InvalidCommand) else 403 if isinstance(exc, errors.AccessDenied) else 409


# ---- the registry ----------------------------------------------------------------------------


def centres_page(request: Request, status_code: int = 200, **context: Any) -> Template:
    who, app = current(request), backend(request).app
    centres = app.outage.centres()
    for c in centres:
        found = app.outage.capacity_of(c["code"])
        c["capacity"] = found.versions if found else []
    return page(request, "centres.html", status_code=status_code, centres=centres, techniques=TECHNIQUES,
                alias_kinds=ALIAS_KINDS, may_manage=access.may(who, "centres.manage"),
                may_declare=access.may(who, "capacity.declare", who.centre), **context)


@get("/centres", opt={"action": "centres.read"}, sync_to_thread=True, include_in_schema=False)
def centres_home(request: Request) -> Template:
    return centres_page(request)


def centre_form(path: str, action: str, run):
    def handler(request: Request, data: Form) -> Template | Redirect:
        who = current(request)
        try:
            result = run(backend(request).app, data, who)
        except errors.LedgerError as exc:
            return centres_page(request, status_code=status_of(exc), refusal=refusal(translator(language_of(request)), exc))
        flash(request, translator(language_of(request))("centres_saved", centre=result.get("centre", "")))
        return Redirect("/centres")

    handler.__name__ = "centres_" + path.replace("/", "_")
    return post("/centres/" + path, opt={"action": action}, sync_to_thread=True, include_in_schema=False,
                status_code=200)(handler)


def form_text(data: Any, name: str) -> str:
    return str(data.get(name, "") or "").strip()


def declare(app: Any, data: Any, who: Any) -> dict:
    centre = form_text(data, "centre")
    access.check(who, "capacity.declare", centre)  # a partner declares its own capacity
    return app.outage.declare_capacity({
        "centre": centre, "per_day": form_text(data, "per_day") or 0, "unit": form_text(data, "unit") or "patients",
        "window_start": form_text(data, "window_start") or "07:00", "window_end": form_text(data, "window_end") or "19:00",
        "valid_from": form_text(data, "valid_from"), "valid_until": form_text(data, "valid_until") or None,
        "machines": values(data, "machines")}, actor_of(who))


register_form = centre_form("register", "centres.manage", lambda app, d, who: app.outage.register_centre(
    {"code": form_text(d, "code"), "name": form_text(d, "name"), "zone": form_text(d, "zone") or "Europe/Brussels"},
    actor_of(who)))
machine_form = centre_form("machine", "centres.manage", lambda app, d, who: app.outage.set_machine(
    form_text(d, "centre"), {"name": form_text(d, "name"), "model": form_text(d, "model"),
                             "techniques": values(d, "techniques")}, actor_of(who)))
remove_machine_form = centre_form("machine/remove", "centres.manage", lambda app, d, who: app.outage.remove_machine(
    form_text(d, "centre"), form_text(d, "name"), actor_of(who)))
alias_form = centre_form("alias", "centres.manage", lambda app, d, who: app.trust.add_centre_alias(
    form_text(d, "centre"), form_text(d, "kind"), form_text(d, "value"), actor_of(who)))
zone_form = centre_form("zone", "centres.manage", lambda app, d, who: app.trust.set_centre_zone(
    form_text(d, "centre"), form_text(d, "zone"), actor_of(who)))
capacity_form = centre_form("capacity", "capacity.declare", declare)


# ---- the assignment plan -----------------------------------------------------------------------


def plan_page(request: Request, capacity_lost: int, day_text: str | None, status_code: int = 200,
              **context: Any) -> Template:
    who, b = current(request), backend(request)
    lang = language_of(request)
    day = day_of(day_text, request, who.centre)
    ids = b.read(lambda r: home_course_ids(r, who.centre))
    plan = plan_dict(b.app.outage.plan_assignments(ids, capacity_lost, day), words(lang))
    for row in plan["proposals"] + plan["unplaceable"] + plan["kept"] + plan["waiting"]:
        access_log.saw(row["course"], row["patient_id"], who.centre)
    return page(request, "plan.html", status_code=status_code, plan=plan, **context)


@get("/physicist/plan", opt={"action": "plan.assignments"}, sync_to_thread=True, include_in_schema=False)
def plan_home(request: Request, capacity_lost: FromQuery[int] = 50, day: FromQuery[str | None] = None) -> Template:
    try:
        return plan_page(request, capacity_lost, day)
    except errors.InvalidCommand as exc:
        return page(request, "plan.html", status_code=400, plan=None, refusal=refusal(translator(language_of(request)), exc))


@post("/physicist/plan/accept", opt={"action": "plan.assignments"}, sync_to_thread=True, include_in_schema=False,
      status_code=200)
def plan_accept(request: Request, data: Form) -> Template | Redirect:
    """Record the ticked proposals (course|centre), checked again on the state as it is now."""
    who, b = current(request), backend(request)
    capacity = form_text(data, "capacity_lost") or "50"
    day_text = form_text(data, "day") or None
    chosen = [tuple(v.split("|", 1)) for v in values(data, "chosen") if "|" in v]
    t = translator(language_of(request))
    try:
        lost = int(capacity) if capacity.isdigit() else -1
        day = day_of(day_text, request, who.centre)
        ids = b.read(lambda r: home_course_ids(r, who.centre))
        if not chosen:
            raise errors.InvalidCommand("chosen", "invalid.nothing_chosen")
        result = b.app.outage.accept_assignments(ids, chosen, lost, day, actor_of(who))
    except errors.LedgerError as exc:
        return plan_page(request, 50 if not capacity.isdigit() else int(capacity), day_text,
                         status_code=status_of(exc), refusal=refusal(t, exc))
    flash(request, t("plan_accepted", n=len(result["accepted"])))
    return Redirect(f"/physicist/plan?capacity_lost={lost}&day={day.isoformat()}")


# ---- the call list -------------------------------------------------------------------------------


def seen_rows(request: Request, rows_of: Any) -> list[dict]:
    """The rows `rows_of(app, read_model, centre)` gives for the caller's centre, each patient's
    read logged (who saw whom)."""
    who, b = current(request), backend(request)
    rows = b.read(lambda r: rows_of(b.app, r, who.centre))
    for row in rows:
        access_log.saw(row["course"], row["patient_id"], row["home_centre"])
    return rows


def calls_rows(request: Request, day: date) -> list[dict]:
    w = words(language_of(request))
    return seen_rows(request, lambda app, r, centre: call_list(app, r, centre, day, w))


@get("/calls", opt={"action": "contacts.read"}, sync_to_thread=True, include_in_schema=False)
def calls_home(request: Request, day: FromQuery[str | None] = None) -> Template:
    who = current(request)
    shown = day_of(day, request, who.centre)
    return page(request, "calls.html", rows=calls_rows(request, shown), day=shown.isoformat(), centre=who.centre)


@get("/calls.csv", opt={"action": "contacts.read"}, sync_to_thread=True, include_in_schema=False)
def calls_csv(request: Request, day: FromQuery[str | None] = None) -> Response:
    who = current(request)
    shown = day_of(day, request, who.centre)
    text = call_list_csv(calls_rows(request, shown), words(language_of(request)))
    return Response(text, media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="calls-{who.centre}-{shown.isoformat()}.csv"'})


@get("/calls.pdf", opt={"action": "contacts.read"}, sync_to_thread=True, include_in_schema=False)
def calls_pdf(request: Request, day: FromQuery[str | None] = None) -> Response:
    who, b = current(request), backend(request)
    shown = day_of(day, request, who.centre)
    pdf = call_list_pdf(calls_rows(request, shown), who.centre, shown, words(language_of(request)), b.app.clock())
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="calls-{who.centre}-{shown.isoformat()}.pdf"'})


@post("/calls/record", opt={"action": "calls.record"}, sync_to_thread=True, include_in_schema=False, status_code=200)
def calls_record(request: Request, data: Form) -> Template | Redirect:
    who, b = current(request), backend(request)
    course_id, day = form_text(data, "course"), form_text(data, "day")
    try:
        b.course_for(who, "calls.record", course_id)
        b.app.outage.record_call({"course_id": course_id, "day": day, "outcome": form_text(data, "outcome"),
                           "note": form_text(data, "note")}, actor_of(who))
    except errors.LedgerError as exc:
        shown = day_of(None, request, who.centre)
        return page(request, "calls.html", status_code=status_of(exc), rows=calls_rows(request, shown),
                    day=shown.isoformat(), centre=who.centre, refusal=refusal(translator(language_of(request)), exc))
    return Redirect(f"/calls?day={day}")


# ---- the day list ----------------------------------------------------------------------------------


def day_rows(request: Request, day: date) -> list[dict]:
    return seen_rows(request, lambda app, r, centre: day_list(app, r, centre, day))


@get("/day-list", opt={"action": "day_list.read"}, sync_to_thread=True, include_in_schema=False)
def day_list_home(request: Request, day: FromQuery[str | None] = None) -> Template:
    who = current(request)
    shown = day_of(day, request, who.centre)
    return page(request, "day_list.html", rows=day_rows(request, shown), day=shown.isoformat(), centre=who.centre)


@get("/day-list.pdf", opt={"action": "day_list.read"}, sync_to_thread=True, include_in_schema=False)
def day_list_printable(request: Request, day: FromQuery[str | None] = None) -> Response:
    who, b = current(request), backend(request)
    shown = day_of(day, request, who.centre)
    pdf = day_list_pdf(day_rows(request, shown), who.centre, shown, words(language_of(request)), b.app.clock())
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="day-list-{who.centre}-{shown.isoformat()}.pdf"'})


# ---- the emergency sheet ----------------------------------------------------------------------------


@get("/courses/{course_id:str}/sheet.pdf", opt={"action": "sheets.read"}, sync_to_thread=True, include_in_schema=False)
def course_sheet(request: Request, course_id: FromPath[str]) -> Response:
    b = backend(request)
    course = b.course_for(current(request), "sheets.read", course_id)
    access_log.saw_course(course)
    pdf = emergency_sheet_pdf(b.app, course, words(language_of(request)))
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="sheet-{course.patient["id"]}.pdf"'})


router = Router("/", route_handlers=[
    centres_home, register_form, machine_form, remove_machine_form, alias_form, zone_form, capacity_form,
    plan_home, plan_accept, calls_home, calls_csv, calls_pdf, calls_record, day_list_home, day_list_printable,
    course_sheet,
])
