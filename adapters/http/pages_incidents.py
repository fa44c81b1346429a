"""Registering an incident from the course page (the list is on the page itself): the
centre and the person come from the account, as on the API."""

from __future__ import annotations

import msgspec
from litestar import Request, Router, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from adapters.http.api_incidents import register
from adapters.http.auth import current
from adapters.http.errors import validate_body
from adapters.http.i18n import language_of, translator, words
from adapters.http.pages import Form, backend, course_context, flash, local_input, page, refusal
from ledger import errors
from schemas.api_ops import IncidentIn

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
        result = register(b, who, msgspec.convert(raw, IncidentIn, strict=False), None)
    except errors.LedgerError as exc:
        return page(request, "course.html", status_code=400 if isinstance(exc, errors.InvalidCommand) else 409,
                    refusal=refusal(t, exc), incident_form=data, **course_context(request, course_id))
    w = words(language_of(request))
    category, severity = str(raw.get("category", "")), str(raw.get("severity", ""))
    flash(request, t("incident_registered_for", category=w.t("cat_" + category), severity=w.t("sev_" + severity),
                     fraction=raw.get("fraction") or "–"))
    return Redirect(f"/courses/{course_id}#incidents")


router = Router("/", route_handlers=[register_from_form])
