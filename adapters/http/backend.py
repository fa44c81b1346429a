"""What the routes work with: the ledger, its read model behind a lock, and access checks.

The read model is one SQLite connection shared by the server's threads; catching it up
and querying it are serialised here so two requests never interleave its transactions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from adapters.http import access_log
from adapters.readmodel import ReadModel
from adapters.runtime import Ledger, department_zone, freshness_policy
from ledger import access, errors
from ledger.access import Principal
from ledger.course import Course
from ledger.receipts import source_states
from ledger.service import Actor, FractionLedger

T = TypeVar("T")
MAX_IDEMPOTENCY_KEY = 200


class Backend:
    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.app: FractionLedger = ledger.app
        self._read_lock = threading.Lock()

    def read(self, query: Callable[[ReadModel], T]) -> T:
        with self._read_lock:
            return query(self.ledger.fresh())

    # ---- courses, with the caller's access checked -----------------------------------------

    def course_for(self, principal: Principal, action: str, course_id: str) -> Course:
        """The course (404 if unknown), if `principal` may take `action` on it (else 403)."""
        course = self.app.get_course(course_id)
        access.check(principal, action, course.home_centre, course.assigned_centres)
        return course

    def course_view(self, principal: Principal, course_id: str) -> dict:
        view = self.read(lambda r: r.course(course_id))
        if view is None:
            raise errors.CourseNotFound(f"No course with id {course_id}.")
        access.check(principal, "courses.read", view["home_centre"], view["assigned_centres"])
        access_log.saw_rows([view])
        return view

    def sources_view(self) -> list[dict]:
        """Each source's last object, and how long it has been silent past the limit (else None)."""
        limit, hours = freshness_policy()
        return source_states(self.read(lambda r: r.sources()), self.app.clock(), limit, hours, department_zone())

    def courses_view(self, principal: Principal, status: str | None = None) -> list[dict]:
        centre = access.centre_filter(principal)
        rows = self.read(lambda r: r.courses(centre=centre, status=status))
        access_log.saw_rows(rows)
        return rows

    # ---- voids: who may void which fraction (`access.may_void`) ------------------------------

    def void_fraction(self, principal: Principal, course_id: str, number: int, reason: str,
                      group: int | None = None, request_id: str | None = None) -> list[dict]:
        """Void a fraction if `principal` may void this one (403 otherwise); API and pages."""
        course = self.course_for(principal, "fractions.void", course_id)
        grp = course.group(group) if group is not None else course.only_group()
        centres, verified_by = void_facts(course, grp.number, number)
        access.check_void(principal, course.home_centre, number, centres, verified_by)
        return self.app.void_fraction(course_id, number, reason, principal.user, actor_of(principal), group=group,
                                      request_id=request_id)


def void_facts(course: Course, group: int, number: int) -> tuple[set[str], str | None]:
    """Where a fraction's sessions were recorded and who verified them (if anyone): its
    active sessions, or once voided the records it had, so that a retry is judged the same."""
    sessions = course.active_records(group, number) or [
        r for r in course.records if (r.group, r.number) == (group, number)]
    return {s.centre for s in sessions}, next((s.verified_by for s in sessions if s.verified_by), None)


def may_void(principal: Principal, course: Course, group: int, number: int) -> bool:
    """For a page: whether to offer the Void button on this fraction."""
    centres, verified_by = void_facts(course, group, number)
    return (access.may(principal, "fractions.void", course.home_centre, course.assigned_centres)
            and access.may_void(principal, course.home_centre, centres, verified_by is not None))


def actor_of(principal: Principal) -> Actor:
    return Actor(user=principal.user, centre=principal.centre)


def request_id_for(principal: Principal, key: str | None) -> str | None:
    """An Idempotency-Key is the user's own: two users' keys never collide."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise errors.InvalidCommand("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return f"http/{principal.user}/{key}"

