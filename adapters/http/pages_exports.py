"""The physicist's exports page: download the HL7 messages of the home courses as a zip,
send them to the configured destinations, and see per destination what was accepted,
refused (with the receiver's reason) or handed over in a file.

The work is done by the API's functions (`api_exports`), so the page and the API give the
same zip, the same send and the same status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar.params import FromQuery
from litestar import Request, Response, Router, get, post
from litestar.response import Template

from adapters.http.api_dicom import address as dicom_address
from adapters.http.api_dicom import dicom_config, dicom_deliveries
from adapters.http.api_exports import address, deliveries_of, hl7_zip, send_hl7_now, settings, zip_response
from adapters.http.auth import current
from adapters.http.i18n import language_of, translator
from adapters.http.pages import Form, backend, check_form, local_input, page, refusal
from ledger import errors
from schemas.api_ops import SendIn


def exports_page(request: Request, status_code: int = 200, **context: Any) -> Template:
    hl7, dicom, b = settings(request), dicom_config(request), backend(request)
    destinations = [{"name": n, "address": address(d), "messages": d.messages} for n, d in hl7.destinations.items()]
    dicom_destinations = [{"name": n, "address": dicom_address(d)} for n, d in dicom.destinations.items()]
    return page(request, "exports.html", status_code=status_code, destinations=destinations,
                dicom_destinations=dicom_destinations, deadline=f"{hl7.deadline:g}",
                deliveries=b.seen_refusals(current(request), deliveries_of(b, hl7) + dicom_deliveries(b, dicom)),
                **context)


@get("/physicist/exports", opt={"action": "exports"}, sync_to_thread=True, include_in_schema=False)
def exports_home(request: Request) -> Template:
    return exports_page(request)


def local_time(text: str | None) -> datetime | None:
    return local_input(text, "since")


@get("/physicist/exports/hl7.zip", opt={"action": "exports"}, sync_to_thread=True, include_in_schema=False)
def download_hl7(request: Request, since: FromQuery[str | None] = None) -> Response:
    who = current(request)
    try:
        data = hl7_zip(backend(request), who, settings(request), since=local_time(since), lang=language_of(request))
    except errors.LedgerError as exc:
        return exports_page(request, status_code=409, refusal=refusal(translator(language_of(request)), exc))
    return zip_response(data, f"hl7-{who.centre}")


@post("/physicist/sends/hl7", opt={"action": "sends"}, sync_to_thread=True, include_in_schema=False, status_code=200)
def send_from_form(request: Request, data: Form) -> Template:
    # A worker thread: the send waits on receivers, never on the server's event loop.
    who, chosen = current(request), str(data.get("destination") or "")
    try:
        check_form(SendIn, {"destinations": [chosen] if chosen else []})
        results = send_hl7_now(backend(request), who, settings(request), [chosen] if chosen else None,
                               lang=language_of(request))
    except errors.LedgerError as exc:
        return exports_page(request, status_code=400 if isinstance(exc, errors.InvalidCommand) else 409, refusal=refusal(translator(language_of(request)), exc))
    return exports_page(request, results=results)


router = Router("/", route_handlers=[exports_home, download_hl7, send_from_form])
