"""What the routes work with: the ledger, its read model behind a lock, and access checks.

The read model is one SQLite connection shared by the server's threads; catching it up
and querying it are serialised here so two requests never interleave its transactions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from adapters.readmodel import ReadModel
from adapters.runtime import Ledger
from ledger import access, errors
from ledger.access import Principal
from ledger.course import Course
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
        return view

    def courses_view(self, principal: Principal, status: str | None = None) -> list[dict]:
        centre = access.centre_filter(principal)
        return self.read(lambda r: r.courses(centre=centre, status=status))


def actor_of(principal: Principal) -> Actor:
    return Actor(user=principal.user, centre=principal.centre)


def request_id_for(principal: Principal, key: str | None) -> str | None:
    """An Idempotency-Key is the user's own: two users' keys never collide."""
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise errors.InvalidCommand("Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
    return f"http/{principal.user}/{key}"

