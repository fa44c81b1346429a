"""Treatment gaps and prescription amendments: the worklist, a course's gap category and
schedule, amendments and their countersignature (ledger/amendments.py, ledger/gaps.py)."""

from __future__ import annotations

from litestar import Request, Router, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from adapters.http.api_courses import IdempotencyKey, backend
from adapters.http.auth import current
from adapters.http.backend import actor_of, request_id_for
from adapters.http.errors import READ, WRITE, documented
from adapters.http.views import as_
from adapters.runtime import physicists_prescribe
from ledger import access
from schemas.api import CourseChangeOut
from schemas.prescription import AmendmentOut, AmendPrescription, GapCategoryArg, GapOut, ScheduleArg

@get("/api/gaps", opt={"action": "gaps.read"}, sync_to_thread=True, responses=documented(*READ),
     summary="The gaps worklist: every active course the caller sees, by urgency (category, then prolongation)")
def gaps_worklist(request: Request, centre: FromQuery[str | None] = None) -> list[GapOut]:
    """`centre`: only the courses whose home or assigned centre this is."""
    return [as_(GapOut, row) for row in backend(request).gaps_view(current(request), centre)]


@post("/api/courses/{course_id:str}/gap-category", opt={"action": "courses.gap_category", "body": GapCategoryArg},
      sync_to_thread=True, status_code=200, responses=documented(*WRITE),
      summary="Set the gap category (1-3) of a course (a physician); it replaces the site's default")
def set_gap_category(request: Request, course_id: FromPath[str], data: JSONBody[GapCategoryArg],
                     idempotency_key: IdempotencyKey = None) -> CourseChangeOut:
    b, who = backend(request), current(request)
    b.course_for(who, "courses.gap_category", course_id)
    return as_(CourseChangeOut, b.app.gaps.set_gap_category(course_id, data.category, actor_of(who),
                                                       request_id=request_id_for(who, idempotency_key)))


@post("/api/courses/{course_id:str}/schedule", opt={"action": "courses.schedule", "body": ScheduleArg},
      sync_to_thread=True, status_code=200, responses=documented(*WRITE),
      summary="Set the intended schedule and treatment site of a course")
def set_schedule(request: Request, course_id: FromPath[str], data: JSONBody[ScheduleArg],
                 idempotency_key: IdempotencyKey = None) -> CourseChangeOut:
    b, who = backend(request), current(request)
    b.course_for(who, "courses.schedule", course_id)
    return as_(CourseChangeOut, b.app.gaps.set_schedule(course_id, data.schedule, data.site, actor_of(who),
                                                   request_id=request_id_for(who, idempotency_key)))


@post("/api/courses/{course_id:str}/amendments", opt={"action": "courses.amend", "body": AmendPrescription},
      sync_to_thread=True, status_code=201, responses=documented(*WRITE),
      summary="Propose a prescription amendment (it changes nothing until countersigned)",
      description="kind: fractions (the group's new number), extra_fractions (so many more), twice_daily or "
                  "treatment_day (a compensation day). Proposed by an oncologist (a physicist where "
                  "FRACTION_LEDGER_PHYSICISTS_PRESCRIBE=1).")
def amend(request: Request, course_id: FromPath[str], data: JSONBody[AmendPrescription],
          idempotency_key: IdempotencyKey = None) -> AmendmentOut:
    b, who = backend(request), current(request)
    b.course_for(who, "courses.amend", course_id)
    access.check_prescriber(who, physicists_prescribe())
    return as_(AmendmentOut, b.app.gaps.amend_prescription(course_id, data, actor_of(who),
                                                      request_id=request_id_for(who, idempotency_key)))


@post("/api/courses/{course_id:str}/amendments/{amendment_id:str}/countersign",
      opt={"action": "courses.countersign"}, sync_to_thread=True, status_code=200, responses=documented(*WRITE),
      summary="Countersign an amendment: it takes effect (a second prescriber or a physicist, never its prescriber)")
def countersign(request: Request, course_id: FromPath[str], amendment_id: FromPath[str],
                idempotency_key: IdempotencyKey = None) -> AmendmentOut:
    b, who = backend(request), current(request)
    b.course_for(who, "courses.countersign", course_id)
    return as_(AmendmentOut, b.app.gaps.countersign_amendment(course_id, amendment_id, actor_of(who),
                                                         request_id=request_id_for(who, idempotency_key)))


router = Router("/", route_handlers=[gaps_worklist, set_gap_category, set_schedule, amend, countersign], tags=["gaps"])
