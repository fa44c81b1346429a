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
from adapters.http.i18n import language_of, translator
from adapters.http.errors import status_of
from adapters.http.pages import backend, page, refusal
from adapters.http.pages_exports import exports_page, local_time
from ledger import errors

Multipart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]


def as_result(answer: dict) -> dict:
    """An importer's answer as a line of the page's result list."""
    where = f"line {answer['line']}: " if answer.get("line") else ""
    if answer["status"] == "error":
        return {"file": answer["file"], "ok": False, "message": where + (answer.get("error") or "refused")}
    what = answer["status"] + (f" ({answer['fractions']} fractions)" if answer.get("fractions") else "")
    return {"file": answer["file"], "ok": True, "message": f"{where}{what}: {answer.get('course_id') or ''}",
            "id": answer.get("course_id")}


def physicist_page(request: Request, status_code: int = 200, **context: Any) -> Template:
    courses = backend(request).courses_view(current(request))
    return page(request, "physicist.html", status_code=status_code, courses=courses,
                extra_column="_physicist_actions.html", **{"results": [], **context})


def upload_page(name: str, action: str, run):
    def handler(request: Request, data: Multipart) -> Template:
        b, who = backend(request), current(request)
        try:
            answers = run(b, who, data)
        except errors.LedgerError as exc:
            return physicist_page(request, status_code=status_of(exc),
                                  refusal=refusal(translator(language_of(request)), exc))
        return physicist_page(request, results=[as_result(a) for a in answers])

    handler.__name__ = f"upload_{name}"
    return post(f"/physicist/dicom/{name}", opt={"action": action}, sync_to_thread=True, include_in_schema=False,
                status_code=200, request_max_body_size=UPLOAD_LIMITS[name])(handler)


def triage_of(data: dict) -> int | None:
    text = str(data.get("triage") or "").strip()
    return int(text) if text.isdigit() and 1 <= int(text) <= 5 else None


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
        results = send_dicom_now(backend(request), current(request), dicom_config(request), settings(request),
                                 [chosen] if chosen else None)
    except errors.LedgerError as exc:
        return exports_page(request, status_code=409, refusal=refusal(translator(language_of(request)), exc))
    return exports_page(request, results=results)


router = Router("/", route_handlers=[
    upload_page("plans", "imports.plans", lambda b, who, data: import_plans(b, who, data, triage_of(data))),
    upload_page("records", "imports.records",
                lambda b, who, data: import_records(b, who, data, str(data.get("utc_offset") or "") or None,
                                                    str(data.get("deviation_reason") or "").strip() or None)),
    upload_page("triage", "imports.triage", import_triage_list),
    download_dicom, send_dicom_from_form,
])
