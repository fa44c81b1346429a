"""What the routes work with: the ledger, its read model behind a lock, and access checks.

The read model is one SQLite connection shared by the server's threads; catching it up
and querying it are serialised here so two requests never interleave its transactions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

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
    # Need to know (`access.sees`): a course the caller may not see is answered exactly as an
    # unknown id, so that a 403 never tells that another centre's course exists.

    def course_for(self, principal: Principal, action: str, course_id: str) -> Course:
        """The course (404 if unknown or not seen by `principal`), if `principal` may take
        `action` on it (else 403)."""
        course = self.app.get_course(course_id)
        parties = self.parties(principal, course.id, course.home_centre, course.assigned_centres)
        if not access.sees(principal, course.home_centre, course.assigned_centres, parties):
            raise not_found(course_id)
        access.check(principal, action, course.home_centre, course.assigned_centres, parties)
        return course

    def course_view(self, principal: Principal, course_id: str) -> dict:
        view = self.read(lambda r: r.course(course_id))
        if view is None:
            raise not_found(course_id)
        parties = self.parties(principal, course_id, view["home_centre"], view["assigned_centres"])
        if not access.sees(principal, view["home_centre"], view["assigned_centres"], parties):
            raise not_found(course_id)
        access.check(principal, "courses.read", view["home_centre"], view["assigned_centres"], parties)
        access_log.saw_rows([view])
        from adapters.gaps_view import prescription_of
        from ledger.amendments import dose_of

        done = {(f["group"], f["number"]) for f in view["fractions"] if not f["voided"]}
        view["dose_prescribed_gy"], view["dose_delivered_gy"] = dose_of(prescription_of(view).fraction_groups, done)
        return view

    def sources_view(self) -> list[dict]:
        """Each source's last object, and how long it has been silent past the limit (else None)."""
        limit, hours = freshness_policy()
        return source_states(self.read(lambda r: r.sources()), self.app.clock(), limit, hours, department_zone())

    def courses_view(self, principal: Principal, status: str | None = None) -> list[dict]:
        """The courses `principal` sees (need to know), whatever its role; their patients' data is
        shown, so the access log records them."""
        rows = self.seen_courses(principal, status)
        access_log.saw_rows(rows)
        return rows

    def seen_courses(self, principal: Principal, status: str | None = None) -> list[dict]:
        """The courses `principal` sees, for filtering (not shown, so not logged here)."""
        if access.SEES.get(principal.role) is None:
            return []
        billed = access.SEES[principal.role] == access.BILLED
        return self.read(lambda r: r.courses(centre=principal.centre, status=status, billed=billed))

    def billed(self, principal: Principal) -> bool:
        """Whether `principal` sees, besides its centre's courses, those its centre bills (finance)."""
        return access.SEES.get(principal.role) == access.BILLED

    def courses_page(self, principal: Principal, log: bool = True, **query) -> tuple[list[dict], int]:
        """One page of the courses `principal` sees (read-model `course_page(**query)`: filters, sort,
        limit, offset), and how many match; the page's rows are logged as shown (`log`)."""
        if access.SEES.get(principal.role) is None:
            return [], 0
        billed = access.SEES[principal.role] == access.BILLED
        rows, total = self.read(lambda r: r.course_page(principal.centre, billed, **query))
        if log:
            access_log.saw_rows(rows)
        return rows, total

    def gaps_view(self, principal: Principal, centre: str | None = None, log: bool = True) -> list[dict]:
        """The gaps worklist of the active courses `principal` sees (`centre`: only those whose
        home or assigned centre it is), by urgency (adapters/gaps_view.py); logged as shown
        (`log=False`: the caller shows only some, and logs those)."""
        from adapters.gaps_view import gaps_of
        from adapters.runtime import gap_alarm_days

        rows = self.seen_courses(principal, "active")
        if centre is not None:
            rows = [r for r in rows if r["home_centre"] == centre or centre in r["assigned_centres"]]
        out = self.read(lambda r: gaps_of(self.app, r, rows, gap_alarm_days()))
        if log:
            access_log.saw_rows(out)
        return out

    def gap_alarms_view(self, principal: Principal) -> list[dict]:
        """The gap alarms of the courses `principal` treats or plans (a category 1 course prolonged
        beyond the threshold): shown on the physicist's page and on the pages of the centres the
        course is assigned to (and its home's). Only roles that read the gaps worklist."""
        from adapters.gaps_view import alarms
        from adapters.runtime import gap_alarm_days

        if access.scope_of(principal, "gaps.read") is None or access.SEES.get(principal.role) is None:
            return []
        from adapters.gaps_view import gaps_of
        from ledger.gaps import SITE_CATEGORY

        # Only a category 1 course raises an alarm: only those are computed (not every active course).
        billed = access.SEES[principal.role] == access.BILLED
        sites = sorted(s for s, n in SITE_CATEGORY.items() if n == 1)
        rows = self.read(lambda r: r.gap_candidates(principal.centre, billed, 1, sites))
        shown = alarms(self.read(lambda r: gaps_of(self.app, r, rows, gap_alarm_days())), gap_alarm_days())
        access_log.saw_rows(shown)
        return shown

    def seen_course_ids(self, principal: Principal) -> set[str]:
        if access.SEES.get(principal.role) is None:
            return set()
        return self.read(lambda r: r.all_seen_ids(principal.centre, self.billed(principal)))

    def parties(self, principal: Principal, course_id, home_centre: str, assigned_centres) -> set[str]:
        """The billing parties of a course, looked up only when they can matter (finance of
        a centre that is not one of the course's own)."""
        if (access.SEES.get(principal.role) != access.BILLED or principal.centre == home_centre
                or principal.centre in set(assigned_centres)):
            return set()
        return self.read(lambda r: r.billing_parties(str(course_id)))

    # ---- what else names a patient: only what the caller sees --------------------------------

    def course_events_view(self, principal: Principal, after: int, limit: int) -> list[tuple[int, object, str]]:
        """(position, domain event, topic) of the course events after `after`, of the courses the
        caller sees; a course registered after the look-up is left out (nothing is shown by default)."""
        from adapters.readmodel import COURSE_TOPIC

        seen = self.seen_course_ids(principal)
        out: list[tuple[int, object, str]] = []
        start = after
        # Accounts and idempotency records share the log; only course events are shown here.
        while len(out) < limit:
            batch = self.app.recorder.select_notifications(start, 500, inclusive_of_start=False)
            for n in batch:
                if (n.topic.startswith(COURSE_TOPIC) and str(n.originator_id) in seen and len(out) < limit):
                    out.append((n.id, self.app.mapper.to_domain_event(n), n.topic))
            if len(batch) < 500:
                break
            start = batch[-1].id
        return out

    def incidents_view(self, principal: Principal, **filters) -> list[dict]:
        """Incidents (read-model query `incidents(**filters)`) that `principal` sees: those its
        centre registered and those of the courses it sees."""
        return self.incidents_page(principal, **filters)[0]

    def incidents_page(self, principal: Principal, centre: str | None = None, limit: int | None = None,
                       offset: int = 0, **filters) -> tuple[list[dict], int]:
        """A page of those incidents (in SQL: `incident_page`), and how many match. `centre`: where
        the incident was registered."""
        if access.SEES.get(principal.role) is None:
            return [], 0
        billed = access.SEES[principal.role] == access.BILLED
        return self.read(lambda r: r.incident_page(principal.centre, billed, at_centre=centre, limit=limit,
                                                   offset=offset, **filters))

    def incident_for(self, principal: Principal, action: str, incident_id: str):
        """The incident (404 if unknown or not seen), if `principal` may take `action` on it (else 403).
        An incident's "home" is its course's home centre (else where it happened); where it
        happened counts as assigned."""
        incident = self.app.billing.get_incident(incident_id)
        course_seen = False
        if incident.course_id is not None:
            try:
                self.course_for(principal, "courses.read", str(incident.course_id))
                course_seen = True
            except (errors.NotFound, errors.AccessDenied):
                course_seen = False
        if not access.sees_incident(principal, incident.centre, course_seen):
            raise errors.IncidentNotFound("incident_not_found.no_incident_with_id", incident_id=incident_id)
        access.check(principal, action, incident.home_centre or incident.centre, [incident.centre])
        return incident

    def agreements_view(self, principal: Principal) -> list[dict]:
        """The agreements the caller's centre is a party to."""
        return self.read(lambda r: r.agreements(party=principal.centre))

    def statement_view(self, principal: Principal, start, end, pair: tuple[str, str] | None) -> dict:
        return self.read(lambda r: r.statement(start, end, pair, seen_by=principal.centre))

    def seen_refusals(self, principal: Principal, rows: list[dict]) -> list[dict]:
        """Deliveries with only the refusals of courses the caller sees (a receiver's text names
        the patient); a refusal recorded without its course is left out."""
        seen = self.seen_course_ids(principal)
        return [{**row, "refused": [r for r in row["refused"] if str(r.get("course")) in seen]} for row in rows]

    # ---- accounts: an administrator manages its own centre's ---------------------------------

    def accounts_view(self, principal: Principal) -> list:
        from ledger.accounts import list_accounts

        return [a for a in list_accounts(self.app) if access.may_manage_account(principal, a.centre)]

    def account_for(self, principal: Principal, name: str):
        """The account (404 if unknown or of another centre: answered alike)."""
        from ledger.accounts import current_roster

        book = current_roster(self.app)
        account = book.accounts.get(name) if book else None
        if account is None or not access.may_manage_account(principal, account.centre):
            raise errors.AccountNotFound("account_not_found.no_account_named", name=name)
        return account

    def add_account(self, principal: Principal, data: dict, token_hash: str, request_id: str | None = None) -> dict:
        from ledger.accounts import add_account, roster

        centre = data.get("centre") if isinstance(data, dict) else None
        if isinstance(centre, str) and not access.may_manage_account(principal, centre):
            raise errors.AccessDenied(
                "forbidden.admin_may_not_add", user=principal.user, centre=principal.centre, centre2=centre,
                conflict={"user": principal.user, "role": principal.role, "centre": principal.centre,
                          "action": "accounts.manage", "field": "centre"})
        book = roster(self.app)
        taken = book.accounts.get(str(data.get("name"))) if book and isinstance(data, dict) else None
        if taken is not None and not access.may_manage_account(principal, taken.centre):
            # the name is taken at another centre: say so, but nothing of that account
            raise errors.AccountConflict("account_conflict.name_taken_choose_another", data_name=data['name'])
        return add_account(self.app, data, token_hash, actor_of(principal), request_id)

    def revoke_account(self, principal: Principal, name: str, request_id: str | None = None) -> dict:
        from ledger.accounts import revoke_account

        self.account_for(principal, name)
        return revoke_account(self.app, name, actor_of(principal), request_id)

    def rotate_account(self, principal: Principal, name: str, token_hash: str, request_id: str | None = None) -> dict:
        from ledger.accounts import rotate_token

        self.account_for(principal, name)
        return rotate_token(self.app, name, token_hash, actor_of(principal), request_id)

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


def not_found(course_id: str) -> errors.CourseNotFound:
    """The answer for an unknown course id, and for one the caller may not see: the same words."""
    return errors.CourseNotFound("course_not_found.no_course_with_id", course_id=course_id)


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
        raise errors.InvalidCommand("Idempotency-Key", "invalid.must_be_characters", max_idempotency_key=MAX_IDEMPOTENCY_KEY)
    return f"http/{principal.user}/{key}"

