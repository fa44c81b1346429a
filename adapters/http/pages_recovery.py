"""The physicist's recovery page: upload the restored OIS's records; see what it lacks, what
it has that the ledger does not and what conflicts; open the printable report or download
the import set (the same form, another button: the files stay selected); acknowledge an
import set by uploading its manifest. The work is `api_recovery`'s, as for the API."""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.response import Template

from adapters.files import MANIFEST_SIZE, read_at_most
from adapters.http import access_log
from adapters.http.api_dicom import UPLOAD_LIMITS
from adapters.http.api_exports import zip_response
from adapters.http.api_recovery import AcknowledgeIn, acknowledge_set, import_set_zip, options, reconciled, report_html
from adapters.http.auth import current
from adapters.http.errors import status_of, validate_body
from adapters.http.i18n import language_of, translator
from adapters.http.pages import backend, local_input, page, refusal, zone
from adapters.http.pages_dicom import Multipart
from ledger import errors


def kept(request: Request) -> dict:
    """The last reconciliation of each physicist, kept in the server's memory (never on disk: it names
    patients) so that the report and the import set come from it without uploading the files again."""
    if not hasattr(request.app.state, "reconciliations"):
        request.app.state.reconciliations = {}
    return request.app.state.reconciliations


def last_of(request: Request) -> dict | None:
    who = current(request)
    found = kept(request).get(who.user)
    return found if found and found["centre"] == who.centre else None


def recovery_page(request: Request, status_code: int = 200, **context: Any) -> Template:
    last = last_of(request)
    if "result" not in context and last is not None:
        context["result"] = last["result"]
        access_log.saw_rows(last["result"]["courses"], key="course_id")
    return page(request, "recovery.html", status_code=status_code, zone=zone().key, last=last, **context)


@get("/physicist/recovery", opt={"action": "reconcile"}, sync_to_thread=True, include_in_schema=False)
def recovery_home(request: Request) -> Template:
    return recovery_page(request)


def the_last(request: Request) -> dict:
    last = last_of(request)
    if last is None:
        raise errors.InvalidCommand("files", "invalid.choose_ois_records_first")
    access_log.saw_rows(last["result"]["courses"], key="course_id")
    return last


def from_the_last(request: Request, answer: Any) -> Response | Template:
    """`answer(last)` from the kept reconciliation; with nothing kept yet, the recovery page says so,
    where the files are chosen."""
    try:
        last = the_last(request)
    except errors.LedgerError as exc:
        return recovery_page(request, refusal=refusal(translator(language_of(request)), exc))
    return answer(last)


@get("/physicist/recovery/report", opt={"action": "reconcile"}, sync_to_thread=True, include_in_schema=False)
def last_report(request: Request) -> Response | Template:
    return from_the_last(request, lambda last: Response(
        report_html(backend(request), last["result"], current(request), language_of(request)),
        media_type="text/html; charset=utf-8"))


@get("/physicist/recovery/import-set.zip", opt={"action": "reconcile"}, sync_to_thread=True, include_in_schema=False)
def last_import_set(request: Request) -> Response | Template:
    return from_the_last(request, lambda last: zip_response(
        import_set_zip(backend(request), current(request), last["result"]), f"import-set-{last['centre']}"))


def form_options(data: dict) -> Any:
    point = local_input(str(data.get("restore_point") or "").strip(), "restore_point")
    tolerance = str(data.get("mu_tolerance") or "").strip() or None
    return options(point, tolerance, str(data.get("utc_offset") or "").strip() or None)


@post("/physicist/recovery", opt={"action": "reconcile"}, sync_to_thread=True, include_in_schema=False,
      status_code=200, request_max_body_size=UPLOAD_LIMITS["reconcile"])
def reconcile_form(request: Request, data: Multipart) -> Template | Response:
    b, who = backend(request), current(request)
    output = str(data.get("output") or "page")
    try:
        opts = form_options(data)
        result = reconciled(b, who, data, opts)
        files = data.get("files")
        count = len(files) if isinstance(files, list) else int(files is not None)
        kept(request)[who.user] = {"result": result, "centre": who.centre, "at": b.app.clock(), "files": count}
        if output == "report":
            return Response(report_html(b, result, who, language_of(request)), media_type="text/html; charset=utf-8")
        if output == "import_set":
            return zip_response(import_set_zip(b, who, result), f"import-set-{who.centre}")
    except errors.LedgerError as exc:
        return recovery_page(request, status_code=status_of(exc), refusal=refusal(translator(language_of(request)), exc))
    return recovery_page(request, result=result)


@post("/physicist/recovery/acknowledge", opt={"action": "reconcile"}, sync_to_thread=True, include_in_schema=False,
      status_code=200, request_max_body_size=MANIFEST_SIZE)
def acknowledge_form(request: Request, data: Multipart) -> Template:
    import msgspec

    b, who, t = backend(request), current(request), translator(language_of(request))
    upload = data.get("manifest")
    try:
        if not isinstance(upload, UploadFile):
            raise errors.InvalidCommand("manifest", "invalid.choose_import_set_s")
        try:
            raw = json.loads(read_at_most(upload.file, MANIFEST_SIZE) or b"")
        except ValueError as exc:
            raise errors.InvalidCommand("manifest", "invalid.not_import_set_manifest", exc=exc) from None
        validate_body(AcknowledgeIn, raw)
        result = acknowledge_set(b, who, msgspec.convert(raw, AcknowledgeIn, strict=False))
    except errors.LedgerError as exc:
        return recovery_page(request, status_code=400, refusal=refusal(t, exc))
    return recovery_page(request, acknowledged=result)


router = Router("/", route_handlers=[recovery_home, reconcile_form, acknowledge_form, last_report, last_import_set])
