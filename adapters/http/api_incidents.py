"""Incidents: register (at the caller's centre, by the caller), follow up, close, list,
and the export a home centre gets back (JSON or CSV), as `fraction-ledger incident ...`."""


from typing import Literal

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from adapters.http.api_courses import IdempotencyKey, backend
from adapters.http import access_log
from adapters.http.auth import current
from adapters.http.backend import Backend, actor_of, request_id_for
from adapters.http.errors import READ, WRITE, documented
from adapters.http.paging import Limit, Offset, api_paging, paged
from adapters.http.views import as_
from adapters.reports import incidents_csv
from ledger.access import Principal
from schemas.api_ops import CloseIn, FollowUpIn, IncidentChangeOut, IncidentIn, IncidentOut

Status = Literal["open", "closed"]


def incident_for(b: Backend, who: Principal, action: str, incident_id: str) -> None:
    """404 if unknown or not seen by the caller (alike); 403 unless the caller may take `action`
    on it (`Backend.incident_for`)."""
    b.incident_for(who, action, incident_id)


def register(b: Backend, who: Principal, data: IncidentIn, rid: str | None) -> dict:
    if data.course_id is not None:
        b.course_for(who, "incidents.register", data.course_id)
    body = {"centre": who.centre, "category": data.category, "severity": data.severity,
            "description": data.description, "course_id": data.course_id, "fraction": data.fraction,
            "occurred_at": data.occurred_at, "by": who.user}
    return b.app.billing.register_incident(body, actor_of(who), request_id=rid)


@post("/", opt={"action": "incidents.register", "body": IncidentIn}, sync_to_thread=True, status_code=201,
      responses=documented(*WRITE), summary="Register an incident at the caller's centre (about a course or not)")
def register_incident(request: Request, data: JSONBody[IncidentIn],
                      idempotency_key: IdempotencyKey = None) -> IncidentChangeOut:
    who = current(request)
    return as_(IncidentChangeOut, register(backend(request), who, data, request_id_for(who, idempotency_key)))


@get("/", opt={"action": "incidents.read"}, sync_to_thread=True, responses=documented(*READ),
     summary="Incidents the caller may see (its centre's, and those of the courses it sees), oldest first, a page at a time")
def list_incidents(request: Request, course_id: FromQuery[str | None] = None, status: FromQuery[Status | None] = None,
                   centre: FromQuery[str | None] = None, limit: Limit = None,
                   offset: Offset = None) -> Response[list[IncidentOut]]:
    b, who = backend(request), current(request)
    size, skip = api_paging(limit, offset)
    if course_id is not None:
        b.course_view(who, course_id)  # 404/403 as for the course itself
    rows, total = b.incidents_page(who, centre=centre, course_id=course_id, status=status, limit=size, offset=skip)
    access_log.saw_rows(rows, key="course_id")
    return paged(request, [as_(IncidentOut, row) for row in rows], total, size, skip)


def exported(request: Request, centre: str | None) -> tuple[str, list[dict]]:
    """What a home centre gets back, of the incidents the caller sees."""
    who = current(request)
    home = centre or who.centre
    rows = backend(request).incidents_view(who, home_centre=home)
    access_log.saw_rows(rows, key="course_id")
    return home, rows


@get("/export", opt={"action": "incidents.export"}, sync_to_thread=True, responses=documented(*READ),
     summary="Incidents to return to a home centre (about its patients, and its own); default: the caller's centre")
def export_incidents(request: Request, centre: FromQuery[str | None] = None) -> list[IncidentOut]:
    return [as_(IncidentOut, row) for row in exported(request, centre)[1]]


@get("/export.csv", opt={"action": "incidents.export"}, sync_to_thread=True, media_type="text/csv",
     responses=documented(*READ), summary="The same as CSV (as `fraction-ledger incident export --csv`)")
def export_incidents_csv(request: Request, centre: FromQuery[str | None] = None) -> Response[str]:
    home, rows = exported(request, centre)
    return Response(incidents_csv(rows), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="incidents-{safe(home)}.csv"'})


def safe(name: str) -> str:
    """A file name for Content-Disposition: ASCII letters, digits and -_. only (headers are latin-1)."""
    return "".join(c if (c.isascii() and c.isalnum()) or c in "-_." else "_" for c in name)[:64]


def incident_command(path: str, action: str, body: type, summary: str, run):
    def handler(request: Request, incident_id: FromPath[str], data: JSONBody[body],  # type: ignore[valid-type]
                idempotency_key: IdempotencyKey = None) -> IncidentChangeOut:
        b, who = backend(request), current(request)
        incident_for(b, who, action, incident_id)
        return as_(IncidentChangeOut, run(b.app, incident_id, data, who, request_id_for(who, idempotency_key)))

    handler.__name__ = action.replace(".", "_")
    return post("/{incident_id:str}" + path, opt={"action": action, "body": body}, sync_to_thread=True,
                status_code=200, responses=documented(*WRITE), summary=summary)(handler)


ROUTES = [
    register_incident, list_incidents, export_incidents, export_incidents_csv,
    incident_command("/follow-up", "incidents.follow_up", FollowUpIn, "Add a follow-up to an open incident",
                     lambda app, iid, d, who, rid: app.billing.add_follow_up(iid, d.text, actor_of(who), request_id=rid)),
    incident_command("/close", "incidents.close", CloseIn, "Close an incident; nothing can be added after",
                     lambda app, iid, d, who, rid: app.billing.close_incident(iid, d.resolution, actor_of(who), request_id=rid)),
]

router = Router("/api/incidents", route_handlers=ROUTES, tags=["incidents"])
