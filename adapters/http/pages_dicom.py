"""The physicist's DICOM pages: upload RT Plans, baseline records and the triage list (a
result per file or line), download the DICOM export, send it to a configured destination.
The work is done by `api_dicom` (and through it by the DICOM adapter), as for the API."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Template

from adapters.http.api_dicom import (
    UPLOAD_LIMITS, dicom_config, dicom_zip, import_plans, import_records, import_triage_list, send_dicom_now,
)
from adapters.http.api_exports import settings, zip_response
from adapters.http.auth import current
from adapters.http.i18n import language_of, translator, words
from adapters.http.errors import TooLarge
from adapters.http.pages import backend, check_form, page, refusal
from adapters.http.pages_exports import exports_page, local_time
from ledger import errors
from schemas.api_ops import PlanImportIn, RecordImportIn, SendIn

Multipart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]


def as_result(answer: dict, w=None) -> dict:
    """An importer's answer as a line of the page's result list (its course's patient and plan are
    added by `pages_physicist.named`)."""
    w = w or words("en")
    where = w.t("at_line", line=answer["line"]) + " " if answer.get("line") else ""
    if answer["status"] == "error":
        # the reason in the reader's language (`error_said`), else its English text (`error`)
        reason = w.say(answer["error_said"]) if answer.get("error_said") else answer.get("error")
        return {"file": answer["file"], "ok": False, "message": where + (reason or w.t("refused"))}
    what = w.tn("fractions_count", answer["fractions"]) if answer.get("fractions") else ""
    warning = w.say(answer["warning_said"]) if answer.get("warning_said") else answer.get("warning")
    return {"file": answer["file"], "ok": True, "status": answer["status"], "where": where, "detail": what,
            "id": answer.get("course_id"), "warning": warning}


def physicist_page(request: Request, status_code: int = 200, **context: Any) -> Template:
    from adapters.http.pages_physicist import named, physicist_context

    if context.get("results"):
        context["results"] = named(request, context["results"])
    return page(request, "physicist.html", status_code=status_code, **physicist_context(request, **context))


def upload_page(name: str, action: str, run):
    def handler(request: Request, data: Multipart) -> Template:
        b, who = backend(request), current(request)
        try:
            answers = run(b, who, data)
        except errors.LedgerError as exc:
            status = 413 if isinstance(exc, TooLarge) else 400 if isinstance(exc, errors.InvalidCommand) else 409
            return physicist_page(request, status_code=status, refusal=refusal(translator(language_of(request)), exc))
        return physicist_page(request, results=[as_result(a, words(language_of(request))) for a in answers])

    handler.__name__ = f"upload_{name}"
    return post(f"/physicist/dicom/{name}", opt={"action": action}, sync_to_thread=True, include_in_schema=False,
                status_code=200, request_max_body_size=UPLOAD_LIMITS[name])(handler)


def filled(data: dict, *names: str) -> dict[str, str]:
    """The form's fields that were filled in, as the API's query parameters of the same name."""
    return {n: str(data[n]).strip() for n in names if str(data.get(n) or "").strip()}


def triage_of(data: dict) -> int | None:
    fields = filled(data, "triage")
    check_form(PlanImportIn, fields)  # 1..5, as on the API
    return int(fields["triage"]) if fields else None


def record_options(data: dict) -> tuple[str | None, str | None]:
    fields = filled(data, "utc_offset", "deviation_reason")
    check_form(RecordImportIn, fields)
    return fields.get("utc_offset"), fields.get("deviation_reason")


@get("/physicist/exports/dicom.zip", opt={"action": "exports"}, sync_to_thread=True, include_in_schema=False)
def download_dicom(request: Request, since: FromQuery[str | None] = None) -> Response:
    who = current(request)
    try:
        data = dicom_zip(backend(request), who, since=local_time(since))
    except errors.LedgerError as exc:
        return exports_page(request, status_code=409, refusal=refusal(translator(language_of(request)), exc))
    return zip_response(data, f"dicom-{who.centre}")


@post("/physicist/sends/dicom", opt={"action": "sends"}, sync_to_thread=True, include_in_schema=False, status_code=200)
def send_dicom_from_form(request: Request, data: Annotated[dict[str, Any], Body(
        media_type=RequestEncodingType.URL_ENCODED)]) -> Template:
    chosen = str(data.get("destination") or "")
    try:
        check_form(SendIn, {"destinations": [chosen] if chosen else []})
        results = send_dicom_now(backend(request), current(request), dicom_config(request), settings(request),
                                 [chosen] if chosen else None)
    except errors.LedgerError as exc:
        return exports_page(request, status_code=400 if isinstance(exc, errors.InvalidCommand) else 409, refusal=refusal(translator(language_of(request)), exc))
    return exports_page(request, results=results)


router = Router("/", route_handlers=[
    upload_page("plans", "imports.plans", lambda b, who, data: import_plans(b, who, data, triage_of(data))),
    upload_page("records", "imports.records", lambda b, who, data: import_records(b, who, data, *record_options(data))),
    upload_page("triage", "imports.triage", import_triage_list),
    download_dicom, send_dicom_from_form,
])
