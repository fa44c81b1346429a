"""Fractions: log (centre and operator from the account), verify (never one's own), void (who may
void which fraction: `ledger.access.may_void`)."""

from __future__ import annotations

from litestar import Request, Router, post
from litestar.params import FromPath, JSONBody

from adapters.http.api_courses import IdempotencyKey, backend
from adapters.http.auth import current
from adapters.http.backend import actor_of, request_id_for
from adapters.http.errors import WRITE, documented
from adapters.http.views import as_
from schemas.api import FractionIn, FractionOut, VerifyIn, VoidIn


@post("/", opt={"action": "fractions.log", "body": FractionIn}, sync_to_thread=True, status_code=201,
      responses=documented(*WRITE), summary="Log a delivered fraction; 201 with the stored fraction")
def log_fraction(request: Request, course_id: FromPath[str], data: JSONBody[FractionIn], idempotency_key: IdempotencyKey = None) -> FractionOut:
    b, who = backend(request), current(request)
    course = b.course_for(who, "fractions.log", course_id)
    command = {
        "number": data.number, "group": data.group, "plan_uid": data.plan_uid, "machine": data.machine,
        "delivered_at": data.delivered_at, "beams": data.beams, "delivery_type": data.type, "note": data.note,
        "deviation_reason": data.deviation_reason, "centre": who.centre, "operator": who.user,
    }
    record = b.app.log_fraction(course_id, command, actor_of(who), request_id=request_id_for(who, idempotency_key),
                                loaded=course)  # one load per request: the access check's course
    return as_(FractionOut, {**record, "course_id": course_id})


@post("/{number:int}/verify", opt={"action": "fractions.verify", "body": VerifyIn}, sync_to_thread=True,
      status_code=200, responses=documented(*WRITE), summary="Double-check a fraction (a colleague, never its operator)")
def verify_fraction(request: Request, course_id: FromPath[str], number: FromPath[int], data: JSONBody[VerifyIn | None] = None,
                    idempotency_key: IdempotencyKey = None) -> list[FractionOut]:
    b, who = backend(request), current(request)
    b.course_for(who, "fractions.verify", course_id)
    records = b.app.verify_fraction(course_id, number, who.user, actor_of(who), group=data.group if data else None,
                                    request_id=request_id_for(who, idempotency_key))
    return [as_(FractionOut, {**r, "course_id": course_id}) for r in records]


@post("/{number:int}/void", opt={"action": "fractions.void", "body": VoidIn}, sync_to_thread=True, status_code=200,
      responses=documented(*WRITE), summary="Void a fraction record with a reason (it stays in the log)",
      description="An RTT voids only an unverified fraction recorded at its own centre; any other fraction "
                  "needs a physicist of the course's home centre (403 otherwise).")
def void_fraction(request: Request, course_id: FromPath[str], number: FromPath[int], data: JSONBody[VoidIn],
                  idempotency_key: IdempotencyKey = None) -> list[FractionOut]:
    b, who = backend(request), current(request)
    records = b.void_fraction(who, course_id, number, data.reason, group=data.group,
                              request_id=request_id_for(who, idempotency_key))
    return [as_(FractionOut, {**r, "course_id": course_id}) for r in records]


router = Router("/api/courses/{course_id:str}/fractions", route_handlers=[log_fraction, verify_fraction, void_fraction],
                tags=["fractions"])
