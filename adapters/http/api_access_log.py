"""The access log, for the administrator and the privacy officer: per patient, per user, per
course, newest first; each of them sees what concerns its centre (read by its people, or of
its patients). Read only: no route changes an entry. Reading it is itself logged."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Request, Router, get
from litestar.params import QueryParameter
from litestar.response import Template

from adapters.http import access_log
from adapters.http.auth import current
from adapters.http.errors import READ, documented
from ledger import access

Filter = Annotated[str | None, QueryParameter(min_length=1, max_length=64)]
FormField = Annotated[str | None, QueryParameter(max_length=64)]  # the page's form sends empty fields
Limit = Annotated[int, QueryParameter(ge=1, le=5000)]
DEFAULT_LIMIT = 500


class AccessEntryOut(msgspec.Struct, frozen=True, kw_only=True):
    """One read of patient data (one row per course it showed; none for a read that showed none)."""

    entry_id: str
    position: int
    at: str
    user: str
    role: str
    centre: str
    channel: str
    client: str
    action: str
    path: str
    course_id: str | None = None
    patient_id: str | None = None
    home_centre: str | None = None


def entries(request: Request, patient: str | None, user: str | None, course: str | None, limit: int) -> list[dict]:
    who = current(request)
    centre = access.centre_filter(who, "access_log.read")
    rows = request.app.state.backend.read(
        lambda r: r.access_log(patient=patient, user=user, course=course, centre=centre, limit=limit))
    access_log.saw_rows(rows, key="course_id")  # the log names patients: reading it is a read too
    return rows


@get("/api/access-log", opt={"action": "access_log.read"}, sync_to_thread=True, responses=documented(*READ),
     tags=["access log"], summary="Who read which patient's data, when, what and from where (NEN 7513)")
def list_access(request: Request, patient: Filter = None, user: Filter = None, course: Filter = None,
                limit: Limit = DEFAULT_LIMIT) -> list[AccessEntryOut]:
    return [msgspec.convert(r, AccessEntryOut) for r in entries(request, patient, user, course, limit)]


@get("/access-log", opt={"action": "access_log.read"}, sync_to_thread=True, include_in_schema=False)
def access_log_page(request: Request, patient: FormField = None, user: FormField = None,
                    course: FormField = None) -> Template:
    from adapters.http.pages import page

    rows = entries(request, patient or None, user or None, course or None, DEFAULT_LIMIT)
    return page(request, "access_log.html", rows=rows, limit=DEFAULT_LIMIT,
                form={"patient": patient or "", "user": user or "", "course": course or ""})


router = Router("/", route_handlers=[list_access, access_log_page])
