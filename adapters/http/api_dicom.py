"""DICOM for the home physicists over HTTP: upload RT Plans (a result per file), baseline
records and the triage list; the DICOM export as a zip; a C-STORE send to a configured
destination. The work is done by the DICOM adapter's own functions (the ones
`fraction-ledger import/export/send dicom` call); this module only moves uploads into a
temporary folder, checks the caller's centre and answers.

A physicist imports for its own home centre: the records and triage lines of another
centre's courses are answered with a refusal, line by line, and change nothing.
"""

import re
import tempfile
import time
import tomllib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, FromQuery, JSONBody
from msgspec import Meta, Struct

from adapters.files import CONFIG, DICOM_FILE, MIB, TRIAGE_LIST, read_at_most, read_input_text, size_text, write_private
from adapters.http import access_log
from adapters.http.api_courses import backend
from adapters.http.api_exports import SendRefused, deliveries_of, folder_zip, settings, zip_response
from adapters.http.auth import current
from adapters.http.backend import Backend, actor_of
from adapters.http.errors import READ, WRITE, TooLarge, documented
from adapters.http.views import as_
from ledger import access, errors
from ledger.access import Principal
from schemas.api_ops import DeliveryOut, DeviationReason, ImportAnswer, SendIn, SendOut, StartsAt, TriageCode, UtcOffset

MAX_FILE = DICOM_FILE  # one uploaded file (a triage list: TRIAGE_LIST)
# One request, per route: the whole body is held while it is parsed, so each route takes what its
# files need (a few plans; a folder of small RT records; one triage list) and no more (413).
UPLOAD_LIMITS = {"plans": 64 * MIB, "records": 128 * MIB, "triage": TRIAGE_LIST, "reconcile": 128 * MIB}
MAX_UPLOAD = max(UPLOAD_LIMITS.values())
Upload = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART,
                                        description="`files`: one or more files (form field repeated)")]


class DicomDestination(Struct, frozen=True, forbid_unknown_fields=True):
    host: Annotated[str, Meta(min_length=1, max_length=253)]
    port: Annotated[int, Meta(ge=1, le=65535)]
    called_aet: Annotated[str, Meta(min_length=1, max_length=16)]
    calling_aet: Annotated[str, Meta(min_length=1, max_length=16)] = "FRACTIONLEDGER"
    timeout: Annotated[float, Meta(gt=0, le=300)] = 30.0  # each association step and C-STORE answer


class DicomConfig(Struct, frozen=True, forbid_unknown_fields=True):
    """`serve --dicom-config`: where the home OIS (or PACS) stores DICOM, by name:

        [destinations.ois]
        host = "ois.local"
        port = 104
        called_aet = "ARIA"
    """

    destinations: dict[str, DicomDestination] = {}

    @classmethod
    def load(cls, path: Path | str | None) -> "DicomConfig":
        if path is None:
            return cls()
        try:
            return msgspec.convert(tomllib.loads(read_input_text(path, CONFIG, "--dicom-config")), cls)
        except FileNotFoundError:
            raise ValueError(f"--dicom-config: {path} does not exist") from None
        except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"--dicom-config: {path}: {exc}") from None


def dicom_config(request: Request) -> DicomConfig:
    return getattr(request.app.state, "dicom", None) or DicomConfig()


def address(d: DicomDestination) -> str:
    from adapters.dicom.send import destination_name

    return destination_name(d.host, d.port, d.called_aet)


class CentreGuard:
    """The ledger application, with the caller's centre checked before each change of a course,
    so that the DICOM adapter's importers refuse (per file, per line) what the caller may not do."""

    GUARDED = ("log_fraction", "set_triage", "assign_centre")

    def __init__(self, app: Any, who: Principal, action: str):
        self._app, self._who, self._action = app, who, action

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._app, name)
        if name not in self.GUARDED:
            return method

        def checked(course_id: Any, *args: Any, **kw: Any) -> Any:
            course = self._app.get_course(course_id)
            access.check(self._who, self._action, course.home_centre, course.assigned_centres)
            return method(course_id, *args, **kw)

        return checked


class GuardedLedger:
    """What the importers use of a `Ledger`: the read model and a guarded application."""

    def __init__(self, b: Backend, who: Principal, action: str):
        self.read, self.fresh = b.ledger.read, b.ledger.fresh
        self.app = CentreGuard(b.app, who, action)
        self._app, self._who = b.app, who

    def sees(self, course_id: str) -> bool:
        """Need to know: the importers treat a course the caller may not see as unknown."""
        course = self._app.get_course(course_id)
        return access.sees(self._who, course.home_centre, course.assigned_centres)


def uploads(data: dict[str, Any], folder: Path, limit: int = MAX_FILE) -> list[tuple[str, Path]]:
    """The uploaded files saved under `folder` (0600), each with the name the user gave it; a
    file beyond `limit` refuses the whole upload (413) before anything is imported."""
    files = data.get("files") if isinstance(data, dict) else None
    files = files if isinstance(files, list) else [files] if files is not None else []
    saved = []
    for n, upload in enumerate(f for f in files if isinstance(f, UploadFile)):
        content = read_at_most(upload.file, limit)
        name = upload.filename or f"file-{n + 1}"
        if content is None:
            raise TooLarge("files", f"{name} is larger than {size_text(limit)}, the limit of one file; "
                                    "nothing was imported", limit)
        path = folder / f"{n:05d}-{re.sub(r'[^A-Za-z0-9._-]', '_', name)[-100:]}"
        write_private(path, content)
        saved.append((name, path))
    if not saved:
        raise errors.InvalidCommand("files", "invalid.no_file_uploaded_multipart")
    return saved


def named(answer: dict, names: dict[str, str]) -> dict:
    """An importer's answer, naming the file as uploaded rather than where it was saved."""
    return {**answer, "file": names.get(str(answer.get("file")), answer.get("file"))}


def import_plans(b: Backend, who: Principal, data: dict, triage: int | None = None,
                 fallback_for: str | None = None, starts_at: int | None = None) -> list[dict]:
    from adapters.dicom.plans import import_plan_file

    if fallback_for is not None:
        b.course_for(who, "courses.fallback_plan", fallback_for)
    with tempfile.TemporaryDirectory(prefix="fraction-ledger-upload-") as tmp:
        saved = uploads(data, Path(tmp))
        names = {str(p): name for name, p in saved}
        # The plan's home centre is the caller's (a partner's re-plan: the partner's).
        return [named(import_plan_file(b.app, p, actor_of(who), who.centre, triage, fallback_for, starts_at), names)
                for _, p in saved]


def zone_of(utc_offset: str | None) -> Any:
    """The zone of times that carry no offset: the one given (+01:00), else the department's."""
    from adapters.http.pages import zone

    if not utc_offset:
        return zone()
    try:
        found = datetime.fromisoformat(f"2000-01-01T00:00{utc_offset}").tzinfo
    except ValueError:
        found = None
    if found is None:
        raise errors.InvalidCommand("utc_offset", "invalid.not_offset_such_as", utc_offset=repr(utc_offset))
    return found


def import_records(b: Backend, who: Principal, data: dict, utc_offset: str | None = None,
                   deviation_reason: str | None = None) -> list[dict]:
    from adapters.dicom.baseline import Baseline

    tz = zone_of(utc_offset) if utc_offset else None  # else each centre's zone, then the department's
    with tempfile.TemporaryDirectory(prefix="fraction-ledger-upload-") as tmp:
        saved = uploads(data, Path(tmp))
        names = {str(p): name for name, p in saved}
        # The importer reads and writes the read model's tables: serialised with the other readers.
        return b.read(lambda _: [named(a, names) for a in Baseline(
            GuardedLedger(b, who, "imports.records"), actor_of(who), tz, deviation_reason
        ).import_files([p for _, p in saved])])


def import_triage_list(b: Backend, who: Principal, data: dict) -> list[dict]:
    from adapters.dicom.triage import import_triage

    with tempfile.TemporaryDirectory(prefix="fraction-ledger-upload-") as tmp:
        saved = uploads(data, Path(tmp), TRIAGE_LIST)
        answers: list[dict] = []
        for name, path in saved:
            lines = b.read(lambda _: list(import_triage(GuardedLedger(b, who, "imports.triage"), path, actor_of(who))))
            answers += [{**a, "file": name} for a in lines]
        return answers


def upload_route(path: str, action: str, summary: str, run, params: str, limit: int):
    """A multipart upload route; `params` lists the query parameters it documents."""
    if params == "plans":
        def handler(request: Request, data: Upload, triage: FromQuery[TriageCode | None] = None,
                    fallback_for: FromQuery[str | None] = None,
                    starts_at: FromQuery[StartsAt | None] = None) -> list[ImportAnswer]:
            return [as_(ImportAnswer, a) for a in run(backend(request), current(request), data, triage, fallback_for,
                                                      starts_at)]
    elif params == "records":
        def handler(request: Request, data: Upload,  # type: ignore[misc]
                    utc_offset: FromQuery[UtcOffset | None] = None,
                    deviation_reason: FromQuery[DeviationReason | None] = None,
                    ) -> list[ImportAnswer]:
            return [as_(ImportAnswer, a) for a in run(backend(request), current(request), data, utc_offset,
                                                      deviation_reason)]
    else:
        def handler(request: Request, data: Upload) -> list[ImportAnswer]:  # type: ignore[misc]
            return [as_(ImportAnswer, a) for a in run(backend(request), current(request), data)]

    handler.__name__ = action.replace(".", "_")
    return post(path, opt={"action": action}, sync_to_thread=True, status_code=200, request_max_body_size=limit,
                responses=documented(*WRITE), summary=f"{summary} (at most {size_text(limit)} a request)")(handler)


def home_exports(b: Backend, who: Principal, course_id: str | None, since: datetime | None,
                 out: Path) -> Iterator[Any]:
    """The DICOM export (records, summaries, partners' plans) of the caller's home courses."""
    from adapters.dicom.export import export_all

    if since is not None and since.tzinfo is None:
        raise errors.InvalidCommand("since", "invalid.add_timezone_offset_e")
    if course_id is not None:
        b.course_for(who, "exports", course_id)
        ids = [course_id]
    else:
        ids = [c["id"] for c in b.read(lambda r: r.courses(centre=who.centre)) if c["home_centre"] == who.centre]
    for cid in ids:
        access_log.saw(cid)
        yield from export_all(b.app, b.ledger.read, out, cid, since)


def dicom_zip(b: Backend, who: Principal, course_id: str | None = None, since: datetime | None = None) -> bytes:
    with tempfile.TemporaryDirectory(prefix="fraction-ledger-export-") as tmp:
        for _ in home_exports(b, who, course_id, since, Path(tmp)):
            pass
        return folder_zip(Path(tmp))


@get("/api/exports/dicom", opt={"action": "exports"}, sync_to_thread=True, media_type="application/zip",
     responses={**documented(*READ), 200: ResponseSpec(data_container=bytes, media_type="application/zip",
                                                       description="<course id>/record_*.dcm, summary.dcm, plan_*.dcm")},
     summary="DICOM RT records, summaries and partners' plans of the caller's home courses, as a zip")
def export_dicom(request: Request, course_id: FromQuery[str | None] = None,
                 since: FromQuery[datetime | None] = None) -> Response[bytes]:
    who = current(request)
    return zip_response(dicom_zip(backend(request), who, course_id, since), f"dicom-{who.centre}")


def until(items: Iterator[Any], deadline_at: float, stopped: list[str]) -> Iterator[Any]:
    """The items while time is left: a send stops between two C-STOREs at its deadline."""
    for item in items:
        if time.monotonic() >= deadline_at:
            stopped.append("the send deadline passed")
            return
        yield item


def send_dicom_now(b: Backend, who: Principal, config: DicomConfig, hl7: Any,
                   names: list[str] | None = None, course_id: str | None = None,
                   since: datetime | None = None) -> list[dict]:
    """C-STORE to the named (default: every configured) destination; one send at a time (HL7 or
    DICOM: `hl7.sending`), bounded by the server's send deadline (`hl7.deadline`)."""
    from adapters.dicom.send import send_all

    unknown = sorted(set(names or ()) - set(config.destinations))
    if unknown:
        raise errors.InvalidCommand("destinations", "invalid.unknown_known", unknown=', '.join(unknown), join=', '.join(config.destinations) or 'none: serve --dicom-config')
    chosen = list(names or ()) or list(config.destinations)
    if not chosen:
        raise SendRefused("send_refused.no_dicom_destination")
    lock, deadline = hl7.sending, hl7.deadline
    if not lock.acquire(blocking=False):
        raise SendRefused("send_refused.busy")
    try:
        deadline_at, out = time.monotonic() + deadline, []
        for name in chosen:
            d = config.destinations[name]
            stopped: list[str] = []
            with tempfile.TemporaryDirectory(prefix="fraction-ledger-send-") as tmp:
                items = until(home_exports(b, who, course_id, since, Path(tmp)), deadline_at, stopped)
                report = send_all(b.app, items, name, d.host, d.port, d.called_aet, d.calling_aet, actor_of(who),
                                  timeout=d.timeout).to_dict()
            failure = report["error"] or (stopped[0] + f" ({deadline:g} s)" if stopped else None)
            out.append({"destination": name, "address": report["address"], "sent": report["sent"],
                        "accepted": report["accepted"], "skipped": report["already_accepted"],
                        "refused": [{"control_id": r["uid"], "code": r["status"], "text": r["reason"],
                                     "kind": r["kind"], "course": r["course_id"]} for r in report["refused"]],
                        "failure": failure and f"{failure}; every answer before it is recorded, send again to resume"})
        return out
    finally:
        lock.release()


@post("/api/sends/dicom", opt={"action": "sends", "body": SendIn}, sync_to_thread=True, status_code=200,
      responses=documented(*WRITE),
      summary="C-STORE to the configured DICOM destinations what each has not accepted; its answers per destination")
def send_dicom(request: Request, data: JSONBody[SendIn]) -> list[SendOut]:
    rows = send_dicom_now(backend(request), current(request), dicom_config(request), settings(request),
                          list(data.destinations), data.course_id, data.since)
    return [as_(SendOut, row) for row in rows]


def dicom_deliveries(b: Backend, config: DicomConfig) -> list[dict]:
    rows = []
    from adapters.dicom.send import accepted_by, stream_name

    for name, d in config.destinations.items():
        found = b.app.destinations.destination(stream_name(name))
        accepted = accepted_by(b.app, name, address(d))
        rows.append({
            "destination": name, "address": address(d), "kind": "dicom",
            "accepted": len(accepted), "exported": 0,
            "last_accepted_at": max(accepted.values()) if accepted else None,
            "refused": [{"control_id": k, **v} for k, v in sorted(found.refused.items())] if found else [],
        })
    return rows


@get("/api/deliveries", opt={"action": "deliveries.read"}, sync_to_thread=True, responses=documented(*READ),
     summary="What each destination (HL7 and DICOM) accepted, refused (with its reason: of the courses the caller sees) "
             "or was given in a file")
def deliveries(request: Request) -> list[DeliveryOut]:
    b = backend(request)
    rows = deliveries_of(b, settings(request)) + dicom_deliveries(b, dicom_config(request))
    return [as_(DeliveryOut, row) for row in b.seen_refusals(current(request), rows)]


ROUTES = [
    upload_route("/api/imports/plans", "imports.plans",
                 "Register courses from RT Plan files (home centre: the caller's), or with `fallback_for` "
                 "attach a partner's re-plans to a course (`starts_at`: the course's fraction that is the re-plan's "
                 "fraction 1, default the first not yet delivered); a result per file", import_plans, "plans",
                 UPLOAD_LIMITS["plans"]),
    upload_route("/api/imports/records", "imports.records",
                 "Import the pre-outage baseline: RT Beams Treatment and Summary Records; a result per file. "
                 "`deviation_reason` confirms records whose metersets differ from the plan beyond tolerance",
                 import_records, "records", UPLOAD_LIMITS["records"]),
    upload_route("/api/imports/triage", "imports.triage",
                 "Import a triage list (CSV: patient_id,plan,triage,centre); a result per line",
                 import_triage_list, "triage", UPLOAD_LIMITS["triage"]),
    export_dicom, send_dicom, deliveries,
]
router = Router("/", route_handlers=ROUTES, tags=["DICOM"])
