"""Recovery over HTTP for the home physicists: upload the restored OIS's treatment records and
get the reconciliation (JSON, or the printable report), the import set of exactly what the OIS
lacks (a zip with its manifest), and acknowledge an import set once the OIS has taken it.

The work is `adapters.recovery` (what `fraction-ledger reconcile` calls), limited to the
caller's home courses: a centre reconciles its own OIS.
"""

import tempfile
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

from litestar import Request, Response, Router, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, JSONBody
from msgspec import Meta, Struct

from adapters.http import access_log
from adapters.http.api_courses import backend
from adapters.http.api_dicom import UPLOAD_LIMITS, Upload, uploads, zone_of
from adapters.http.api_exports import folder_zip, zip_response
from adapters.http.auth import current
from adapters.http.backend import Backend, actor_of
from adapters.http.errors import WRITE, documented
from adapters.http.i18n import language_of
from adapters.http.views import as_
from ledger import errors
from ledger.access import Principal
from schemas.course import AwareDatetime


class ReconcileOut(Struct, frozen=True, kw_only=True):
    """What the OIS lacks, what it has that the ledger does not, what conflicts; per course and in total."""

    totals: dict[str, int]
    missing_in_ois: list[dict[str, Any]]
    unknown_to_ledger: list[dict[str, Any]]
    conflicts: list[dict[str, Any]]
    courses: list[dict[str, Any]]
    courses_only_in_ledger: list[dict[str, Any]] = []
    courses_only_in_ois: list[dict[str, Any]] = []
    unreadable_files: list[dict[str, Any]] = []
    restore_point: str | None = None
    mu_tolerance: str | None = None
    log_head: str | None = None


class ImportItem(Struct, frozen=True, kw_only=True):
    course_id: str
    group: int
    number: int
    record_ids: list[str]


class AcknowledgeIn(Struct, frozen=True, kw_only=True):
    """An import set's manifest (`import-set.json`) as written: other keys are ignored."""

    set_id: Annotated[str, Meta(min_length=1, max_length=100)]
    items: Annotated[list[ImportItem], Meta(max_length=100_000)]


class AcknowledgeOut(Struct, frozen=True, kw_only=True):
    set_id: str
    status: str
    by: str
    fractions: int
    acknowledged_at: datetime | None = None


class Options(Struct, frozen=True):
    restore_point: datetime | None = None
    tolerance: Decimal | None = None
    utc_offset: str | None = None


def options(restore_point: datetime | None, mu_tolerance: str | None, utc_offset: str | None) -> Options:
    if restore_point is not None and restore_point.tzinfo is None:
        raise errors.InvalidCommand("restore_point", "invalid.add_timezone_offset_e_2")
    tolerance = None
    if mu_tolerance is not None:
        try:
            tolerance = Decimal(mu_tolerance)
        except InvalidOperation:
            tolerance = None
        if tolerance is None or not tolerance.is_finite() or tolerance < 0:
            raise errors.InvalidCommand("mu_tolerance", "invalid.not_number_mu_or", mu_tolerance=repr(mu_tolerance))
    return Options(restore_point, tolerance, utc_offset)


def reconciled(b: Backend, who: Principal, data: dict, opts: Options, then=None) -> Any:
    """Reconcile the uploaded OIS records against the caller's home courses; `then(result, folder)`
    runs while the uploads are still on disk."""
    from adapters.recovery import run

    # Times without an offset: as given, else in the caller's centre's zone (`FractionLedger.zone_of`).
    tz = zone_of(opts.utc_offset) if opts.utc_offset else b.app.zone_of(who.centre)
    with tempfile.TemporaryDirectory(prefix="fraction-ledger-ois-") as tmp:
        saved = uploads(data, Path(tmp))
        names = {str(p): name for name, p in saved}
        result = b.read(lambda _: run(b.ledger, [p for _, p in saved], tz, opts.restore_point, opts.tolerance,
                                      home_centre=who.centre))
        for problem in result["unreadable_files"]:
            problem["file"] = names.get(problem["file"], problem["file"])
        access_log.saw_rows(result["courses"], key="course_id")
        return then(result, Path(tmp)) if then else result


def import_set_zip(b: Backend, who: Principal, result: dict, charges: bool = False) -> bytes:
    from adapters.http.api_exports import Hl7Settings
    from adapters.recovery import export_import_set

    builder = Hl7Settings().builder if charges else None
    with tempfile.TemporaryDirectory(prefix="fraction-ledger-set-") as tmp:
        b.read(lambda _: export_import_set(b.ledger, result, Path(tmp), builder))
        return folder_zip(Path(tmp))


def report_html(b: Backend, result: dict, who: Principal, lang: str) -> str:
    """The printable report in the page's (or the API client's) language, made for `who`."""
    from adapters.i18n import words
    from adapters.recovery import render_report

    return render_report(result, words(lang).report("rr_upload_by", user=who.user), b.app.clock(), lang)


RestorePoint = FromQuery[AwareDatetime | None]
Tolerance = FromQuery[Annotated[str, Meta(max_length=20)] | None]
Offset = FromQuery[Annotated[str, Meta(max_length=10)] | None]


@post("/api/reconcile", opt={"action": "reconcile"}, sync_to_thread=True, status_code=200,
      request_max_body_size=UPLOAD_LIMITS["reconcile"], responses=documented(*WRITE),
      summary="Reconcile the restored OIS's records (multipart `files`) against the caller's home courses")
def reconcile(request: Request, data: Upload, restore_point: RestorePoint = None, mu_tolerance: Tolerance = None,
              utc_offset: Offset = None) -> ReconcileOut:
    b, who = backend(request), current(request)
    return as_(ReconcileOut, reconciled(b, who, data, options(restore_point, mu_tolerance, utc_offset)))


@post("/api/reconcile/report", opt={"action": "reconcile"}, sync_to_thread=True, status_code=200,
      media_type="text/html", request_max_body_size=UPLOAD_LIMITS["reconcile"], responses=documented(*WRITE),
      summary="The same reconciliation as the printable HTML report")
def reconcile_report(request: Request, data: Upload, restore_point: RestorePoint = None,
                     mu_tolerance: Tolerance = None, utc_offset: Offset = None) -> Response[str]:
    b, who = backend(request), current(request)
    result = reconciled(b, who, data, options(restore_point, mu_tolerance, utc_offset))
    return Response(report_html(b, result, who, language_of(request)), media_type="text/html; charset=utf-8")


@post("/api/reconcile/import-set", opt={"action": "reconcile"}, sync_to_thread=True, status_code=200,
      media_type="application/zip", request_max_body_size=UPLOAD_LIMITS["reconcile"],
      responses={**documented(*WRITE), 200: ResponseSpec(data_container=bytes, media_type="application/zip",
                                                         description="import-set.json and the records per course")},
      summary="The import set of exactly what the OIS lacks: records, refreshed summaries (and HL7 charges)")
def reconcile_import_set(request: Request, data: Upload, restore_point: RestorePoint = None,
                         mu_tolerance: Tolerance = None, utc_offset: Offset = None,
                         charges: FromQuery[bool] = False) -> Response[bytes]:
    b, who = backend(request), current(request)
    result = reconciled(b, who, data, options(restore_point, mu_tolerance, utc_offset))
    return zip_response(import_set_zip(b, who, result, charges), f"import-set-{who.centre}")


def acknowledge_set(b: Backend, who: Principal, data: AcknowledgeIn) -> dict:
    for item in data.items:
        b.course_for(who, "reconcile", item.course_id)
    items = [{"course_id": i.course_id, "group": i.group, "number": i.number, "record_ids": list(i.record_ids)}
             for i in data.items]
    return b.app.ois.acknowledge_import(data.set_id, items, who.user, actor_of(who))


@post("/api/reconcile/acknowledge", opt={"action": "reconcile", "body": AcknowledgeIn}, sync_to_thread=True,
      status_code=200, responses=documented(*WRITE),
      summary="Record that the OIS imported an import set (post its import-set.json); the caller is who checked")
def acknowledge(request: Request, data: JSONBody[AcknowledgeIn]) -> AcknowledgeOut:
    return as_(AcknowledgeOut, acknowledge_set(backend(request), current(request), data))


router = Router("/", route_handlers=[reconcile, reconcile_report, reconcile_import_set, acknowledge],
                tags=["recovery"])
