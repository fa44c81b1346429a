"""Recording every read of patient data served over HTTP (NEN 7513), once per request.

A middleware gives each request an empty `Reads`; whatever shows a course's patient data
(`Backend.course_view`, `courses_view`, the event, incident, billing and export routes) adds
the course with `saw`. After the handler, before anything is sent, `after_request` writes one
entry (`ledger.access_log`) with who, from which address, what route and which courses. An
authenticated GET is always logged (with the courses it showed, maybe none), except the caller's
own account and the account list; another method only when it showed a course (a page shown again
after a refusal). If the entry cannot be written the answer is a 503, never the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

import anyio.to_thread
from litestar.types import ASGIApp, Receive, Scope, Send

from adapters.http.auth import PUBLIC
from ledger.access_log import record_access

# Reads that show no patient: who one is, and the accounts (accounts.manage is logged as events).
UNLOGGED = {"me", "accounts.manage", "centres.read"}  # no patient on these


class Reads:
    """The courses one request showed, in the order first shown."""

    def __init__(self, scope: Scope):
        self.scope = scope
        self.courses: dict[str, dict] = {}


CURRENT: ContextVar[Reads | None] = ContextVar("fraction_ledger_reads", default=None)


def saw(course_id: Any, patient_id: str | None = None, home_centre: str | None = None) -> None:
    """The current request shows this course's patient data (outside a request: nothing)."""
    reads = CURRENT.get()
    if reads is None or course_id is None:
        return
    known = reads.courses.setdefault(str(course_id), {"course_id": str(course_id), "patient_id": None,
                                                      "home_centre": None})
    known["patient_id"] = known["patient_id"] or patient_id
    known["home_centre"] = known["home_centre"] or home_centre


def saw_rows(rows: Iterable[dict], key: str = "id") -> None:
    """Rows of the read model (courses, incidents, statement lines...): their course ids."""
    for row in rows:
        saw(row.get(key), row.get("patient_id"), row.get("home_centre"))


def saw_course(course: Any) -> None:
    """A `Course` aggregate."""
    saw(course.id, course.patient["id"], course.home_centre)


def middleware(app: ASGIApp) -> ASGIApp:
    async def give_each_request_its_reads(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            CURRENT.set(Reads(scope))
        await app(scope, receive, send)

    return give_each_request_its_reads


def where_from(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "-"


def what(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope['method']} {scope['path']}" + (f"?{query}" if query else "")


def write(reads: Reads, action: str) -> None:
    scope = reads.scope
    who = scope["user"]
    backend = scope["app"].state.backend
    unnamed = [cid for cid, c in reads.courses.items() if c["patient_id"] is None]
    if unnamed:  # routes that know only course ids (events, incidents): the patients from the read model
        named = backend.read(lambda r: r.courses_named(unnamed))
        for cid in unnamed:
            reads.courses[cid].update({k: v for k, v in named.get(cid, {}).items() if v is not None})
    record_access(backend.app, user=who.user, role=who.role, centre=who.centre, channel="http",
                  client=where_from(scope), action=action, path=what(scope), courses=list(reads.courses.values()))


async def after_request(response: Any) -> Any:
    """Write the request's entry before its answer leaves; `AccessLogUnavailable` (503) otherwise."""
    reads = CURRENT.get()
    if reads is None or reads.scope.get("user") is None or reads.scope.get("route_handler") is None:
        return response
    action = reads.scope["route_handler"].opt.get("action")
    if action == PUBLIC or (not reads.courses and (reads.scope["method"] != "GET" or action in UNLOGGED)):
        return response
    await anyio.to_thread.run_sync(write, reads, action)
    return response
