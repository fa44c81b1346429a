"""Courses: list, read, register, assign, triage, fallback plans, lifecycle, history."""


from typing import Annotated, Literal

from litestar import Request, Response, Router, get, post
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody

from adapters.http import access_log
from adapters.http.auth import current
from adapters.http.backend import Backend, actor_of, request_id_for
from adapters.http.errors import READ, WRITE, documented
from adapters.http.paging import Limit, Offset, api_paging, paged
from adapters.http.views import as_, event_out
from ledger import access
from schemas.api import (
    AssignIn, CourseChangeOut, CourseDetailOut, CourseOut, EventOut, PlanApprovalIn, ReasonIn, TriageIn,
)
from schemas.course import MapPatientId, NewPlan, RegisterCourse

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", required=False, max_length=200,
              description="Retrying with the same key returns the first answer; the same key with another body is 422."),
]
Status = Literal["active", "suspended", "completed"]


def backend(request: Request) -> Backend:
    return request.app.state.backend


@get("/", opt={"action": "courses.list"}, sync_to_thread=True, responses=documented(*READ),
     summary="The courses the caller may see, by patient id, a page at a time (X-Total-Count, Link)")
def list_courses(request: Request, status: FromQuery[Status | None] = None, limit: Limit = None,
                 offset: Offset = None) -> Response[list[CourseOut]]:
    size, skip = api_paging(limit, offset)
    rows, total = backend(request).courses_page(current(request), status=status, limit=size, offset=skip)
    return paged(request, [as_(CourseOut, row) for row in rows], total, size, skip)


@get("/{course_id:str}", opt={"action": "courses.read"}, sync_to_thread=True, responses=documented(*READ),
     summary="A course with its whole fraction history across centres")
def read_course(request: Request, course_id: FromPath[str]) -> CourseDetailOut:
    return as_(CourseDetailOut, backend(request).course_view(current(request), course_id))


@get("/{course_id:str}/events", opt={"action": "courses.read"}, sync_to_thread=True, responses=documented(*READ),
     summary="Every event of a course: what, who, from which centre, when")
def course_events(request: Request, course_id: FromPath[str]) -> list[EventOut]:
    b = backend(request)
    course = b.course_for(current(request), "courses.read", course_id)
    access_log.saw_course(course)
    out = []
    for stored in b.app.recorder.select_events(course.id):
        event = b.app.mapper.to_domain_event(stored)
        out.append(event_out(event, None, stored.topic))
    return out


@post("/", opt={"action": "courses.register", "body": RegisterCourse}, sync_to_thread=True,
      responses=documented(*WRITE), summary="Register a course from its plan (the same course again changes nothing)")
def register_course(request: Request, data: JSONBody[RegisterCourse], idempotency_key: IdempotencyKey = None) -> CourseChangeOut:
    who = current(request)
    access.check(who, "courses.register", home_centre=data.home_centre)
    result = backend(request).app.register_course(data, actor_of(who), request_id_for(who, idempotency_key))
    return as_(CourseChangeOut, result)


def course_command(path: str, action: str, body: type | None, summary: str, run):
    """A POST on one course: load it, check the caller's centre, run the command."""
    if body is None:
        def handler(request: Request, course_id: FromPath[str], idempotency_key: IdempotencyKey = None) -> CourseChangeOut:
            b, who = backend(request), current(request)
            b.course_for(who, action, course_id)
            return as_(CourseChangeOut, run(b.app, course_id, None, who, request_id_for(who, idempotency_key)))
    else:
        def handler(request: Request, course_id: FromPath[str], data: JSONBody[body],  # type: ignore[valid-type]
                    idempotency_key: IdempotencyKey = None) -> CourseChangeOut:
            b, who = backend(request), current(request)
            b.course_for(who, action, course_id)
            return as_(CourseChangeOut, run(b.app, course_id, data, who, request_id_for(who, idempotency_key)))
    handler.__name__ = action.replace(".", "_") + "_" + path.strip("/").replace("/", "_")
    return post("/{course_id:str}" + path, opt={"action": action, "body": body}, sync_to_thread=True, status_code=200,
                responses=documented(*WRITE), summary=summary)(handler)


def assign(app, course_id, data: AssignIn, who, rid):
    change = app.unassign_centre if data.remove else app.assign_centre
    return change(course_id, data.centre, actor_of(who), request_id=rid)


ROUTES = [
    list_courses, read_course, course_events, register_course,
    course_command("/assign", "courses.assign", AssignIn, "Assign a course to a centre (or remove it)", assign),
    course_command("/triage", "courses.triage", TriageIn, "Set the triage code (1 urgent .. 5)",
                   lambda app, cid, d, who, rid: app.set_triage(cid, d.triage, actor_of(who), request_id=rid)),
    course_command("/plans", "courses.fallback_plan", NewPlan, "Add a fallback plan (a partner's re-plan)",
                   lambda app, cid, d, who, rid: app.add_fallback_plan(cid, d, actor_of(who), request_id=rid)),
    course_command("/identities", "courses.identity", MapPatientId,
                   "Record another centre's id of the patient, once name and birth date match the course's",
                   lambda app, cid, d, who, rid: app.map_patient_id(cid, d.centre, d.patient_id, d.name, d.birth_date,
                                                                    actor_of(who), request_id=rid)),
    course_command("/plans/approve", "courses.approve_plan", PlanApprovalIn,
                   "Approve a fallback plan that departs from the prescription (a physicist of the home centre)",
                   lambda app, cid, d, who, rid: app.approve_fallback_plan(cid, d.plan_uid, actor_of(who), request_id=rid)),
    course_command("/suspend", "courses.lifecycle", ReasonIn, "Suspend: no fraction is accepted until resumed",
                   lambda app, cid, d, who, rid: app.suspend_course(cid, d.reason, actor_of(who), request_id=rid)),
    course_command("/resume", "courses.lifecycle", None, "Resume a suspended course",
                   lambda app, cid, d, who, rid: app.resume_course(cid, actor_of(who), request_id=rid)),
    course_command("/complete", "courses.lifecycle", ReasonIn, "Complete: no further fraction is accepted",
                   lambda app, cid, d, who, rid: app.complete_course(cid, d.reason, actor_of(who), request_id=rid)),
]

router = Router("/api/courses", route_handlers=ROUTES, tags=["courses"])
