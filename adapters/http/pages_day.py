"""The RTT's day at a centre: the courses due today first (`ledger/day.py`), found by patient id
or name, filtered by status, triage or "awaiting verification", sorted by any column, a page at a
time (all of it in SQL: `adapters/readmodel_lists.py`); and the verify queue, the fractions given
here that wait for a second check by someone else."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from litestar import Request, Router, get
from litestar.params import QueryParameter
from litestar.response import Template

from adapters.http import access_log
from adapters.http.auth import current
from adapters.http.pages import backend, page
from adapters.readmodel_lists import PAGE_SIZE, SORTS, folded  # noqa: F401 (folded: kept importable here)
from ledger import schedule as schedules

Query = Annotated[str | None, QueryParameter(max_length=100)]
STATUSES = ("active", "suspended", "completed")


class DayView:
    """What the worklist was asked for (search, filters, sort) and the links that change one of them."""

    def __init__(self, q: str | None, status: str | None, triage: str | None, awaiting: str | None,
                 sort: str | None, direction: str | None, page: str | None = None):
        self.q = (q or "").strip()
        self.status = status if status in STATUSES else ""
        self.triage = triage if triage in {str(n) for n in range(1, 6)} else ""
        self.awaiting = awaiting == "yes"
        self.sort = sort if sort in SORTS else "day"
        self.direction = "desc" if direction == "desc" else "asc"
        self.page = int(page) if page and page.isdigit() and 0 < int(page) < 10**6 else 1
        self.pages = 1  # set once the number of matching courses is known

    def params(self, **override) -> dict:
        values = {"q": self.q, "status": self.status, "triage": self.triage, "awaiting": "yes" if self.awaiting else "",
                  "sort": self.sort, "dir": self.direction, **override}
        return {k: v for k, v in values.items() if v and not (k == "sort" and v == "day") and not (k == "dir" and v == "asc")
                and not (k == "page" and v == 1)}

    def page_link(self, number: int) -> str:
        query = urlencode(self.params(page=number))
        return "/worklist" + ("?" + query if query else "")

    def query(self) -> dict:
        """The read model's `course_page` filters for what was asked."""
        return {"status": self.status or None, "triage": int(self.triage) if self.triage else None,
                "awaiting": self.awaiting, "search": self.q or None, "sort": self.sort,
                "descending": self.direction == "desc", "limit": PAGE_SIZE, "offset": (self.page - 1) * PAGE_SIZE}

    def sort_link(self, key: str) -> str:
        flip = "desc" if self.sort == key and self.direction == "asc" else "asc"
        return "/worklist?" + urlencode(self.params(sort=key, dir=flip))

    @property
    def filtered(self) -> bool:
        return bool(self.q or self.status or self.triage or self.awaiting)


@get("/worklist", opt={"action": "courses.list"}, sync_to_thread=True, include_in_schema=False)
def worklist(request: Request, q: Query = None, status: Query = None, triage: Query = None, awaiting: Query = None,
             sort: Query = None, dir: Query = None,
             page_asked: Annotated[str | None, QueryParameter(name="page", max_length=12)] = None) -> Template:
    b, who = backend(request), current(request)
    view = DayView(q, status, triage, awaiting, sort, dir, page_asked)
    where = b.app.zone_of(who.centre)  # the day as the people of this centre live it (ledger/local_time.py)
    today = schedules.local_day(b.app.clock(), where)
    billed = b.billed(who)
    counts = b.read(lambda r: r.day_counts(who.centre, billed, today, where))  # due, treated, all it sees
    total = counts["all"]
    # the page (logged as shown); unfiltered, its matches are all the courses seen, counted already
    shown, matching = b.courses_page(who, **view.query(), today=today, zone=where, count=view.filtered)
    matching = total if matching is None else matching
    view.pages = max(1, -(-matching // PAGE_SIZE))
    if view.page > view.pages and matching:  # past the last page (the list got shorter): the last one
        view.page = view.pages
        shown, _ = b.courses_page(who, **view.query(), today=today, zone=where, count=False)
    queue = b.read(lambda r: r.awaiting_verification(who.centre))
    seen = b.read(lambda r: r.seen_ids(who.centre, billed, sorted({f["course_id"] for f in queue})))
    queue = [f for f in queue if f["course_id"] in seen and f["operator"] != who.user]
    access_log.saw_rows(queue, key="course_id")
    first = (view.page - 1) * PAGE_SIZE
    return page(request, "worklist.html", courses=shown, view=view, today=today, counts=counts, queue=queue,
                total=total, matching=matching, first=first + 1 if shown else 0, last=first + len(shown),
                statuses=STATUSES, sources=b.sources_view(), gap_alarms=b.gap_alarms_view(who))


router = Router("/", route_handlers=[worklist])
