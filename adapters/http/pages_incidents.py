"""Registering an incident from the course page (the list is on the page itself): the
centre and the person come from the account, as on the API."""

from __future__ import annotations

import msgspec
from litestar import Request, Router, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from adapters.http.api_incidents import incident_for, register
from adapters.http.backend import actor_of
from adapters.http.auth import current
from adapters.http.errors import status_of, validate_body
from adapters.http.i18n import language_of, translator, words
from adapters.http.pages import Form, backend, course_context, flash, local_input, page, refusal
from ledger import errors
from schemas.api_ops import CloseIn, FollowUpIn, IncidentIn

FIELDS = ("category", "severity", "description", "fraction", "occurred_at")


def form_to_incident(course_id: str, data: dict) -> dict:
    raw = {k: str(data[k]).strip() for k in FIELDS if str(data.get(k, "")).strip()}
    if "occurred_at" in raw:  # a datetime-local field: the department's local time
        raw["occurred_at"] = local_input(raw["occurred_at"], "occurred_at").isoformat()
    return {**raw, "course_id": course_id}


@post("/courses/{course_id:str}/incidents", opt={"action": "incidents.register"}, sync_to_thread=True,
      include_in_schema=False, status_code=200)
def register_from_form(request: Request, course_id: FromPath[str], data: Form) -> Template | Redirect:
    b, who = backend(request), current(request)
    t = translator(language_of(request))
    raw = form_to_incident(course_id, data)
    try:
        validate_body(IncidentIn, raw)
        register(b, who, msgspec.convert(raw, IncidentIn, strict=False), None)
    except errors.LedgerError as exc:
        return page(request, "course.html", status_code=400 if isinstance(exc, errors.InvalidCommand) else 409,
                    refusal=refusal(t, exc), incident_form=data, **course_context(request, course_id))
    w = words(language_of(request))
    category, severity = str(raw.get("category", "")), str(raw.get("severity", ""))
    flash(request, t("incident_registered_for", category=w.t("cat_" + category), severity=w.t("sev_" + severity),
                     fraction=raw.get("fraction") or "–"))
    return Redirect(f"/courses/{course_id}#incidents")


def incident_form(path: str, action: str, body: type, field: str, run, ok_key: str):
    """A follow-up or the closing of an incident, from the course page (held to the API body)."""
    def handler(request: Request, course_id: FromPath[str], incident_id: FromPath[str], data: Form) -> Template | Redirect:
        b, who = backend(request), current(request)
        b.course_for(who, "courses.read", course_id)
        t = translator(language_of(request))
        raw = {field: str(data.get(field, "")).strip()}
        try:
            incident_for(b, who, action, incident_id)
            validate_body(body, raw)
            run(b.app, incident_id, raw[field], actor_of(who))
        except errors.LedgerError as exc:
            return page(request, "course.html", status_code=status_of(exc), refusal=refusal(t, exc),
                        refused_incident=incident_id, **course_context(request, course_id))
        flash(request, t(ok_key))
        return Redirect(f"/courses/{course_id}#incident-{incident_id}")

    handler.__name__ = action.replace(".", "_") + "_form"
    return post("/courses/{course_id:str}/incidents/{incident_id:str}/" + path, opt={"action": action},
                sync_to_thread=True, include_in_schema=False, status_code=200)(handler)


follow_up_form = incident_form("follow-up", "incidents.follow_up", FollowUpIn, "text",
                               lambda app, iid, text, actor: app.billing.add_follow_up(iid, text, actor), "follow_up_added")
close_form = incident_form("close", "incidents.close", CloseIn, "resolution",
                           lambda app, iid, text, actor: app.billing.close_incident(iid, text, actor), "incident_closed_ok")

router = Router("/", route_handlers=[register_from_form, follow_up_form, close_form])
